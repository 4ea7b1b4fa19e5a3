#!/usr/bin/env bash
# perf/group-layouts.sh: where a 3-destination group loses requests and CPU on loopback, by
# layout of the destinations (issue 15; PERFORMANCE.md §9). For each layout and each rate,
# one fixed-rate `ferrovia-loadgen send` step through the forwarder, then:
#   lost / kept_up    from the sender (every request must get its 200)
#   cpu µs/msg        the forwarder's CPU (utime+stime, all threads) per message crossing it
#   wake/msg          voluntary context switches per message crossing the forwarder, of the
#                     reflector process(es) and of the forwarder (each is one wake-up from sleep)
#   drops             datagrams the kernel dropped, by socket (ss -uamp `d` counters, cumulative
#                     within a layout): fwd = the forwarder's listener, refl = the reflectors'
#
#   cargo build --release -p ferrovia -p ferrovia-loadgen && perf/group-layouts.sh
#
# Layouts (all on 127.0.0.1, ferrovia --workers 1):
#   relay       ferrovia-relay -> one reflector
#   plain       ferrovia, by Route -> one reflector
#   group3x3    ferrovia, group of three destinations, one reflector process each
#   group3x1    ferrovia, group of three destinations, one reflector process on three addresses
# Knobs: RATES="10000 60000 70000 80000", ROUNDS=2 (layouts interleaved per round),
# SECS=1.5 per step, LAYOUTS="relay plain group3x3 group3x1", PERF_FERROVIA=PATH.
# Loopback only; every process is bounded (--duration) and stopped by PID on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN="$ROOT/target/release"
FERROVIA=${PERF_FERROVIA:-$BIN/ferrovia}
RATES=${RATES:-"10000 60000 70000 80000"}
ROUNDS=${ROUNDS:-2}
SECS=${SECS:-1.5}
LAYOUTS=${LAYOUTS:-"relay plain group3x3 group3x1"}
OUT=${PERF_OUT:-$(mktemp -d /tmp/ferrovia-group-layouts.XXXXXX)}
mkdir -p "$OUT"

PIDS=()
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap stop_all EXIT
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_udp() { python3 "$HERE/measure.py" wait-udp "$1" 5; }
switches() { # voluntary context switches of every thread of the given PIDs
    local pid
    for pid in "$@"; do cat /proc/"$pid"/task/*/status 2>/dev/null; done |
        awk '/^voluntary_ctxt_switches/ {s += $2} END {print s + 0}'
}
# drops PORT...: the kernel's drop counters of the sockets bound to these ports, summed.
drops() {
    ss -uamn | python3 -c '
import re, sys
ports, total, current = set(sys.argv[1:]), 0, None
for line in sys.stdin:
    m = re.match(r"\S+\s+\d+\s+\d+\s+\S+:(\d+)\s", line)
    if m:
        current = m.group(1)
    d = re.search(r"skmem:\(.*?,d(\d+)\)", line)
    if d and current in ports:
        total += int(d.group(1))
print(total)' "$@"
}

group_config() { # group_config FILE PORT...
    local file=$1 p
    shift
    {
        echo 'route-to-group = "core"'
        echo '[[group]]'
        echo 'name = "core"'
        echo 'key = "call-id"'
        echo 'destinations = ['
        for p in "$@"; do echo "  { uri = \"sip:127.0.0.1:$p\", weight = 1 },"; done
        echo ']'
        echo '[group.probe]'
        echo 'interval = "1s"'
        echo 'timeout = "900ms"'
    } >"$file"
}

run_layout() {
    local layout=$1 fwd r1 r2 r3 fwd_pid refl_pids=() config=()
    fwd=$(free_port) r1=$(free_port) r2=$(free_port) r3=$(free_port)
    reflect() {
        "$BIN/ferrovia-loadgen" reflect "$@" --duration 300 >/dev/null 2>&1 &
        PIDS+=("$!")
        refl_pids+=("$!")
    }
    case $layout in
        relay | plain) reflect --listen "127.0.0.1:$r1" ;;
        group3x3) for p in "$r1" "$r2" "$r3"; do reflect --listen "127.0.0.1:$p"; done ;;
        group3x1) reflect --listen "127.0.0.1:$r1" --listen "127.0.0.1:$r2" --listen "127.0.0.1:$r3" ;;
        *) echo "unknown layout $layout" >&2; return 1 ;;
    esac
    if [[ $layout == group3* ]]; then
        group_config "$OUT/$layout.toml" "$r1" "$r2" "$r3"
        config=(--config "$OUT/$layout.toml")
    fi
    if [[ $layout == relay ]]; then
        "$BIN/ferrovia-relay" --listen "127.0.0.1:$fwd" --upstream "127.0.0.1:$r1" \
            --duration 300 >/dev/null 2>&1 &
    else
        "$FERROVIA" --listen "udp:127.0.0.1:$fwd" --workers 1 --metrics off --log-level warn \
            "${config[@]}" >"$OUT/$layout-ferrovia.log" 2>&1 &
    fi
    fwd_pid=$!
    PIDS+=("$fwd_pid")
    wait_udp "$fwd"
    sleep 1.2 # the group's first probes
    local rate
    for rate in $RATES; do
        local cpu0 cpu1 rw0 rw1 fw0 fw1
        cpu0=$(python3 "$HERE/measure.py" cpu "$fwd_pid")
        rw0=$(switches "${refl_pids[@]}") fw0=$(switches "$fwd_pid")
        "$BIN/ferrovia-loadgen" send --target "127.0.0.1:$fwd" --reflector "127.0.0.1:$r1" \
            --rate "$rate" --duration "$SECS" --grace-ms 500 >"$OUT/send.json" 2>/dev/null || true
        cpu1=$(python3 "$HERE/measure.py" cpu "$fwd_pid")
        rw1=$(switches "${refl_pids[@]}") fw1=$(switches "$fwd_pid")
        python3 - "$layout" "$rate" "$cpu0" "$cpu1" $((rw1 - rw0)) $((fw1 - fw0)) \
            "$(drops "$fwd")" "$(drops "$r1" "$r2" "$r3")" "$(cut -d' ' -f1 /proc/loadavg)" \
            "$OUT/send.json" <<'PY'
import json, sys
layout, rate, c0, c1, rw, fw, dfwd, drefl, load, send = sys.argv[1:]
c0, c1 = json.loads(c0), json.loads(c1)
s = json.loads(open(send).read().strip().splitlines()[-1])
msgs = max(s["sent"] + s["answered"], 1)
cpu = (c1["sched_ns"] - c0["sched_ns"]) / msgs / 1000
print(f"| {layout} | {int(rate):,} | {s['lost']:,} | {s['kept_up']} | {cpu:.2f} | "
      f"{int(rw) / msgs:.2f} | {int(fw) / msgs:.2f} | {int(dfwd):,} | {int(drefl):,} | {load} |")
PY
        sleep 0.5
    done
    stop_all
}

echo "| layout | rate req/s | lost | kept up | cpu µs/msg | wake/msg reflectors | wake/msg forwarder | drops fwd | drops refl | load |"
echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"
for _ in $(seq "$ROUNDS"); do
    for layout in $LAYOUTS; do
        run_layout "$layout"
    done
done
echo "raw: $OUT" >&2
