#!/usr/bin/env bash
# perf/tls.sh: ferrovia's CPU per forwarded message over TCP, TLS, WS and WSS in one run, and
# its TLS handshakes (full and resumed), with ferrovia-loadgen's stream mode. Loopback only.
#
#     perf/tls.sh
#
# Builds in release mode (unless PERF_SKIP_BUILD=1), makes a CA and one ECDSA P-256
# certificate (localhost, IP 127.0.0.1) with openssl, starts one ferrovia with tcp:, tls:, ws:
# and wss: listeners, then, PERF_ROUNDS times in turn, drives each transport with
# PERF_CONNECTIONS client connections of PERF_WINDOW requests in flight (INVITE with SDP,
# 900 B, and its 200 OK) for PERF_COUNT requests (at most PERF_SECS seconds):
#
#   TCP -> TCP,  TLS -> TLS,  WS -> TCP,  WSS -> TCP      (client -> ferrovia -> next hop)
#
# The figure is ferrovia's CPU time (utime + stime of the whole process, /proc/PID/stat) over
# each run divided by the messages it forwarded; CPU time, not wall clock, so the other load on
# a shared machine matters less, and the transports are compared within one run of one process.
# Then PERF_HANDSHAKES TLS connections, full and then resumed (TLS 1.3 tickets), on
# PERF_CONNECTIONS threads, each with one OPTIONS round trip; the proxy CPU per handshake.
#
# Knobs: PERF_WORKERS=1 PERF_ROUNDS=2 PERF_CONNECTIONS=8 PERF_WINDOW=4 PERF_COUNT=40000
#        PERF_SECS=20 PERF_HANDSHAKES=2000 PERF_PORT=15060 (uses PORT..PORT+3) PERF_SKIP_BUILD=1
# Writes raw JSON lines and the ferrovia log to perf/out/tls-<timestamp>/ and prints a table.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
WORKERS=${PERF_WORKERS:-1}
ROUNDS=${PERF_ROUNDS:-2}
CONNS=${PERF_CONNECTIONS:-8}
WINDOW=${PERF_WINDOW:-4}
COUNT=${PERF_COUNT:-40000}
SECS=${PERF_SECS:-20}
HANDSHAKES=${PERF_HANDSHAKES:-2000}
PORT=${PERF_PORT:-15060}
OUT="$ROOT/perf/out/tls-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"

if [ "${PERF_SKIP_BUILD:-}" != 1 ]; then
    (cd "$ROOT" && cargo build --release -q -p ferrovia -p ferrovia-loadgen)
fi
FERROVIA="$ROOT/target/release/ferrovia"
LOADGEN="$ROOT/target/release/ferrovia-loadgen"

# A CA and one leaf for ferrovia's listeners and the next hop (verified by IP, RFC 5922).
openssl ecparam -name prime256v1 -genkey -noout -out "$OUT/ca.key"
openssl req -x509 -new -key "$OUT/ca.key" -subj "/CN=perf CA" -days 2 -out "$OUT/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
openssl ecparam -name prime256v1 -genkey -noout -out "$OUT/leaf.ec"
openssl pkcs8 -topk8 -nocrypt -in "$OUT/leaf.ec" -out "$OUT/leaf.key"
openssl req -new -key "$OUT/leaf.key" -subj "/CN=localhost" -out "$OUT/leaf.csr"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' \
    > "$OUT/leaf.ext"
openssl x509 -req -in "$OUT/leaf.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" \
    -CAcreateserial -days 2 -extfile "$OUT/leaf.ext" -out "$OUT/leaf.pem" 2>/dev/null

cat > "$OUT/ferrovia.toml" <<EOF
listen = ["tcp:127.0.0.1:$PORT", "tls:127.0.0.1:$((PORT + 1))", "ws:127.0.0.1:$((PORT + 2))",
          "wss:127.0.0.1:$((PORT + 3))"]
workers = $WORKERS
metrics = "off"
log-level = "warn"
[tls]
certificate = "$OUT/leaf.pem"
key = "$OUT/leaf.key"
ca = "$OUT/ca.pem"
system-roots = false
EOF

"$FERROVIA" --config "$OUT/ferrovia.toml" 2> "$OUT/ferrovia.log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    if (exec 3<>/dev/tcp/127.0.0.1/$((PORT + 3))) 2>/dev/null; then break; fi
    sleep 0.1
done

uname -r > "$OUT/machine.txt"; nproc >> "$OUT/machine.txt"; cat /proc/loadavg >> "$OUT/machine.txt"
(cd "$ROOT" && git rev-parse HEAD) >> "$OUT/machine.txt"

common=(--connections "$CONNS" --window "$WINDOW" --count "$COUNT" --duration "$SECS"
        --pid "$PID" --ca "$OUT/ca.pem" --next-cert "$OUT/leaf.pem" --next-key "$OUT/leaf.key")
for round in $(seq "$ROUNDS"); do
    "$LOADGEN" stream --target "127.0.0.1:$PORT" --transport tcp "${common[@]}" >> "$OUT/messages.jsonl"
    "$LOADGEN" stream --target "127.0.0.1:$((PORT + 1))" --transport tls --next-tls "${common[@]}" \
        >> "$OUT/messages.jsonl"
    "$LOADGEN" stream --target "127.0.0.1:$((PORT + 2))" --transport ws "${common[@]}" >> "$OUT/messages.jsonl"
    "$LOADGEN" stream --target "127.0.0.1:$((PORT + 3))" --transport wss "${common[@]}" >> "$OUT/messages.jsonl"
done
for mode in full resumed; do
    "$LOADGEN" stream --target "127.0.0.1:$((PORT + 1))" --transport tls --handshakes "$mode" \
        --connections "$CONNS" --count "$HANDSHAKES" --duration "$SECS" --pid "$PID" \
        --ca "$OUT/ca.pem" >> "$OUT/handshakes.jsonl"
done
cat /proc/loadavg >> "$OUT/machine.txt"

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/messages.jsonl")]
print(f"| transport | round | messages | msgs/s (wall) | ferrovia CPU per message | x TCP (same round) |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
names = {"tcp": "TCP -> TCP", "tls": "TLS -> TLS", "ws": "WS -> TCP", "wss": "WSS -> TCP"}
for i in range(0, len(rows), 4):
    tcp = rows[i]["cpu_per_message_ns"]
    for r in rows[i:i + 4]:
        ns = r["cpu_per_message_ns"]
        print(f"| {names[r['transport']]} | {i // 4 + 1} | {2 * r['answered']} | "
              f"{r['messages_per_sec']:.0f} | {ns / 1000:.2f} µs | {ns / tcp:.2f} |")
print()
print("| TLS handshakes | count | resumed | per second (wall) | ferrovia CPU each | per ferrovia core |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for l in open(f"{out}/handshakes.jsonl"):
    h = json.loads(l)
    print(f"| {h['mode']} | {h['handshakes']} | {h['resumed_count']} | {h['per_sec']:.0f} | "
          f"{h['proxy_cpu_ns_each'] / 1000:.0f} µs | {h['per_proxy_core_sec']:.0f}/s |")
PY
echo "raw: $OUT"
