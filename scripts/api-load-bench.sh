#!/usr/bin/env bash
# The operator API under load (a benchmark, not a test; results in BENCHMARKS.md): the release
# `dispatch-monitor run` over the bench world (dispatch-bench's, on its own nats-server,
# redis-server and simulator on free loopback ports) runs a LIT cycle every INTERVAL seconds;
# for PHASE seconds nothing else happens, then for PHASE seconds two `wrk` processes hit
# `/api/v1/dispatches` and `/metrics` as fast as they can. Prints requests/s and latency
# percentiles of each, and the LIT cycles' wall times (from the journal: finished - started)
# without and with the load, and the load average. Everything it started stops at exit.
#
# Settings (env): DISPATCHES (1000), LATENCY_MS (0: the cycle is CPU-bound, the worst case for
# sharing the CPU), CONCURRENCY (8), INTERVAL (5), PHASE (40), CONNECTIONS per wrk (32).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-packages.sh
ensure_packages nats-server redis-server wrk

DISPATCHES=${DISPATCHES:-1000}
LATENCY_MS=${LATENCY_MS:-0}
CONCURRENCY=${CONCURRENCY:-8}
INTERVAL=${INTERVAL:-5}
PHASE=${PHASE:-40}
CONNECTIONS=${CONNECTIONS:-32}

cargo build --release --quiet -p dispatch-monitor -p dispatch-bench

work=$(mktemp -d "${TMPDIR:-/tmp}/api-load.XXXXXX")
pids=()
cleanup() {
    exec 3>&- 2>/dev/null || true
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

# The world serves while its stdin stays open (fd 3 here).
mkfifo "$work/world.in"
target/release/dispatch-bench --dispatches "$DISPATCHES" --latency-ms "$LATENCY_MS" world \
    <"$work/world.in" >"$work/world.out" 2>"$work/world.log" &
pids+=($!)
exec 3>"$work/world.in"
for _ in $(seq 300); do
    [ -s "$work/world.out" ] && break
    sleep 0.1
done
read -r nats_url redis_url <"$work/world.out" || { cat "$work/world.log" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
base="http://127.0.0.1:$port"
env -i PATH="$PATH" \
    NATS_SERVER1="$nats_url" REDIS_URL="$redis_url" ENVIRONMENT_NAME=bench \
    DISPATCH_MONITOR_SERVER_ADDRESS=127.0.0.1 DISPATCH_MONITOR_SERVER_PORT="$port" \
    MONITOR_LIT_INTERVAL_SECS="$INTERVAL" MONITOR_CTS_INTERVAL_SECS="$INTERVAL" \
    MONITOR_CONCURRENCY="$CONCURRENCY" MONITOR_ALERT_LEVEL=errors RUST_LOG=warn \
    target/release/dispatch-monitor run >"$work/monitor.log" 2>&1 &
pids+=($!)
cycles() {
    curl -fsS "$base/api/v1/cycles?vendor=LIT&limit=100"
}
# Past the first cycle (which registers every dispatch) before measuring.
for _ in $(seq 600); do
    n=$(cycles 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null || echo 0)
    [ "$n" -ge 2 ] && break
    sleep 0.1
done
[ "${n:-0}" -ge 2 ] || { tail -n 20 "$work/monitor.log" >&2; exit 1; }

echo "N=$DISPATCHES L=${LATENCY_MS}ms C=$CONCURRENCY, a LIT cycle every ${INTERVAL}s; $CONNECTIONS connections per wrk; ${PHASE}s each phase"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
idle_from=$(date +%s.%N)
sleep "$PHASE"
idle_to=$(date +%s.%N)
wrk -t1 -c"$CONNECTIONS" -d"${PHASE}s" --latency "$base/api/v1/dispatches" >"$work/dispatches.txt" &
wrk_a=$!
wrk -t1 -c"$CONNECTIONS" -d"${PHASE}s" --latency "$base/metrics" >"$work/metrics.txt" &
wrk_b=$!
sleep $((PHASE / 2))
echo "load average under load: $(cut -d' ' -f1-3 /proc/loadavg)"
wait "$wrk_a" "$wrk_b"
load_to=$(date +%s.%N)
# The last cycle started under load ends.
sleep $((INTERVAL + 2))
cycles >"$work/cycles.json"

python3 - "$work" "$idle_from" "$idle_to" "$load_to" <<'PY'
import json, re, statistics, sys
from datetime import datetime

work, idle_from, idle_to, load_to = sys.argv[1], *map(float, sys.argv[2:])

def seconds(text):
    text = re.sub(r"(\.\d{6})\d*", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()

def wrk(name):
    text = open(f"{work}/{name}.txt").read()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = re.search(r"50%\s+(\S+)", text).group(1)
    p99 = re.search(r"99%\s+(\S+)", text).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(r"Socket errors: (.*)", text)
    return rate, p50, p99, errors.group(1) if errors else "0", socket.group(1) if socket else "none"

for name, path in [("dispatches", "/api/v1/dispatches"), ("metrics", "/metrics")]:
    rate, p50, p99, errors, socket = wrk(name)
    print(f"{path:20} {rate:9.1f} req/s   p50 {p50:>8}   p99 {p99:>8}   non-2xx {errors}   socket errors: {socket}")

cycles = [(seconds(c["started"]), seconds(c["finished"]) - seconds(c["started"])) for c in json.load(open(f"{work}/cycles.json"))]
idle = sorted(wall for started, wall in cycles if idle_from <= started < idle_to)
loaded = sorted(wall for started, wall in cycles if idle_to <= started < load_to)
def show(label, walls):
    if not walls:
        print(f"{label}: no cycle")
        return None
    median = statistics.median(walls)
    print(f"{label}: {len(walls)} cycles, wall median {median:.3f} s, min {walls[0]:.3f}, max {walls[-1]:.3f}")
    return median
a = show("cycles without load", idle)
b = show("cycles under load   ", loaded)
if a and b:
    print(f"slowdown under load: {100 * (b / a - 1):+.0f} % (target: at most +10 %)")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
