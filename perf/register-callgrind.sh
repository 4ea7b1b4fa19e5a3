#!/usr/bin/env bash
# perf/register-callgrind.sh: user-space instructions per registration — REGISTER, 401,
# REGISTER with MD5 Authorization, 200 (the workload of perf/register.sh) — deterministic
# figures that a busy machine does not move.
#
#   cargo build --release -p ferrovia && perf/register-callgrind.sh
#   SERVER=kamailio perf/register-callgrind.sh    # Kamailio's UDP child (udp_rcv_loop)
#   SERVER=floor perf/register-callgrind.sh       # ferrovia-loadgen register-floor (serve)
#
# The server runs under callgrind (ferrovia: the worked example, examples/registrar/
# registrar.toml, --workers 1, one output file per thread; Kamailio: perf/kamailio/
# kamailio-registrar.cfg with one UDP child, one file per process); sipp registers alice COUNT
# times at 100/s (a new Call-ID each time, so every registration is a full challenge and a
# table write). Printed: the instructions of the thread or loop that serves the datagrams —
# ferrovia's worker thread (the file with the most), Kamailio's udp_rcv_loop (inclusive, so
# the start-up its child inherited is left out), the floor's serve — divided by the
# successful registrations, and that thread's top functions (inclusive). Loopback only, bounded.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SERVER=${SERVER:-ferrovia}
BIN=${PERF_FERROVIA:-$ROOT/target/release/ferrovia}
LOADGEN=${PERF_LOADGEN:-$ROOT/target/release/ferrovia-loadgen}
COUNT=${COUNT:-1000}
OUT=${PERF_OUT:-$(mktemp -d /tmp/ferrovia-register-cg.XXXXXX)}
mkdir -p "$OUT"
PROXY=
cleanup() { if [ -n "$PROXY" ]; then kill -TERM "$PROXY" 2>/dev/null || true; wait "$PROXY" 2>/dev/null || true; fi; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
case $SERVER in
ferrovia)
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/cg.out" \
        "$BIN" --config "$ROOT/examples/registrar/registrar.toml" --listen "udp:127.0.0.1:$port" \
        --workers 1 --metrics off --log-level warn 2>"$OUT/server.log" &
    loop= ;;
kamailio)
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$OUT/cg.out.%p" \
        kamailio -f "$ROOT/perf/kamailio/kamailio-registrar.cfg" -l "udp:127.0.0.1:$port" -n 1 \
        -x fm -A "DBURL=\"text://$ROOT/perf/kamailio/registrar-db\"" -DD -E -w "$OUT" \
        2>"$OUT/server.log" &
    loop=udp_rcv_loop ;;
floor)
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" \
        "$LOADGEN" register-floor --listen "127.0.0.1:$port" --duration 300 \
        >"$OUT/floor.json" 2>"$OUT/server.log" &
    loop=ferrovia_loadgen::register_floor::serve ;;
*) echo "SERVER: ferrovia, kamailio or floor" >&2; exit 2 ;;
esac
PROXY=$!
sleep 8 # valgrind starts slowly
(cd "$OUT" && timeout 120 sipp "127.0.0.1:$port" -sf "$ROOT/tests/sipp/register_auth.xml" \
    -s alice -au alice -ap alice-secret -key domain edge.example -i 127.0.0.1 \
    -p "$(free_port)" -r 100 -m "$COUNT" ${SIPP_EXTRA:-} -nostdin -timeout 100s -trace_stat -stf sipp.csv \
    -fd 1 >sipp.txt 2>&1) || true
kill -TERM "$PROXY"; wait "$PROXY" 2>/dev/null || true
PROXY=
sleep 2 # Kamailio's children write their files after the parent's signal
ok=$(awk -F';' 'NR==1 {for (i=1;i<=NF;i++) if ($i=="SuccessfulCall(C)") c=i} END {print $c+0}' "$OUT/sipp.csv")
worker=$(for f in "$OUT"/cg.out*; do echo "$(awk '/^(summary|totals):/ {print $2; exit}' "$f") $f"; done | sort -n | tail -1)
read -r ir file <<<"$worker"
callgrind_annotate --inclusive=yes "$file" 2>/dev/null | head -60 >"$OUT/top.txt" || true
if [ -n "$loop" ]; then
    ir=$(callgrind_annotate --inclusive=yes "$file" 2>/dev/null | grep -F ":$loop " | head -1 | awk '{gsub(",", "", $1); print $1}')
fi
python3 -c 'import sys; ok=int(sys.argv[2]); print(f"{sys.argv[3]}: registrations ok: {ok}; instructions per registration: {int(sys.argv[1])/max(ok,1):,.0f}")' "${ir:-0}" "$ok" "$SERVER"
echo "raw: $OUT (top functions: $OUT/top.txt)"
