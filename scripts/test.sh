#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs nats-server, redis-server (with
# redis-cli, for the Redis Cluster test), Chromium with its driver (for the dashboard's
# browser test) and Prometheus (for the alert rules' end-to-end test) from Debian's packages
# when they are missing, then runs every test of the workspace.
# The tests start their own servers on free loopback ports; nothing here starts a service.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/ensure-packages.sh
ensure_packages nats-server redis-server redis-tools chromium chromium-driver prometheus

cargo test --workspace "$@"
