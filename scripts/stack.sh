#!/usr/bin/env bash
# The whole stack on this machine: nats-server and redis-server (installed from Debian's
# packages when missing), the simulated bridges (dispatch-sim, the built-in day unless
# SCENARIO=file.toml), and dispatch-monitor `run` with 20-second cycles. Ctrl-C stops
# everything it started.
#
# Ports are free ones unless given: NATS_PORT, REDIS_PORT, MONITOR_PORT, SIM_PORT.
# MONITOR_BIN and SIM_BIN use prebuilt binaries instead of building them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-packages.sh
ensure_packages nats-server redis-server

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
NATS_PORT=${NATS_PORT:-$(free_port)}
REDIS_PORT=${REDIS_PORT:-$(free_port)}
MONITOR_PORT=${MONITOR_PORT:-$(free_port)}
SIM_PORT=${SIM_PORT:-$(free_port)}
INTERVAL=${INTERVAL:-20}

if [ -z "${MONITOR_BIN:-}" ] || [ -z "${SIM_BIN:-}" ]; then
    echo "building dispatch-monitor and dispatch-sim ..."
    cargo build --quiet -p dispatch-monitor -p dispatch-sim
    MONITOR_BIN=${MONITOR_BIN:-target/debug/dispatch-monitor}
    SIM_BIN=${SIM_BIN:-target/debug/dispatch-sim}
fi

STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dispatch-stack.XXXXXX")
pids=()
stop() {
    trap - INT TERM EXIT
    echo
    echo "stopping the stack ..."
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    echo "stopped; logs are in $STACK_DIR"
}
trap stop INT TERM EXIT

nats-server -a 127.0.0.1 -p "$NATS_PORT" >"$STACK_DIR/nats.log" 2>&1 &
pids+=($!)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    >"$STACK_DIR/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null \
        && (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break
    sleep 0.1
done

scenario_args=()
[ -n "${SCENARIO:-}" ] && scenario_args=(--scenario "$SCENARIO")
"$SIM_BIN" --nats "nats://127.0.0.1:$NATS_PORT" --redis "redis://127.0.0.1:$REDIS_PORT" \
    --http "127.0.0.1:$SIM_PORT" --time-scale "${TIME_SCALE:-1}" "${scenario_args[@]}" &
pids+=($!)

NATS_SERVER1="nats://127.0.0.1:$NATS_PORT" \
REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
ENVIRONMENT_NAME=local \
DISPATCH_MONITOR_SERVER_ADDRESS=127.0.0.1 \
DISPATCH_MONITOR_SERVER_PORT="$MONITOR_PORT" \
MONITOR_LIT_INTERVAL_SECS="$INTERVAL" \
MONITOR_CTS_INTERVAL_SECS="$INTERVAL" \
MONITOR_LEASE_TTL_SECS=30 \
MONITOR_REQUEST_TIMEOUT_SECS=10 \
    "$MONITOR_BIN" run >"$STACK_DIR/monitor.log" 2>&1 &
pids+=($!)

cat <<INFO
the stack is up (Ctrl-C stops it):
  monitor      http://127.0.0.1:$MONITOR_PORT/   /metrics   /_health   (log: $STACK_DIR/monitor.log)
  simulator    http://127.0.0.1:$SIM_PORT/   /outbox   (POST /faults to inject a fault)
  NATS         nats://127.0.0.1:$NATS_PORT    Redis  redis://127.0.0.1:$REDIS_PORT
the simulated day follows: every note and SMS as it arrives.
INFO

# Wait until a child ends or a signal arrives; either way `stop` runs.
wait -n "${pids[@]}" || true
