#!/usr/bin/env bash
# Runs the tests that read the fixtures as a lone clone of the repository would run them: with
# the contract's folder that may sit beside the checkout (`shared/`, where CI clones it) out of
# sight, so they prove that `tests/fixtures` is all they need. It also runs the test that no
# file of the repository points outside it.
#
# How the folder is hidden: in a private mount namespace (`unshare --user --mount`, no root
# needed) an empty folder is mounted over it, so nothing in the tests can read it, whatever
# path they use. Where namespaces are not allowed (some containers), the fixture loader is told
# the contract is absent (DISPATCH_CONTRACT_FIXTURES set empty); the test that no file names
# that folder, except the loader, makes that just as strict.
#
# Extra arguments go to `cargo test` (e.g. `-- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

root=$(pwd -P)
contract="$(dirname "$root")/shared"
command=(cargo test -p test-support -p dispatch-templates -p domain -p vendor-lit -p vendor-cts "$@")

if [ ! -e "$contract" ]; then
    echo "test-standalone: no $contract beside the repository; running the tests as they are"
    exec "${command[@]}"
fi
empty=$(mktemp -d "${TMPDIR:-/tmp}/dispatch-standalone.XXXXXX")
trap 'rmdir "$empty"' EXIT
hide='mount --bind "$1" "$2" && shift 2 && exec "$@"'
if unshare --user --map-root-user --mount -- bash -c "$hide" hide "$empty" "$contract" true \
    2>/dev/null; then
    echo "test-standalone: $contract hidden behind an empty folder (private mount namespace)"
    unshare --user --map-root-user --mount -- bash -c "$hide" hide "$empty" "$contract" \
        "${command[@]}"
else
    echo "test-standalone: no mount namespace here; telling the fixture loader the contract is absent"
    DISPATCH_CONTRACT_FIXTURES="" "${command[@]}"
fi
