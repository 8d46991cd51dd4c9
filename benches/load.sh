#!/usr/bin/env bash
# Load test: `sse hub` against the axum + tokio::sync::broadcast baseline
# (benches/src/bin/baseline-hub.rs), driven over loopback by sse-load
# (benches/src/bin/sse-load.rs). Prints a Markdown table comparing the two;
# raw results (JSON lines) and hub logs go to $OUT (default target/load).
#
#   bash benches/load.sh            # about 3.5 minutes on 2 cores, plus the build
#   bash benches/load.sh cores      # ours only, on 1 core and then on 2 (taskset):
#                                   # how the hub scales with the cores it is given
#
# Scenarios, on each hub in turn (a fresh process per hub):
#   idle 1000 and 10000 subscribers, 3 connect/close rounds each
#   fan-out of a 1000-event burst to 10000 subscribers
#   fan-out at 100 events/s for 5 s to 10000 subscribers
#   fan-out of a 2000-event burst to 1000 subscribers
#   publish throughput: 16 pipelined publishers (4 in flight each) for 10 s,
#   one subscriber
# and once more the baseline with a deep listen backlog (idle 10000 only).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-target/load}
LOAD=target/release/sse-load
# 10000 subscribers take 10000 descriptors in each of the hub and the tool.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt 12000 ]; then
    echo "load.sh: ulimit -n is $(ulimit -n); 10000 subscribers need more than 12000" >&2
    exit 1
fi

cargo build --release -q -p sse-bench --bins -p sse-cli
mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl

HUB_PID=
HUB_URL=
stop_hub() {
    if [ -n "$HUB_PID" ] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill -TERM "$HUB_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$HUB_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$HUB_PID" 2>/dev/null || true
        wait "$HUB_PID" 2>/dev/null || true
    fi
    HUB_PID=
}
trap stop_hub EXIT

# start_hub NAME COMMAND...: starts a hub, waits (10 s at most) for its
# "listening on http://ADDR" line, sets HUB_PID and HUB_URL.
start_hub() {
    local name=$1
    shift
    "$@" 2>"$OUT/$name.log" &
    HUB_PID=$!
    HUB_URL=
    for _ in $(seq 100); do
        HUB_URL=$(grep -o 'listening on http://[0-9.:]*' "$OUT/$name.log" | head -1 | sed 's/listening on //' || true)
        [ -n "$HUB_URL" ] && break
        sleep 0.1
    done
    if [ -z "$HUB_URL" ]; then
        echo "load.sh: $name did not start:" >&2
        cat "$OUT/$name.log" >&2
        exit 1
    fi
    echo "== $name: $* (pid $HUB_PID, $HUB_URL)"
}

# load LABEL ARGS...: one sse-load scenario against the running hub.
load() {
    local label=$1 mode=$2
    shift 2
    timeout 150 "$LOAD" "$mode" --url "$HUB_URL" --pid "$HUB_PID" --label "$label" \
        --out "$OUT/$label.jsonl" "$@" | grep -v '^RESULT '
}

scenarios() {
    local label=$1
    load "$label" idle --subscribers 1000 --rounds 3
    load "$label" idle --subscribers 10000 --rounds 3
    load "$label" fanout --subscribers 10000 --events 1000
    load "$label" fanout --subscribers 10000 --events 500 --rate 100
    load "$label" fanout --subscribers 1000 --events 2000
    load "$label" throughput --publishers 16 --window 4 --seconds 10
}

# `cores`: our hub alone, pinned to one core and then to two (its runtime
# sizes follow the cores it may use); the load tool is not pinned.
if [ "${1:-}" = cores ]; then
    echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(rustc --version)"
    for cpus in 0 0,1; do
        label="ours-cpus-${cpus/,/-}"
        start_hub "$label" taskset -c "$cpus" target/release/sse hub --listen 127.0.0.1:0 \
            --heartbeat 0 --history 100000
        grep -o 'threads: .*' "$OUT/$label.log" | head -1 || true
        load "$label" fanout --subscribers 10000 --events 1000
        load "$label" fanout --subscribers 1000 --events 2000
        load "$label" throughput --publishers 16 --window 4 --seconds 10
        stop_hub
    done
    exit 0
fi

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(rustc --version)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
started=$(date +%s)

# The per-subscriber queue (default 4096 events) holds every burst here, so
# no subscriber is cut off for lagging.
start_hub ours target/release/sse hub --listen 127.0.0.1:0 --heartbeat 0 --history 100000
scenarios ours
stop_hub

start_hub baseline target/release/baseline-hub --listen 127.0.0.1:0
scenarios baseline
stop_hub

start_hub baseline-backlog target/release/baseline-hub --listen 127.0.0.1:0 --backlog 4096
load baseline-backlog idle --subscribers 10000 --rounds 3
stop_hub

echo
echo "## sse hub vs baseline ($(( $(date +%s) - started )) s)"
echo
"$LOAD" report --ours "$OUT/ours.jsonl" --baseline "$OUT/baseline.jsonl" | tee "$OUT/table.md"
echo
echo "baseline with --backlog 4096, idle 10000: established (median of rounds)" \
    "$(grep -o '"established_s_median":[0-9.]*' "$OUT/baseline-backlog.jsonl" | cut -d: -f2) s," \
    "RSS per connection $(grep -o '"bytes_per_conn":[0-9.]*' "$OUT/baseline-backlog.jsonl" | tail -1 | cut -d: -f2) B"
