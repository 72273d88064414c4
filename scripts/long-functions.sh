#!/usr/bin/env bash
# Lists production Rust functions longer than a limit (default 60 lines, from the `fn` line to
# its closing brace), so a reviewer can re-check the rule "no production function over 60
# lines". Production code is the workspace's src folders: crates/*/src, bin/*/src,
# templates/src and tests/*/src (test support counts). `#[cfg(test)]` modules and
# `#[test]`-style functions are left out, as are tests/ folders, benches and examples.
#
# Usage: scripts/long-functions.sh [LIMIT]   (exit 1 when a function is over the limit)
#
# The scan is rough on purpose: it counts braces after blanking comments, string and char
# literals (raw strings included); a macro that defines functions is read as written.
set -euo pipefail
cd "$(dirname "$0")/.."
limit="${1:-60}"

python3 - "$limit" <<'PY'
import glob
import os
import re
import sys

limit = int(sys.argv[1])
roots = ["crates/*/src", "bin/*/src", "templates/src", "tests/*/src"]
files = sorted({f for root in roots for f in glob.glob(root + "/**/*.rs", recursive=True)})


def blank(text):
    """The text with comments and string/char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif re.match(r'b?r#*"', text[i:i + 40]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            # A char literal ('{', '\n', '\u{7b}'); otherwise a lifetime or label.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                out.append(" " * m.end())
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching(code, open_at):
    """The index of the brace closing the one at `open_at`."""
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


def line_of(code, index):
    return code.count("\n", 0, index) + 1


test_attr = re.compile(r"#\[\s*(cfg\s*\(\s*test\s*\)|([\w:]+::)?test\b|rstest|proptest)")
item = re.compile(r"\bfn\s+(\w+)|\bmod\s+\w+\s*\{|\bproptest!\s*\{")
codes = {path: blank(open(path, encoding="utf-8").read()) for path in files}
# Files that are `#[cfg(test)] mod name;` of another file are test code too.
test_files = set()
for path, code in codes.items():
    folder = os.path.dirname(path)
    if os.path.basename(path) not in ("lib.rs", "main.rs", "mod.rs"):
        folder = os.path.join(folder, os.path.basename(path)[:-3])
    for name in re.findall(r"#\[\s*cfg\s*\(\s*test\s*\)\s*\]\s*mod\s+(\w+)\s*;", code):
        test_files |= {os.path.join(folder, name + ".rs"), os.path.join(folder, name, "mod.rs")}
found = []
for path, code in codes.items():
    if path in test_files:
        continue
    skip_until = -1
    for m in item.finditer(code):
        if m.start() < skip_until:
            continue
        # The attributes just before the item, back to the previous item's end.
        before = code[max(0, m.start() - 400):m.start()]
        before = re.split(r"[;{}]", before)[-1]
        is_test = bool(test_attr.search(before)) or m.group(0).startswith("proptest")
        if m.group(1) is None:  # a module (or a proptest! block)
            if is_test:
                skip_until = matching(code, code.index("{", m.start()))
            continue
        # The body: the first `{` after the signature, unless a `;` ends a declaration first.
        semi = code.find(";", m.end())
        brace = code.find("{", m.end())
        if brace < 0 or (0 <= semi < brace):
            continue
        close = matching(code, brace)
        if is_test:
            skip_until = close
            continue
        start, end = line_of(code, m.start()), line_of(code, close)
        length = end - start + 1
        if length > limit:
            found.append((length, f"{path}:{start}", m.group(1)))

for length, where, name in sorted(found, reverse=True):
    print(f"{length:4} lines  {where}  fn {name}")
if found:
    print(f"{len(found)} production function(s) over {limit} lines")
    sys.exit(1)
print(f"no production function over {limit} lines ({len(codes) - len(test_files & set(codes))} files scanned)")
PY
