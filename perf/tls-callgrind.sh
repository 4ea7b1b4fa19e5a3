#!/usr/bin/env bash
# perf/tls-callgrind.sh: user-space instructions per forwarded message in ferrovia's worker over
# TCP, TLS, WS and WSS, in one ferrovia process under callgrind: deterministic figures that the
# other load on a shared machine does not move (perf/tls.sh measures CPU time, which it does).
#
#   cargo build --release -p ferrovia -p ferrovia-loadgen && perf/tls-callgrind.sh
#
# ferrovia --workers 1 runs under callgrind (one file per thread) with tcp:, tls:, ws: and wss:
# listeners. For each transport, ferrovia-loadgen stream (one connection, one request in flight:
# one message per read, the least favourable case for TLS) runs twice, COUNT1 and then COUNT2
# requests, each between a zeroing and a dump of the counters (callgrind_control -z / -d). Each
# run opens its own connections (handshakes included), so the figure is the difference:
# (worker instructions of the COUNT2 run - of the COUNT1 run) / (2 x (COUNT2 - COUNT1)):
# instructions per message once the connections are established. Kernel time is not counted.
# PERF_FERROVIA=PATH runs another ferrovia binary (e.g. an older build, to compare).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN="$ROOT/target/release"
COUNT1=${COUNT1:-200}
COUNT2=${COUNT2:-1200}
PORT=${PERF_PORT:-15160}
OUT=$(mktemp -d /tmp/ferrovia-tls-callgrind.XXXXXX)

openssl ecparam -name prime256v1 -genkey -noout -out "$OUT/ca.key"
openssl req -x509 -new -key "$OUT/ca.key" -subj "/CN=perf CA" -days 2 -out "$OUT/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
openssl ecparam -name prime256v1 -genkey -noout -out "$OUT/leaf.ec"
openssl pkcs8 -topk8 -nocrypt -in "$OUT/leaf.ec" -out "$OUT/leaf.key"
openssl req -new -key "$OUT/leaf.key" -subj "/CN=localhost" -out "$OUT/leaf.csr"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$OUT/leaf.ext"
openssl x509 -req -in "$OUT/leaf.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" \
    -CAcreateserial -days 2 -extfile "$OUT/leaf.ext" -out "$OUT/leaf.pem" 2>/dev/null
cat > "$OUT/ferrovia.toml" <<EOF
listen = ["tcp:127.0.0.1:$PORT", "tls:127.0.0.1:$((PORT + 1))", "ws:127.0.0.1:$((PORT + 2))",
          "wss:127.0.0.1:$((PORT + 3))"]
workers = 1
metrics = "off"
log-level = "warn"
[tls]
certificate = "$OUT/leaf.pem"
key = "$OUT/leaf.key"
ca = "$OUT/ca.pem"
system-roots = false
EOF

valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/cg.out" \
    "${PERF_FERROVIA:-$BIN/ferrovia}" --config "$OUT/ferrovia.toml" 2>"$OUT/ferrovia.log" &
PROXY=$!
trap 'kill -TERM $PROXY 2>/dev/null || true; wait $PROXY 2>/dev/null || true' EXIT
for _ in $(seq 300); do
    if (exec 3<>/dev/tcp/127.0.0.1/$((PORT + 3))) 2>/dev/null; then break; fi
    sleep 0.1
done

dumps=0
declare -A first second
for t in tcp tls ws wss; do
    case $t in tcp) p=$PORT; next=();; tls) p=$((PORT + 1)); next=(--next-tls);;
               ws) p=$((PORT + 2)); next=();; wss) p=$((PORT + 3)); next=();; esac
    for n in "$COUNT1" "$COUNT2"; do
        callgrind_control -z "$PROXY" >/dev/null 2>&1
        "$BIN/ferrovia-loadgen" stream --target "127.0.0.1:$p" --transport "$t" "${next[@]}" \
            --connections 1 --window 1 --count "$n" --duration 300 --ca "$OUT/ca.pem" \
            --next-cert "$OUT/leaf.pem" --next-key "$OUT/leaf.key" >>"$OUT/runs.jsonl" 2>/dev/null
        callgrind_control -d "$PROXY" >/dev/null 2>&1
        dumps=$((dumps + 1))
        if [ "$n" = "$COUNT1" ]; then first[$t]=$dumps; else second[$t]=$dumps; fi
    done
done

# The worker is the thread with the most instructions in a dump.
worker_ir() { for f in "$OUT"/cg.out."$1"-*; do awk '/^(summary|totals):/ {print $2; exit}' "$f"; done | sort -n | tail -1; }
echo "| path | worker instructions per message | x TCP |"
echo "|---|---:|---:|"
tcp=""
for t in tcp tls ws wss; do
    a=$(worker_ir "${first[$t]}"); b=$(worker_ir "${second[$t]}")
    per=$(python3 -c "print(($b - $a) / (2 * ($COUNT2 - $COUNT1)))")
    [ -z "$tcp" ] && tcp=$per
    case $t in tcp) name="TCP -> TCP";; tls) name="TLS -> TLS";; ws) name="WS -> TCP";; wss) name="WSS -> TCP";; esac
    python3 -c "print(f'| $name | {$per:,.0f} | {$per / $tcp:.2f} |')"
done
echo "raw: $OUT"
