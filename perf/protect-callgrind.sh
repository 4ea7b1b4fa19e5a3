#!/usr/bin/env bash
# perf/protect-callgrind.sh: user-space instructions per message in a running worker, with
# edge protection off and on, and for a banned flood: deterministic figures that a busy
# machine does not move (perf/protect.sh measures CPU time, which it does).
#
#   cargo build --release -p ferrovia -p ferrovia-loadgen && perf/protect-callgrind.sh
#
# Each run: ferrovia --workers 1 under callgrind (one file per thread), the load generator
# sends COUNT requests (8 flows, one per sendmmsg) at 500/s; the worker thread's total
# instructions are divided by the messages it handled. "on" is the worked example's [protect]
# with a limit no source reaches; "banned" is the example as is, flooded from 127.0.0.2 until
# banned, then COUNT more requests.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN="$ROOT/target/release"
COUNT=${COUNT:-2500}
OUT=$(mktemp -d /tmp/ferrovia-callgrind.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

grep -v '^route-all-to' "$ROOT/examples/protection/edge.toml" >"$OUT/banned.toml"
sed 's/^requests-per-second = 1000$/requests-per-second = 1000000/; s/^burst = 2000$/burst = 1000000/' \
    "$OUT/banned.toml" >"$OUT/on.toml"

REFLECT=$(free_port)
"$BIN/ferrovia-loadgen" reflect --listen "127.0.0.1:$REFLECT" --duration 600 >/dev/null 2>&1 &
PIDS+=("$!")

# run LABEL MESSAGES_PER_REQUEST SOURCE [ferrovia args...]
run() {
    local label=$1 per=$2 source=$3; shift 3
    local port; port=$(free_port)
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/$label.out" \
        "$BIN/ferrovia" --listen "udp:127.0.0.1:$port" --workers 1 --metrics off --log-level warn \
        "$@" 2>"$OUT/$label.log" &
    local proxy=$!
    PIDS+=("$proxy")
    sleep 5 # valgrind starts slowly
    if [ "$label" = banned ]; then # get banned first: over the limit for a second and more
        "$BIN/ferrovia-loadgen" send --target "127.0.0.1:$port" --reflector "127.0.0.1:$REFLECT" \
            --source "$source" --rate 5000 --duration 2.5 --flows 8 --batch 1 --grace-ms 100 \
            >/dev/null 2>&1 || true
        callgrind_control -z "$proxy" >/dev/null 2>&1 || true # count from here
    fi
    "$BIN/ferrovia-loadgen" send --target "127.0.0.1:$port" --reflector "127.0.0.1:$REFLECT" \
        --source "$source" --rate 500 --count "$COUNT" --flows 8 --batch 1 --grace-ms 500 \
        >"$OUT/$label.json" 2>/dev/null || true
    kill -TERM "$proxy"; wait "$proxy" 2>/dev/null || true
    # The worker is the thread with the most instructions (its file's summary line).
    local ir; ir=$(for f in "$OUT/$label".out*; do awk '/^(summary|totals):/ {print $2; exit}' "$f"; done | sort -n | tail -1)
    python3 -c 'import sys; print(f"| {sys.argv[1]} | {int(sys.argv[2])/(int(sys.argv[3])*int(sys.argv[4])):,.0f} |")' \
        "$label" "$ir" "$COUNT" "$per"
}

echo "| run | worker instructions per message |"
echo "|---|---|"
run off 2 127.0.0.1
run on 2 127.0.0.1 --config "$OUT/on.toml"
run banned 1 127.0.0.2 --config "$OUT/banned.toml"
echo "raw: $OUT"
