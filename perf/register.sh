#!/usr/bin/env bash
# REGISTER with MD5 digest authentication at a fixed rate, through ferrovia (the worked
# example, examples/registrar/registrar.toml) and through Kamailio (registrar + auth_db on
# db_text holding the same users, perf/kamailio/kamailio-registrar.cfg), one after the other,
# on loopback. Each registration is REGISTER, 401, REGISTER with Authorization, 200 (sipp's
# tests/sipp/register_auth.xml as alice, a new Call-ID per registration). Prints the CPU
# time each server used per successful registration (utime + stime from /proc).
#
#   perf/register.sh                      # 500 registrations/s for 10 s, one worker / child
#   PERF_REG_RATE=1000 PERF_REG_SECS=20 PERF_FERROVIA=target/release/ferrovia perf/register.sh
#
# Needs sipp and kamailio (apt-get install sip-tester kamailio) and a release build
# (cargo build --release -p ferrovia). Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
rate=${PERF_REG_RATE:-500}
secs=${PERF_REG_SECS:-10}
ferrovia=${PERF_FERROVIA:-target/release/ferrovia}
calls=$((rate * secs))
out=${PERF_OUT:-perf/out/register-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
hz=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# CPU ticks (user + system) of a process and its children.
ticks() {
    local total=0 pid
    for pid in "$1" $(pgrep -P "$1" || true); do
        if [[ -r /proc/$pid/stat ]]; then
            total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
        fi
    done
    echo "$total"
}

# run NAME PORT PID: the sipp load against 127.0.0.1:PORT; prints "NAME ok µs/registration".
run() {
    local name=$1 port=$2 pid=$3 before after ok
    sleep 1
    before=$(ticks "$pid")
    (cd "$out" && timeout $((secs * 3 + 30)) sipp "127.0.0.1:$port" \
        -sf "$root/tests/sipp/register_auth.xml" -s alice -au alice -ap alice-secret \
        -key domain edge.example -i 127.0.0.1 -p "$(free_port)" -r "$rate" -m "$calls" \
        -nostdin -timeout $((secs * 3 + 20))s -trace_stat -stf "$name.csv" -fd 1 \
        > "$name-sipp.txt" 2>&1) || true
    after=$(ticks "$pid")
    ok=$(awk -F';' 'NR==1 {for (i=1;i<=NF;i++) if ($i=="SuccessfulCall(C)") c=i} END {print $c+0}' "$out/$name.csv")
    local us=0
    if ((ok > 0)); then us=$(( (after - before) * 1000000 / hz / ok )); fi
    echo "$name $ok $us"
}

results=()
port=$(free_port)
"$ferrovia" --config examples/registrar/registrar.toml --listen "udp:127.0.0.1:$port" \
    --workers 1 --metrics off --log-level warn 2> "$out/ferrovia.log" &
fpid=$!
results+=("$(run ferrovia-w1 "$port" "$fpid")")
kill "$fpid"; wait "$fpid" 2>/dev/null || true

port=$(free_port)
kamailio -f perf/kamailio/kamailio-registrar.cfg -l "udp:127.0.0.1:$port" -n 1 -x fm \
    -A "DBURL=\"text://$root/perf/kamailio/registrar-db\"" -DD -E -w "$out" 2> "$out/kamailio.log" &
kpid=$!
results+=("$(run kamailio-c1 "$port" "$kpid")")
kill "$kpid"; wait "$kpid" 2>/dev/null || true

{
    echo "REGISTER with MD5 digest, $rate/s for $secs s ($calls registrations asked), one worker / child"
    echo
    echo "| server | registrations ok | CPU µs per registration |"
    echo "| --- | --- | --- |"
    for r in "${results[@]}"; do
        read -r name ok us <<< "$r"
        echo "| $name | $ok | $us |"
    done
} | tee "$out/report.md"
