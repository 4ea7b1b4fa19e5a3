#!/usr/bin/env bash
# perf/group-callgrind.sh: user-space instructions per forwarded message in ferrovia's worker,
# plain (forwarding by Route) against a 3-destination group (hash over Call-ID, weights 1,
# probed every second) — the comparison of perf/run.sh's ferrovia-w1 and ferrovia-w1-group3 in
# deterministic figures that the other load on a shared machine does not move.
#
#   cargo build --release -p ferrovia -p ferrovia-loadgen && perf/group-callgrind.sh
#
# Three `ferrovia-loadgen reflect` answer in both runs. For each configuration, ferrovia
# --workers 1 runs under callgrind (one file per thread) and `ferrovia-loadgen send` offers
# COUNT1 and then COUNT2 INVITEs at RATE/s (one flow per request burst of 1, so every message
# has its own wake-up, as at low load), each between a zeroing and a dump of the counters
# (callgrind_control -z / -d). The figures are differences: (instructions of the COUNT2 run -
# of the COUNT1 run) / (2 x (COUNT2 - COUNT1)), per message crossing the proxy (request and
# its 200), start-up and warm-up excluded, for the whole worker thread and for the core alone
# (`screen_then_handle`, inclusive: the core's decision, rewrite and group selection). The
# core's figure repeats to a few instructions; the worker's moves by about ±100 from run to
# run with how many messages share a wake-up (the cost of the event loop and the system call
# wrappers per wake-up). The group's probes (three OPTIONS a second, answered and consumed by
# the worker) are part of both, as they are of the CPU time in perf/run.sh. Kernel time is not
# counted. PERF_FERROVIA=PATH runs another ferrovia binary. The top functions (inclusive,
# COUNT2 run) of each worker go to OUT/top-<config>.txt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN="$ROOT/target/release"
FERROVIA=${PERF_FERROVIA:-$BIN/ferrovia}
COUNT1=${COUNT1:-500}
COUNT2=${COUNT2:-2500}
RATE=${RATE:-500}
OUT=${PERF_OUT:-$(mktemp -d /tmp/ferrovia-group-cg.XXXXXX)}
mkdir -p "$OUT"

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_udp() { python3 "$HERE/measure.py" wait-udp "$1" "$2"; }

reflectors=()
for _ in 1 2 3; do
    p=$(free_port)
    "$BIN/ferrovia-loadgen" reflect --listen "127.0.0.1:$p" --duration 600 >/dev/null 2>&1 &
    PIDS+=("$!")
    reflectors+=("$p")
    wait_udp "$p" 5
done
{
    echo 'route-to-group = "core"'
    echo '[[group]]'
    echo 'name = "core"'
    echo 'algorithm = "hash"'
    echo 'key = "call-id"'
    echo 'destinations = ['
    for p in "${reflectors[@]}"; do echo "  { uri = \"sip:127.0.0.1:$p\", weight = 1 },"; done
    echo ']'
    echo '[group.probe]'
    echo 'interval = "1s"'
    echo 'timeout = "900ms"'
} >"$OUT/group3.toml"
: >"$OUT/plain.toml"

# The worker is the thread with the most instructions in a dump.
worker_ir() { for f in "$OUT"/cg-"$1".out."$2"-*; do awk '/^(summary|totals):/ {print $2; exit}' "$f"; done | sort -n | tail -1; }
worker_file() { for f in "$OUT"/cg-"$1".out."$2"-*; do echo "$(awk '/^(summary|totals):/ {print $2; exit}' "$f") $f"; done | sort -n | tail -1 | cut -d' ' -f2; }

# The core's inclusive instructions in one dump's worker file.
core_ir() {
    callgrind_annotate --inclusive=yes "$(worker_file "$1" "$2")" 2>/dev/null |
        awk '/worker::screen_then_handle/ && !seen {gsub(",", "", $1); print $1; seen = 1}'
}

declare -A per core
for config in plain group3; do
    port=$(free_port)
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/cg-$config.out" \
        "$FERROVIA" --config "$OUT/$config.toml" --listen "udp:127.0.0.1:$port" --workers 1 \
        --metrics off --log-level warn 2>"$OUT/ferrovia-$config.log" &
    proxy=$!
    PIDS+=("$proxy")
    wait_udp "$port" 60
    sleep 2 # the prober's first round
    for n in "$COUNT1" "$COUNT2"; do
        callgrind_control -z "$proxy" >/dev/null 2>&1
        "$BIN/ferrovia-loadgen" send --target "127.0.0.1:$port" \
            --reflector "127.0.0.1:${reflectors[0]}" --rate "$RATE" --count "$n" \
            --duration $((n / RATE + 30)) --flows 8 --batch 1 --grace-ms 2000 \
            >>"$OUT/send-$config.jsonl" 2>/dev/null
        callgrind_control -d "$proxy" >/dev/null 2>&1
    done
    kill -TERM "$proxy"
    wait "$proxy" 2>/dev/null || true
    lost=$(python3 -c 'import json,sys; print(sum(json.loads(l)["lost"] for l in open(sys.argv[1])))' "$OUT/send-$config.jsonl")
    a=$(worker_ir "$config" 1)
    b=$(worker_ir "$config" 2)
    per[$config]=$(python3 -c "print(round(($b - $a) / (2 * ($COUNT2 - $COUNT1))))")
    a=$(core_ir "$config" 1)
    b=$(core_ir "$config" 2)
    core[$config]=$(python3 -c "print(round(($b - $a) / (2 * ($COUNT2 - $COUNT1))))")
    callgrind_annotate --inclusive=yes "$(worker_file "$config" 2)" 2>/dev/null | head -80 \
        >"$OUT/top-$config.txt" || true
    echo "$config: instructions per message: worker ${per[$config]}, core ${core[$config]} (requests lost: $lost)" >&2
done
echo "| configuration | worker instructions per message | × plain | core (screen_then_handle) | × plain |"
echo "|---|---:|---:|---:|---:|"
for config in plain group3; do
    ratio=$(python3 -c "print(f'{${per[$config]} / ${per[plain]}:.3f}')")
    core_ratio=$(python3 -c "print(f'{${core[$config]} / ${core[plain]}:.3f}')")
    echo "| $config | ${per[$config]} | $ratio | ${core[$config]} | $core_ratio |"
done
echo "raw: $OUT (top functions: $OUT/top-*.txt)"
