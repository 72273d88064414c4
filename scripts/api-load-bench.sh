#!/usr/bin/env bash
# The operator API under load (a benchmark, not a test; results in BENCHMARKS.md): the release
# `dispatch-monitor run` over the bench world (dispatch-bench's, on its own nats-server,
# redis-server and simulator on free loopback ports) runs a LIT cycle every INTERVAL seconds.
# ROUNDS times, back to back: for PHASE seconds nothing else happens, then for PHASE seconds two
# `wrk` processes hit `/api/v1/dispatches` and `/metrics` as fast as they can. Prints, per round
# and as medians over the rounds, requests/s and latency percentiles of each, and the LIT
# cycles' wall times (from the journal: finished - started) without and with the load, and the
# load average. Everything it started stops at exit.
#
# Settings (env): DISPATCHES (1000), LATENCY_MS (0: the cycle is CPU-bound, the worst case for
# sharing the CPU), CONCURRENCY (8), INTERVAL (5), PHASE (30), ROUNDS (3), CONNECTIONS per wrk
# (32), WRK_NICE (0: `wrk` competes with the service at normal priority; 19 comes closer to a
# client on another machine).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-packages.sh
ensure_packages nats-server redis-server wrk

DISPATCHES=${DISPATCHES:-1000}
LATENCY_MS=${LATENCY_MS:-0}
CONCURRENCY=${CONCURRENCY:-8}
INTERVAL=${INTERVAL:-5}
PHASE=${PHASE:-30}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
WRK_NICE=${WRK_NICE:-0}

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

