#!/usr/bin/env bash
# Schemathesis (an OpenAPI fuzzer nobody here wrote) against `dispatch-monitor run`: every check,
# every phase (examples, coverage, fuzzing, stateful), the operator token set. It starts its own
# nats-server and redis-server on free loopback ports, the simulated bridges and the monitor, waits
# until the first cycles are in the journal, runs schemathesis and stops everything it started.
# Exit status: schemathesis's (0 when it found nothing).
#
# Schemathesis comes from PyPI, at the pinned version, in a venv under target/. Settings (env):
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase (default 40)
#   SCHEMATHESIS_MAX_TIME      the whole run's time budget in seconds (default 120)
#   SCHEMATHESIS_SEED          the generator's seed (default fixed, so CI runs are repeatable;
#                              `random` draws a new one)
#   MONITOR_BIN, SIM_BIN       prebuilt binaries instead of building the debug ones
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-packages.sh
ensure_packages nats-server redis-server

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-40}
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-120}
SEED=${SCHEMATHESIS_SEED:-22}
TOKEN=schemathesis-operator-token-0123456789

venv=target/schemathesis-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION in $venv ..."
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [ -z "${MONITOR_BIN:-}" ] || [ -z "${SIM_BIN:-}" ]; then
    cargo build --quiet -p dispatch-monitor -p dispatch-sim
fi
MONITOR_BIN=${MONITOR_BIN:-target/debug/dispatch-monitor}
SIM_BIN=${SIM_BIN:-target/debug/dispatch-sim}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
NATS_PORT=$(free_port)
REDIS_PORT=$(free_port)
SIM_PORT=$(free_port)
MONITOR_PORT=$(free_port)

work=$(mktemp -d "${TMPDIR:-/tmp}/schemathesis.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts a part in the background, its output in $work/NAME.log.
start() {
    local name=$1
    shift
    "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
}
# Prints NAME's last log lines and exits 1.
fail() {
    echo "schemathesis.sh: $1 $2; its last log lines:" >&2
    tail -n 30 "$work/$1.log" | sed 's/^/  | /' >&2
    exit 1
}
# Waits up to SECONDS for `curl URL` to succeed (and print something other than `[]`), while the
# last started part runs.
await_url() {
    local name=$1 url=$2 seconds=$3
    local pid=${pids[-1]} deadline=$((SECONDS + seconds)) body
    until body=$(curl -fsS --max-time 2 "$url" 2>/dev/null) && [ "$body" != "[]" ]; do
        kill -0 "$pid" 2>/dev/null || fail "$name" "stopped"
        [ "$SECONDS" -lt "$deadline" ] || fail "$name" "did not answer $url within ${seconds}s"
        sleep 0.2
    done
}
await_port() {
    local name=$1 port=$2 pid=${pids[-1]} deadline=$((SECONDS + 10))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || fail "$name" "stopped"
        [ "$SECONDS" -lt "$deadline" ] || fail "$name" "did not listen on $port"
        sleep 0.1
    done
}

start nats nats-server -a 127.0.0.1 -p "$NATS_PORT"
await_port nats "$NATS_PORT"
start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no
await_port redis "$REDIS_PORT"
start sim "$SIM_BIN" --nats "nats://127.0.0.1:$NATS_PORT" --redis "redis://127.0.0.1:$REDIS_PORT" \
    --http "127.0.0.1:$SIM_PORT" --settle 3600
await_url sim "http://127.0.0.1:$SIM_PORT/" 30
start monitor env \
    NATS_SERVER1="nats://127.0.0.1:$NATS_PORT" \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    ENVIRONMENT_NAME=schemathesis \
    DISPATCH_MONITOR_SERVER_ADDRESS=127.0.0.1 \
    DISPATCH_MONITOR_SERVER_PORT="$MONITOR_PORT" \
    MONITOR_LIT_INTERVAL_SECS=20 \
    MONITOR_CTS_INTERVAL_SECS=20 \
    MONITOR_LEASE_TTL_SECS=30 \
    MONITOR_REQUEST_TIMEOUT_SECS=10 \
    MONITOR_API_TOKEN="$TOKEN" \
    "$MONITOR_BIN" run
base="http://127.0.0.1:$MONITOR_PORT"
await_url monitor "$base/_health" 60
# The first cycles are journaled: the lists and the stateful links have data to follow.
await_url monitor "$base/api/v1/dispatches" 60

seed_args=()
[ "$SEED" = random ] || seed_args=(--seed "$SEED")
echo "schemathesis $SCHEMATHESIS_VERSION against $base/openapi.json" \
    "(max $MAX_EXAMPLES examples, ${MAX_TIME}s, seed ${SEED})"
set +e
# The hooks file holds a workaround for a CPython race between the two workers (see it).
SCHEMATHESIS_HOOKS=scripts/schemathesis_hooks.py \
    "$venv/bin/schemathesis" --config-file scripts/schemathesis.toml run "$base/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --header "Authorization: Bearer $TOKEN" \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --request-timeout 15 \
    --workers 2 \
    --generation-database none \
    --no-color \
    "${seed_args[@]}"
status=$?
set -e
if ! kill -0 "${pids[-1]}" 2>/dev/null; then
    echo "schemathesis.sh: the monitor stopped during the run" >&2
    tail -n 30 "$work/monitor.log" | sed 's/^/  | /' >&2
    status=1
fi
exit "$status"
