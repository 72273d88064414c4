#!/usr/bin/env bash
# A short run of every cargo-fuzz target on its committed seed corpus (docs/fuzzing.md): each
# target's invariant is checked on the seeds and on FUZZ_SECONDS (default 20) seconds of
# mutations. Installs cargo-fuzz when missing. Fails on the first crash, leaving the input in
# fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed; installing it (about 6 minutes on 2 busy cores)"
    cargo install cargo-fuzz --locked
fi
# The stable toolchain: no sanitizer; debug assertions on, so overflows are caught.
cargo fuzz build --sanitizer none --debug-assertions

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list); do
    mkdir -p "$scratch/$target"
    # New inputs go to the scratch folder; the committed seeds stay as they are.
    cargo fuzz run --sanitizer none --debug-assertions "$target" "$scratch/$target" \
        "corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1 \
        >"$scratch/$target.log" 2>&1 || {
        tail -n 40 "$scratch/$target.log"
        echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/"
        exit 1
    }
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$target.log" | grep -o '[0-9]*$')"
    echo "fuzz $target: ${runs:-?} inputs in ${seconds}s, no failure"
done
