#!/usr/bin/env bash
# Follows docs/adding-a-vendor.md literally, so that the guide cannot drift from the code:
# copies the workspace (without target/) to a temporary directory, writes every file and line
# the guide's code blocks give — each block sits under a line naming its file: "`path`:" for a
# whole file, "`path`, after the line `anchor`:" or "`path`, before the line `anchor`:" for
# lines inserted next to the first line reading `anchor` — and runs the whole test suite there
# (`cargo test --workspace`, against real servers like scripts/test.sh). Arguments go to
# `cargo test`.
#
# The copy builds into target/adding-a-vendor/ (CARGO_TARGET_DIR), never into target/debug:
# cargo's dep-info paths are relative to each package, so the copy's artifacts would pass for
# fresh ones of the real workspace. The first run seeds that directory with a copy of
# target/debug, so only the crates the guide touches are rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

source scripts/ensure-packages.sh
ensure_packages python3 nats-server redis-server redis-tools chromium chromium-driver

copy=$(mktemp -d "${TMPDIR:-/tmp}/adding-a-vendor.XXXXXX")
trap 'rm -rf "$copy"' EXIT
# `tar` keeps the files' times: what the guide does not touch stays fresh in the cache. Only
# what git tracks or would track is copied: no build output (target/, fuzz/target/).
git ls-files -z --cached --others --exclude-standard \
    | tar --null --files-from=- --ignore-failed-read -cf - | tar -xf - -C "$copy"

python3 - docs/adding-a-vendor.md "$copy" <<'PY'
import pathlib, re, sys

guide, copy = pathlib.Path(sys.argv[1]).read_text(), pathlib.Path(sys.argv[2])
label = re.compile(r"^(?:.*: )?`([^`]+)`(?:, (after|before) the line `([^`]+)`)?:$")
lines, edits, n = guide.splitlines(), 0, 0
while n < len(lines):
    if not lines[n].startswith("```"):
        n += 1
        continue
    end = lines.index("```", n + 1)
    block = "\n".join(lines[n + 1 : end]) + "\n"
    previous = next((l for l in reversed(lines[:n]) if l.strip()), "")
    found = label.match(previous)
    n = end + 1
    if not found:
        continue
    path, where, anchor = found.groups()
    target = copy / path
    if where is None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block)
    else:
        text = target.read_text().splitlines(keepends=True)
        at = next((i for i, l in enumerate(text) if l.strip() == anchor), None)
        if at is None:
            sys.exit(f"{path}: no line reads {anchor!r}")
        text.insert(at + 1 if where == "after" else at, block)
        target.write_text("".join(text))
    edits += 1
    print(f"adding-a-vendor: {path}" + (f" ({where} {anchor!r})" if where else ""))
if edits == 0:
    sys.exit("the guide has no labelled code block")
PY

target_dir="$root/target/adding-a-vendor"
if [ ! -d "$target_dir" ] && [ -d "$root/target/debug" ]; then
    echo "adding-a-vendor: seeding $target_dir from target/debug"
    rm -rf "$target_dir.seed"
    mkdir -p "$target_dir.seed"
    if cp -a "$root/target/debug" "$target_dir.seed/debug"; then
        mv "$target_dir.seed" "$target_dir"
    else
        echo "adding-a-vendor: target/debug changed while copied (a build running?); not seeded"
        rm -rf "$target_dir.seed"
    fi
fi
cd "$copy"
# The example's crate and its wiring first, then everything.
CARGO_TARGET_DIR="$target_dir" cargo test -p vendor-acme
CARGO_TARGET_DIR="$target_dir" cargo test --workspace "$@"
