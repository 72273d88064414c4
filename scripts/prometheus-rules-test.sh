#!/usr/bin/env bash
# Checks the Prometheus rules in deploy/prometheus and runs their unit tests with promtool
# (Debian's `prometheus` package, installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-packages.sh
ensure_packages prometheus

promtool check rules deploy/prometheus/dispatch-monitor.rules.yml
promtool check config deploy/prometheus/prometheus.yml
promtool test rules deploy/prometheus/tests/*.yml
