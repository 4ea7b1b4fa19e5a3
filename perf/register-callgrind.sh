#!/usr/bin/env bash
# perf/register-callgrind.sh: user-space instructions per registration in a running ferrovia
# worker — REGISTER, 401, REGISTER with MD5 Authorization, 200 (the workload of
# perf/register.sh) — deterministic figures that a busy machine does not move.
#
#   cargo build --release -p ferrovia && perf/register-callgrind.sh
#
# ferrovia runs the worked example (examples/registrar/registrar.toml) with --workers 1 under
# callgrind, one output file per thread; sipp registers alice COUNT times at 100/s (a new
# Call-ID each time, so every registration is a full challenge and a table write). The worker
# thread's total instructions (the file with the most) divided by the successful registrations
# is printed, with the top functions (inclusive) of that thread. Loopback only, bounded.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN=${PERF_FERROVIA:-$ROOT/target/release/ferrovia}
COUNT=${COUNT:-1000}
OUT=${PERF_OUT:-$(mktemp -d /tmp/ferrovia-register-cg.XXXXXX)}
mkdir -p "$OUT"
PROXY=
cleanup() { if [ -n "$PROXY" ]; then kill -TERM "$PROXY" 2>/dev/null || true; wait "$PROXY" 2>/dev/null || true; fi; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/cg.out" \
    "$BIN" --config "$ROOT/examples/registrar/registrar.toml" --listen "udp:127.0.0.1:$port" \
    --workers 1 --metrics off --log-level warn 2>"$OUT/ferrovia.log" &
PROXY=$!
sleep 6 # valgrind starts slowly
(cd "$OUT" && timeout 120 sipp "127.0.0.1:$port" -sf "$ROOT/tests/sipp/register_auth.xml" \
    -s alice -au alice -ap alice-secret -key domain edge.example -i 127.0.0.1 \
    -p "$(free_port)" -r 100 -m "$COUNT" ${SIPP_EXTRA:-} -nostdin -timeout 100s -trace_stat -stf sipp.csv \
    -fd 1 >sipp.txt 2>&1) || true
kill -TERM "$PROXY"; wait "$PROXY" 2>/dev/null || true
PROXY=
ok=$(awk -F';' 'NR==1 {for (i=1;i<=NF;i++) if ($i=="SuccessfulCall(C)") c=i} END {print $c+0}' "$OUT/sipp.csv")
worker=$(for f in "$OUT"/cg.out*; do echo "$(awk '/^(summary|totals):/ {print $2; exit}' "$f") $f"; done | sort -n | tail -1)
read -r ir file <<<"$worker"
python3 -c 'import sys; ok=int(sys.argv[2]); print(f"registrations ok: {ok}; worker instructions per registration: {int(sys.argv[1])/max(ok,1):,.0f}")' "$ir" "$ok"
callgrind_annotate --inclusive=yes "$file" 2>/dev/null | head -60 >"$OUT/top.txt" || true
echo "raw: $OUT (top functions: $OUT/top.txt)"
