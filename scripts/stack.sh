#!/usr/bin/env bash
# The whole stack on this machine: nats-server and redis-server (installed from Debian's
# packages when missing), the simulated bridges (dispatch-sim, the built-in day unless
# SCENARIO=file.toml), and dispatch-monitor `run` with 20-second cycles. Each part is checked
# before the next starts; when one does not come up (or stops later), its last log lines are
# printed and the script exits 1. Ctrl-C stops everything it started and exits 0.
#
# Ports are free ones unless given: NATS_PORT, REDIS_PORT, MONITOR_PORT, SIM_PORT.
# MONITOR_BIN and SIM_BIN use prebuilt binaries instead of building them. SCENARIO, MONITOR_BIN
# and SIM_BIN may be relative to the directory the script is called from. The monitor reads
# every other setting from the environment (e.g. MONITOR_QUIET_HOURS=21:00-08:00).
set -euo pipefail
caller_dir=$(pwd)
cd "$(dirname "$0")/.."
source scripts/ensure-packages.sh
ensure_packages nats-server redis-server

# A path given relative to where the script was called from.
from_caller() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$caller_dir/$1" ;;
    esac
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
NATS_PORT=${NATS_PORT:-$(free_port)}
REDIS_PORT=${REDIS_PORT:-$(free_port)}
MONITOR_PORT=${MONITOR_PORT:-$(free_port)}
SIM_PORT=${SIM_PORT:-$(free_port)}
INTERVAL=${INTERVAL:-20}
[ -n "${SCENARIO:-}" ] && SCENARIO=$(from_caller "$SCENARIO")
[ -n "${MONITOR_BIN:-}" ] && MONITOR_BIN=$(from_caller "$MONITOR_BIN")
[ -n "${SIM_BIN:-}" ] && SIM_BIN=$(from_caller "$SIM_BIN")

if [ -z "${MONITOR_BIN:-}" ] || [ -z "${SIM_BIN:-}" ]; then
    echo "building dispatch-monitor and dispatch-sim ..."
    cargo build -p dispatch-monitor -p dispatch-sim
    MONITOR_BIN=${MONITOR_BIN:-target/debug/dispatch-monitor}
    SIM_BIN=${SIM_BIN:-target/debug/dispatch-sim}
fi

STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dispatch-stack.XXXXXX")
pids=()
names=()
stopped=
stop() {
    [ -n "$stopped" ] && return
    stopped=1
    # Neither a second Ctrl-C nor a closed output may cut the cleanup short.
    trap '' INT TERM PIPE
    echo 2>/dev/null || true
    echo "stopping the stack ..." 2>/dev/null || true
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$STACK_DIR"
    echo "stopped" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

# Starts a part in the background, its output in $STACK_DIR/NAME.log.
start() {
    local name=$1
    shift
    "$@" >"$STACK_DIR/$name.log" 2>&1 &
    pids+=($!)
    names+=("$name")
}
# Says which part failed, with its last log lines, and exits 1 (the EXIT trap stops the rest).
fail() {
    local name=$1 why=$2
    {
        echo "dispatch stack: $name $why; its last log lines:"
        tail -n 20 "$STACK_DIR/$name.log" | sed 's/^/  | /'
    } >&2
    exit 1
}
listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
# Waits until the last started part listens on PORT; fails when it exits or takes too long.
await_port() {
    local port=$1 seconds=$2
    local pid=${pids[-1]} name=${names[-1]}
    local tries=$((seconds * 10))
    until listening "$port"; do
        kill -0 "$pid" 2>/dev/null || fail "$name" "stopped at start"
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "$name" "did not listen on port $port within ${seconds}s"
        sleep 0.1
    done
}

start nats nats-server -a 127.0.0.1 -p "$NATS_PORT"
await_port "$NATS_PORT" 10
start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no
await_port "$REDIS_PORT" 10

scenario_args=()
[ -n "${SCENARIO:-}" ] && scenario_args=(--scenario "$SCENARIO")
start sim "$SIM_BIN" --nats "nats://127.0.0.1:$NATS_PORT" --redis "redis://127.0.0.1:$REDIS_PORT" \
    --http "127.0.0.1:$SIM_PORT" --time-scale "${TIME_SCALE:-1}" \
    --settle "$((2 * INTERVAL + 5))" "${scenario_args[@]}"
await_port "$SIM_PORT" 30

start monitor env \
    NATS_SERVER1="nats://127.0.0.1:$NATS_PORT" \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    ENVIRONMENT_NAME=local \
    DISPATCH_MONITOR_SERVER_ADDRESS=127.0.0.1 \
    DISPATCH_MONITOR_SERVER_PORT="$MONITOR_PORT" \
    MONITOR_LIT_INTERVAL_SECS="$INTERVAL" \
    MONITOR_CTS_INTERVAL_SECS="$INTERVAL" \
    MONITOR_LEASE_TTL_SECS=30 \
    MONITOR_REQUEST_TIMEOUT_SECS=10 \
    "$MONITOR_BIN" run
await_port "$MONITOR_PORT" 30

cat <<INFO
the stack is up (Ctrl-C stops it):
  monitor      http://127.0.0.1:$MONITOR_PORT/ (dashboard)   /docs (API)   /api/v1/vendors   /metrics   /_health
  simulator    http://127.0.0.1:$SIM_PORT/   /outbox   (POST /faults to inject a fault)
  NATS         nats://127.0.0.1:$NATS_PORT    Redis  redis://127.0.0.1:$REDIS_PORT
  logs         $STACK_DIR/ (monitor.log, sim.log, ...; removed when the stack stops)
the simulated day follows: every note and SMS as it arrives, then a summary.
INFO

# The simulator's timeline, from its first line.
tail -n +1 -f "$STACK_DIR/sim.log" &
pids+=($!)

# Wait until a part ends (a failure) or a signal arrives (the INT/TERM trap exits 0).
part_pids=("${pids[@]:0:${#names[@]}}")
set +e
wait -n "${part_pids[@]}"
set -e
for i in "${!names[@]}"; do
    kill -0 "${part_pids[$i]}" 2>/dev/null || fail "${names[$i]}" "stopped"
done
echo "dispatch stack: a part stopped" >&2
exit 1
