#!/usr/bin/env bash
# Builds the monitor and the bench tool (release), then measures `dispatch-monitor once`
# against the simulated bridges over real nats-server and redis-server on free loopback ports.
# Arguments go to dispatch-bench, e.g.:
#   scripts/bench.sh --dispatches 1000,10000 --latency-ms 0,20 --concurrency 8,32
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/ensure-packages.sh
ensure_packages nats-server redis-server

cargo build --release --quiet -p dispatch-monitor -p dispatch-bench
target/release/dispatch-bench "$@"