echo "N=$DISPATCHES L=${LATENCY_MS}ms C=$CONCURRENCY, a LIT cycle every ${INTERVAL}s; $CONNECTIONS connections per wrk (nice $WRK_NICE); $ROUNDS rounds of ${PHASE}s without, then ${PHASE}s with load"
monitor=${pids[-1]}
# The service's threads by name and niceness (the HTTP server's run at 10).
echo "monitor threads (count name=niceness): $(for task in /proc/"$monitor"/task/*; do
    stat=$(cat "$task/stat")
    set -- ${stat##*) }
    echo "$(cat "$task/comm")=${17}"
done | sort | uniq -c | tr -s ' \n' ' ')"
: >"$work/phases"
# CPU ticks the service has used so far: its HTTP threads', then the others'.
service_cpu() {
    local task stat http=0 other=0
    for task in /proc/"$monitor"/task/*; do
        stat=$(cat "$task/stat" 2>/dev/null) || continue
        set -- ${stat##*) }
        if [ "$(cat "$task/comm" 2>/dev/null)" = http ]; then
            http=$((http + ${12} + ${13}))
        else
            other=$((other + ${12} + ${13}))
        fi
    done
    echo "$http $other"
}
# Runs one wrk, then writes the CPU seconds it used (user + system) to $2.cpu.
load() {
    bash -c 'nice -n "$1" wrk -t1 -c"$2" -d"$3s" --latency "$4" >"$5"; times >"$5.times"' \
        _ "$WRK_NICE" "$CONNECTIONS" "$PHASE" "$1" "$2"
}
for round in $(seq "$ROUNDS"); do
    load_before=$(cut -d' ' -f1 /proc/loadavg)
    idle_from=$(date +%s.%N)
    cpu_a=$(service_cpu)
    sleep "$PHASE"
    cpu_b=$(service_cpu)
    idle_to=$(date +%s.%N)
    load "$base/api/v1/dispatches" "$work/dispatches.$round.txt" &
    wrk_a=$!
    load "$base/metrics" "$work/metrics.$round.txt" &
    wrk_b=$!
    sleep $((PHASE / 2))
    load_under=$(cut -d' ' -f1 /proc/loadavg)
    wait "$wrk_a" "$wrk_b"
    cpu_c=$(service_cpu)
    load_to=$(date +%s.%N)
    echo "$round $idle_from $idle_to $load_to $load_before $load_under $cpu_a $cpu_b $cpu_c" >>"$work/phases"
done
# The last cycle started under load ends.
sleep $((INTERVAL + 2))
cycles >"$work/cycles.json"

python3 - "$work" <<'PY'
import json, re, statistics, sys
from datetime import datetime

work = sys.argv[1]

def seconds(text):
    text = re.sub(r"(\.\d{6})\d*", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()

def ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

TICK = 100  # USER_HZ: /proc's CPU times are in 1/100 s.

def wrk_cpu(name, round):
    # `times` prints the shell's, then its children's, user and system time: 0m1.234s 0m0.567s.
    children = open(f"{work}/{name}.{round}.txt.times").read().split("\n")[1].split()
    return sum(int(m) * 60 + float(s) for m, s in (re.match(r"(\d+)m([\d.]+)s", t).groups() for t in children))

def wrk(name, round):
    text = open(f"{work}/{name}.{round}.txt").read()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"50%\s+(\S+)", text).group(1))
    p99 = ms(re.search(r"99%\s+(\S+)", text).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(r"Socket errors: (.*)", text)
    value, unit = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", text).groups()
    size = float(value) * {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}[unit] / rate / 1000
    return rate, p50, p99, int(errors.group(1)) if errors else 0, socket.group(1) if socket else "none", size

cycles = [(seconds(c["started"]), seconds(c["finished"]) - seconds(c["started"])) for c in json.load(open(f"{work}/cycles.json"))]
phases = [line.split() for line in open(f"{work}/phases")]
endpoints = [("dispatches", "/api/v1/dispatches"), ("metrics", "/metrics")]
all_idle, all_loaded, slowdowns, shares = [], [], [], []
served = {name: [] for name, _ in endpoints}
for round, idle_from, idle_to, load_to, load_before, load_under, *cpu in phases:
    idle_from, idle_to, load_to = map(float, (idle_from, idle_to, load_to))
    http_a, other_a, http_b, other_b, http_c, other_c = (int(t) / TICK for t in cpu)
    wrk_seconds = sum(wrk_cpu(name, round) for name, _ in endpoints)
    span = load_to - idle_to
    shares.append((http_c - http_b, other_c - other_b, wrk_seconds, span))
    idle = sorted(w for s, w in cycles if idle_from <= s < idle_to)
    loaded = sorted(w for s, w in cycles if idle_to <= s < load_to)
    all_idle += idle
    all_loaded += loaded
    print(f"round {round}: load average {load_before} before, {load_under} under load")
    for name, path in endpoints:
        rate, p50, p99, errors, socket, size = wrk(name, round)
        served[name].append((rate, p50, p99))
        print(f"  {path:20} {rate:9.1f} req/s   p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   ~{size:.0f} kB each   non-2xx {errors}   socket errors: {socket}")
    print(f"  CPU without load: service {(http_b - http_a) + (other_b - other_a):.1f} s of {idle_to - idle_from:.0f} s; under load: HTTP threads {http_c - http_b:.1f} s, the other threads {other_c - other_b:.1f} s, the two wrk {wrk_seconds:.1f} s, of {span:.0f} s (2 cores: {2 * span:.0f} CPU s)")
    if idle and loaded:
        a, b = statistics.median(idle), statistics.median(loaded)
        slowdowns.append(100 * (b / a - 1))
        print(f"  cycles without load: {len(idle)}, median {a:.3f} s ({idle[0]:.3f} - {idle[-1]:.3f}); under load: {len(loaded)}, median {b:.3f} s ({loaded[0]:.3f} - {loaded[-1]:.3f}); {slowdowns[-1]:+.0f} %")
    else:
        print(f"  cycles without load: {len(idle)}, under load: {len(loaded)}")
print(f"medians over {len(phases)} rounds:")
for name, path in endpoints:
    rates, p50s, p99s = zip(*served[name])
    print(f"  {path:20} {statistics.median(rates):9.1f} req/s   p50 {statistics.median(p50s):8.2f} ms   p99 {statistics.median(p99s):8.2f} ms")
http, other, wrk_seconds, span = (statistics.median(x) for x in zip(*shares))
print(f"  CPU under load per round: HTTP threads {http:.1f} s, the other threads {other:.1f} s, the two wrk {wrk_seconds:.1f} s, of {span:.0f} s")
if all_idle and all_loaded:
    a, b = statistics.median(all_idle), statistics.median(all_loaded)
    print(f"  cycles without load: {len(all_idle)}, median {a:.3f} s; under load: {len(all_loaded)}, median {b:.3f} s")
    print(f"  slowdown under load: {100 * (b / a - 1):+.1f} % over all cycles; per round {', '.join(f'{s:+.0f} %' for s in slowdowns)} (target: at most +10 %)")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
