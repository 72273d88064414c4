#!/usr/bin/env bash
# Prints the workspace's library crates other services reuse, one a line, from `cargo
# metadata`: every member with a library target that may be published. The binaries, the
# test kit and the end-to-end tests are `publish = false`; a new crate (a vendor's) is listed
# as soon as it is a member.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo metadata --no-deps --format-version 1 --offline \
    | jq -r '.packages[]
        | select(.publish != [])
        | select(any(.targets[]; .kind | index("lib")))
        | .name'
