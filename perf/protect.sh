#!/usr/bin/env bash
# perf/protect.sh: what edge protection costs, on loopback, in one bounded run (~1.5 min).
#
#   perf/protect.sh            (after: cargo build --release -p ferrovia -p ferrovia-loadgen)
#
# 1. Forwarding with protection off and on, alternately (PROTECT_ROUNDS times each):
#    ferrovia-loadgen send (64 flows from 127.0.0.1, PROTECT_RATE requests/s, PROTECT_SECS s)
#    -> ferrovia --workers 2 -> ferrovia-loadgen reflect. "on" is the worked example's
#    [protect] (allowlist, scanner patterns, bans) with a limit no test source reaches, so
#    every request is looked up, charged and let through. Figure: the proxy's CPU time per
#    forwarded message (requests + responses), from the scheduler's ns counters.
# 2. Dropping a flood: the worked example's [protect] (1,000 requests/s, burst 2,000, ban
#    after 1 s); the load generator sends FLOOD_RATE INVITEs/s from 127.0.0.2 for FLOOD_SECS s.
#    Figures: CPU per message while rate-limited (before the ban, with the ban made to come
#    late) and while banned (CPU counted from 1.5 s in).
# Prints one Markdown table. Every process is bounded and stopped on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN="$ROOT/target/release"
RATE=${PROTECT_RATE:-20000}
SECS=${PROTECT_SECS:-4}
ROUNDS=${PROTECT_ROUNDS:-5}
FLOOD_RATE=${FLOOD_RATE:-50000}
FLOOD_SECS=${FLOOD_SECS:-6}
OUT=$(mktemp -d /tmp/ferrovia-protect.XXXXXX)
PIDS=()

cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END {printf "%d\n", s}'; }

# The example's [protect], routed by Request-URI (no route-all-to), with `$1` lines added to
# [protect.limit] and `$2` to [protect.ban].
config() {
    local file="$OUT/$3.toml"
    grep -v '^route-all-to' "$ROOT/examples/protection/edge.toml" >"$file"
    python3 - "$file" "$1" "$2" <<'PY'
import sys
path, limit, ban = sys.argv[1:]
text = open(path).read()
if limit:
    text = text.replace("requests-per-second = 1000\nburst = 2000", limit.replace("\\n", "\n"))
if ban:
    text = text.replace('after = "1s"', ban)
open(path, "w").write(text)
PY
    echo "$file"
}

start_proxy() { # port, extra args...
    local port=$1; shift
    "$BIN/ferrovia" --listen "udp:127.0.0.1:$port" --workers 2 --metrics off --log-level warn "$@" \
        2>>"$OUT/ferrovia.log" &
    PROXY=$!
    PIDS+=("$PROXY")
    sleep 0.5
}

stop_proxy() { kill -TERM "$PROXY" 2>/dev/null || true; wait "$PROXY" 2>/dev/null || true; }

REFLECT_PORT=$(free_port)
"$BIN/ferrovia-loadgen" reflect --listen "127.0.0.1:$REFLECT_PORT" --duration 600 >/dev/null 2>&1 &
PIDS+=("$!")
ON=$(config "requests-per-second = 1000000\nburst = 1000000" "" on)

forward_round() { # label, extra proxy args...
    local label=$1; shift
    local port; port=$(free_port)
    start_proxy "$port" "$@"
    local before; before=$(cpu_ns "$PROXY")
    "$BIN/ferrovia-loadgen" send --target "127.0.0.1:$port" --reflector "127.0.0.1:$REFLECT_PORT" \
        --rate "$RATE" --duration "$SECS" --size 600 >"$OUT/send.json" 2>/dev/null
    local after; after=$(cpu_ns "$PROXY")
    stop_proxy
    local answered; answered=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["answered"])' "$OUT/send.json")
    python3 -c 'import sys; c=int(sys.argv[2])-int(sys.argv[1]); a=int(sys.argv[3]); print(f"{c/(2*a)/1000:.3f} {a}")' \
        "$before" "$after" "$answered" >>"$OUT/$label.txt"
}

for _ in $(seq 1 "$ROUNDS"); do
    forward_round off
    forward_round on --config "$ON"
done

flood() { # label, config, seconds to skip before counting
    local port; port=$(free_port)
    start_proxy "$port" --config "$2"
    local sink; sink=$(free_port)
    "$BIN/ferrovia-loadgen" send --target "127.0.0.1:$port" --reflector "127.0.0.1:$sink" \
        --source 127.0.0.2 --rate "$FLOOD_RATE" --duration "$FLOOD_SECS" --size 600 \
        --grace-ms 100 >"$OUT/flood.json" 2>/dev/null &
    local sender=$!
    sleep "$3"
    local before; before=$(cpu_ns "$PROXY")
    wait "$sender"
    local after; after=$(cpu_ns "$PROXY")
    stop_proxy
    python3 -c 'import sys; c=int(sys.argv[2])-int(sys.argv[1]); n=float(sys.argv[3])*(float(sys.argv[4])-float(sys.argv[5])); print(f"{c/n/1000:.3f}")' \
        "$before" "$after" "$FLOOD_RATE" "$FLOOD_SECS" "$3" >"$OUT/$1.txt"
}

flood rate "$(config "" 'after = "3600s"' rate)" 0.5
flood ban "$(config "" "" ban)" 1.5

median() { cut -d' ' -f1 "$1" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
lowest() { cut -d' ' -f1 "$1" | sort -n | head -1; }
OFF=$(median "$OUT/off.txt"); ONM=$(median "$OUT/on.txt")
echo
echo "| what | CPU µs per message, median | lowest | runs (in order) |"
echo "|---|---|---|---|"
echo "| forwarded, protection off ($RATE req/s, 2 workers) | $OFF | $(lowest "$OUT/off.txt") | $(cut -d' ' -f1 "$OUT/off.txt" | paste -sd' ') |"
echo "| forwarded, protection on (example's [protect], limit not reached) | $ONM | $(lowest "$OUT/on.txt") | $(cut -d' ' -f1 "$OUT/on.txt" | paste -sd' ') |"
echo "| dropped over the limit ($FLOOD_RATE/s from one source) | $(cat "$OUT/rate.txt") | | 1 |"
echo "| dropped while banned ($FLOOD_RATE/s from one source) | $(cat "$OUT/ban.txt") | | 1 |"
python3 -c 'import sys; print(f"\non/off: median {float(sys.argv[2])/float(sys.argv[1]):.3f}, lowest {float(sys.argv[4])/float(sys.argv[3]):.3f}")' \
    "$OFF" "$ONM" "$(lowest "$OUT/off.txt")" "$(lowest "$OUT/on.txt")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "raw: $OUT"
