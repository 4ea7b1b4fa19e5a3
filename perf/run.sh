#!/usr/bin/env bash
# perf/run.sh: ferrovia side by side with Kamailio and a bare UDP relay, on loopback.
#
# One command on a fresh Debian 12 machine (Rust, python3, gcc; root):
#
#     perf/run.sh
#
# It installs sipp (sip-tester) and kamailio when missing, builds in release mode, then runs the
# same workloads through each forwarder, one after the other:
#
#   A  sipp built-in uac -> forwarder -> sipp built-in uas, at fixed call rates: calls ok /
#      failed / unexpected, retransmissions, and the forwarder's CPU time per forwarded message.
#   B  ferrovia-loadgen send -> forwarder -> ferrovia-loadgen reflect: the highest zero-loss
#      rate (bounded search), then round-trip percentiles and CPU per message at a common rate.
#
# Forwarders: ferrovia --workers 1 and 2 (skipped, with a message, while its binary is missing or
# does not start), Kamailio children=1 and 2 with the fast allocator (-x fm) and, in A, with
# Debian's default allocator, and the bare relay (the I/O floor). In B only, ferrovia-w1-group3
# and ferrovia-w2-group3: ferrovia with every request sent to a destination group of three
# reflector addresses (hash over Call-ID, probed every second; issue 15's CPU comparison),
# served by one reflector process as the other forwarders' one destination is (see
# PERF_GROUP_PROCESSES).
#
# Prints Markdown tables; raw results, logs and the latency plot go to perf/out/<timestamp>/.
# Every process it starts is bounded (counts, seconds) and killed on exit.
#
# Knobs (environment):
#   PERF_RATES="1000 3000"    workload A call rates (calls/s)
#   PERF_CALL_SECS=4          seconds of calls per A run (calls = rate x seconds)
#   PERF_B_RATE=10000         workload B common rate for RTT and CPU (requests/s)
#   PERF_B_SECS=3             seconds of that run
#   PERF_SEARCH_STEPS=9       most steps of each zero-loss search (each PERF_STEP_SECS long)
#   PERF_STEP_SECS=1.5
#   PERF_DEFAULT_ALLOC=A      run Kamailio with Debian's default allocator in: A, AB or none
#   PERF_ONLY="relay kamailio-c1-fm ..."  run only these forwarders (names as in the tables)
#   PERF_WORKLOADS="A B"      which workloads to run
#   PERF_SKIP_BUILD=1         use the binaries already in target/release
#   PERF_FERROVIA=PATH        the ferrovia binary to run (default target/release/ferrovia)
#   PERF_FERROVIA_ARGS="..."  extra ferrovia flags, e.g. "--config examples/policy/twenty-rules.toml"
#   PERF_GROUP_PROCESSES=1    the group's three destinations in 1 reflector process (three
#                             addresses, one thread) or 3 (one process each). On loopback the
#                             forwarder pays, in its own system time, for waking the process a
#                             datagram is for; three processes each idle more often and are
#                             woken more per message than the one the relay and plain ferrovia
#                             feed (PERFORMANCE.md §9), a cost real destinations pay on their
#                             own machines. 1 compares like with like.
#   PERF_OUT=DIR              where to write (default perf/out)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN="$ROOT/target/release"
FERROVIA=${PERF_FERROVIA:-$BIN/ferrovia}
read -r -a FERROVIA_ARGS <<<"${PERF_FERROVIA_ARGS:-}"
KAM_CFG="$HERE/kamailio/kamailio-stateless.cfg"
MEASURE=(python3 "$HERE/measure.py")

RATES=${PERF_RATES:-"1000 3000"}
CALL_SECS=${PERF_CALL_SECS:-4}
B_RATE=${PERF_B_RATE:-10000}
B_SECS=${PERF_B_SECS:-3}
SEARCH_STEPS=${PERF_SEARCH_STEPS:-9}
STEP_SECS=${PERF_STEP_SECS:-1.5}
DEFAULT_ALLOC=${PERF_DEFAULT_ALLOC:-A}
ONLY=${PERF_ONLY:-}
WORKLOADS=${PERF_WORKLOADS:-"A B"}

STAMP=$(date +%Y%m%d-%H%M%S)
OUT="${PERF_OUT:-$HERE/out}/$STAMP"
RESULTS="$OUT/results.jsonl"
mkdir -p "$OUT"
: >"$RESULTS"

log() { printf '[perf %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- processes: every one started is remembered and ended on exit -------------------------

STARTED=()

stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do
        stop_pid "$pid"
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts "$@" in the background with its output in $LOG_TO; sets STARTED_PID.
start() {
    "$@" >"$LOG_TO" 2>&1 &
    STARTED_PID=$!
    STARTED+=("$STARTED_PID")
}

# --- ports: distinct for every process of every run, all on 127.0.0.1 --------------------
# Below the kernel's ephemeral range (32768+), so no socket bound to port 0 can take one; a
# window per invocation so that two runs side by side do not collide either.

NEXT_PORT=$((10000 + ($$ % 80) * 250))
# port [N]: reserves N consecutive ports (default 1) and sets PORT to the first.
port() {
    PORT=$((NEXT_PORT + 1))
    NEXT_PORT=$((NEXT_PORT + ${1:-1}))
}

# --- setup ----------------------------------------------------------------------------------

install_missing() {
    local missing=()
    command -v sipp >/dev/null || missing+=(sip-tester)
    command -v kamailio >/dev/null || missing+=(kamailio)
    command -v python3 >/dev/null || missing+=(python3)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

build() {
    if [[ ${PERF_SKIP_BUILD:-} == 1 ]]; then
        return
    fi
    log "building release binaries"
    (cd "$ROOT" && cargo build --release -p ferrovia-loadgen)
    if ! (cd "$ROOT" && cargo build --release -p ferrovia); then
        log "ferrovia did not build: its runs are skipped"
    fi
}

machine() {
    {
        echo "date: $(date -Is)"
        echo "kernel: $(uname -sr)"
        echo "cpus: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
        echo "memory: $(free -h | awk '/Mem:/ {print $2}')"
        echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "kamailio: $(kamailio -v 2>/dev/null | head -1 | sed 's/^version: //')"
        echo "sipp: $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1)"
        echo "rustc: $(rustc --version 2>/dev/null || echo '?')"
        echo "ferrovia commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    } >"$OUT/machine.txt"
}

# --- forwarders -----------------------------------------------------------------------------

FORWARDERS=(ferrovia-w1 ferrovia-w2 ferrovia-w1-group3 ferrovia-w2-group3 kamailio-c1-fm
    kamailio-c2-fm kamailio-c1-qm kamailio-c2-qm relay)

wanted() {
    local name=$1 workload=$2
    if [[ -n $ONLY && " $ONLY " != *" $name "* ]]; then
        return 1
    fi
    if [[ $name == kamailio-*-qm && $DEFAULT_ALLOC != *"$workload"* ]]; then
        return 1
    fi
    # A group needs three UAS; workload A has one sipp UAS.
    if [[ $name == *-group3 && $workload != B ]]; then
        return 1
    fi
    return 0
}

# start_forwarder NAME LISTEN_PORT UPSTREAM_PORT RUN_DIR: sets FWD_PID, or returns 1 (skipped).
start_forwarder() {
    local name=$1 listen=$2 upstream=$3 dir=$4
    LOG_TO="$dir/forwarder.log"
    case $name in
        ferrovia-w*)
            if [[ ! -x $FERROVIA ]]; then
                log "$name: skipped: $FERROVIA does not exist (ferrovia's runtime has not landed?)"
                return 1
            fi
            port
            local workers=${name#ferrovia-w} group=()
            workers=${workers%%-*}
            [[ $name == *-group3 ]] && group=(--config "$dir/group3.toml")
            start "$FERROVIA" --listen "udp:127.0.0.1:$listen" --workers "$workers" \
                --metrics "127.0.0.1:$PORT" --log-level warn "${group[@]}" "${FERROVIA_ARGS[@]}"
            METRICS_PORT=$PORT
            ;;
        kamailio-c*)
            local children=${name#kamailio-c}
            children=${children%%-*}
            local alloc=()
            [[ $name == *-fm ]] && alloc=(-x fm)
            # -b: let its receive-buffer probing reach 4 MiB (default cap 256 KiB), the size the
            # relay and ferrovia ask for, so a scheduling hiccup costs each of them the same.
            start kamailio -f "$KAM_CFG" -l "udp:127.0.0.1:$listen" -n "$children" "${alloc[@]}" \
                -b 4194304 -m 128 -M 16 -DD -E -w "$dir"
            ;;
        relay)
            start "$BIN/ferrovia-relay" --listen "127.0.0.1:$listen" \
                --upstream "127.0.0.1:$upstream" --duration 300
            ;;
    esac
    FWD_PID=$STARTED_PID
    if ! "${MEASURE[@]}" wait-udp "$listen" 5 || ! kill -0 "$FWD_PID" 2>/dev/null; then
        log "$name: skipped: it did not start listening on 127.0.0.1:$listen (see $dir/forwarder.log)"
        stop_pid "$FWD_PID"
        return 1
    fi
    sleep 0.3 # Kamailio forks its children after binding
    return 0
}

stop_forwarder() {
    local name=$1 dir=$2
    if [[ $name == ferrovia-w* && -n ${METRICS_PORT:-} ]]; then
        python3 - "$METRICS_PORT" >"$dir/ferrovia-stats.json" 2>/dev/null <<'PY' || true
import sys, urllib.request
print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/stats", timeout=2).read().decode())
PY
    fi
    stop_pid "$FWD_PID"
    METRICS_PORT=
}

cpu_ns() { "${MEASURE[@]}" cpu "$1"; }

# --- workload A: sipp calls -----------------------------------------------------------------

run_calls() {
    local name=$1 rate=$2
    local dir="$OUT/A/$name-$rate"
    local calls=$((rate * CALL_SECS))
    mkdir -p "$dir"
    # sipp's media sockets take -mp and the next three ports.
    port; local fwd=$PORT; port; local uas=$PORT; port; local uas_cp=$PORT; port 4; local uas_mp=$PORT
    port; local uac=$PORT; port; local uac_cp=$PORT; port 4; local uac_mp=$PORT

    # sipp names its -trace_counts file after its pid in its working directory: env -C.
    LOG_TO="$dir/uas.log"
    start env -C "$dir" sipp -sn uas -i 127.0.0.1 -p "$uas" -cp "$uas_cp" -mp "$uas_mp" \
        -nostdin -trace_counts -trace_stat -stf uas_stat.csv -trace_err -timeout 120s \
        -max_invite_retrans 3 -max_non_invite_retrans 3 -buff_size 4194304
    local uas_pid=$STARTED_PID
    "${MEASURE[@]}" wait-udp "$uas" 5 || { log "sipp uas did not start"; return 1; }

    if ! start_forwarder "$name" "$fwd" "$uas" "$dir"; then
        stop_pid "$uas_pid"
        return 0
    fi
    # A failed call (e.g. 180 after 200) ends in ~4 s instead of waiting out 64*T1 = 32 s of
    # retransmissions (-max_*_retrans 3): no effect on calls that succeed, and A stays short.
    # -buff_size: sipp's default 64 KiB socket buffers overflow whenever a busy machine leaves
    # it unscheduled for ~30 ms, which would blame the forwarder for sipp's own drops.
    log "A: $name at $rate calls/s, $calls calls"
    local before after
    before=$(cpu_ns "$FWD_PID")
    timeout $((CALL_SECS * 3 + 60)) env -C "$dir" sipp -sn uac -i 127.0.0.1 -p "$uac" \
        -cp "$uac_cp" -mp "$uac_mp" -rsa "127.0.0.1:$fwd" "127.0.0.1:$uas" -r "$rate" -m "$calls" \
        -l $((rate * 2)) -nostdin -trace_counts -trace_stat -stf uac_stat.csv -trace_err \
        -max_invite_retrans 3 -max_non_invite_retrans 3 -buff_size 4194304 \
        -timeout $((CALL_SECS * 3 + 30))s >"$dir/uac.log" 2>&1 || true
    after=$(cpu_ns "$FWD_PID")
    stop_forwarder "$name" "$dir"
    stop_pid "$uas_pid"
    local sipp_counts
    sipp_counts=$("${MEASURE[@]}" sipp "$dir")
    python3 - "$name" "$rate" "$calls" "$before" "$after" "$sipp_counts" >>"$RESULTS" <<'PY'
import json, sys
name, rate, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
before, after, s = (json.loads(a) for a in sys.argv[4:7])
cpu = {k: after[k] - before[k] for k in ("sched_ns", "stat_ns")}
msgs = s["msgs_forwarded"]
per = lambda ns: round(ns / msgs / 1000, 2) if msgs else None
print(json.dumps({"workload": "A", "forwarder": name, "rate": rate, "calls": calls, **s,
                  "cpu_sched_ns": cpu["sched_ns"], "cpu_stat_ns": cpu["stat_ns"],
                  "cpu_us_per_msg": per(cpu["sched_ns"] or cpu["stat_ns"]),
                  "cpu_stat_us_per_msg": per(cpu["stat_ns"]),
                  "processes": after["processes"]}))
PY
    tail -1 "$RESULTS" >&2
}

# --- workload B: loadgen --------------------------------------------------------------------

# start_group_reflectors DIR FIRST_PORT: the group's three reflector addresses, FIRST_PORT (the
# sender's --reflector) and two more, in one process (PERF_GROUP_PROCESSES=1, the default) or
# one process each (3), and DIR/group3.toml sending every request to a group of the three
# (hash over Call-ID, weights 1, probed every second: the probes' OPTIONS are answered by the
# reflectors and consumed). Sets GROUP_PIDS.
start_group_reflectors() {
    local dir=$1 first=$2 ports=("$2")
    GROUP_PIDS=()
    for _ in 1 2; do
        port
        ports+=("$PORT")
    done
    if [[ ${PERF_GROUP_PROCESSES:-1} == 3 ]]; then
        for p in "${ports[@]}"; do
            LOG_TO="$dir/reflector-$p.log"
            start "$BIN/ferrovia-loadgen" reflect --listen "127.0.0.1:$p" --duration 300
            GROUP_PIDS+=("$STARTED_PID")
        done
    else
        LOG_TO="$dir/reflector.log"
        start "$BIN/ferrovia-loadgen" reflect --listen "127.0.0.1:${ports[0]}" \
            --listen "127.0.0.1:${ports[1]}" --listen "127.0.0.1:${ports[2]}" --duration 300
        GROUP_PIDS+=("$STARTED_PID")
    fi
    for p in "${ports[@]}"; do
        "${MEASURE[@]}" wait-udp "$p" 5 || { log "reflector did not start"; return 1; }
    done
    {
        echo 'route-to-group = "core"'
        echo '[[group]]'
        echo 'name = "core"'
        echo 'algorithm = "hash"'
        echo 'key = "call-id"'
        echo 'destinations = ['
        for p in "${ports[@]}"; do echo "  { uri = \"sip:127.0.0.1:$p\", weight = 1 },"; done
        echo ']'
        echo '[group.probe]'
        echo 'interval = "1s"'
        echo 'timeout = "900ms"'
    } >"$dir/group3.toml"
    log "B: group of three reflector addresses ${ports[*]} in ${PERF_GROUP_PROCESSES:-1} process(es) ($first is the sender's --reflector)"
}

run_load() {
    local name=$1
    local dir="$OUT/B/$name"
    mkdir -p "$dir"
    port; local fwd=$PORT; port; local refl=$PORT
    local refl_pid= target=$fwd fwd_pid= extra=()
    if [[ $name == *-group3 ]]; then
        if ! start_group_reflectors "$dir" "$refl"; then
            for pid in "${GROUP_PIDS[@]}"; do stop_pid "$pid"; done
            return 0
        fi
        extra=("${GROUP_PIDS[@]}")
    else
        LOG_TO="$dir/reflector.log"
        start "$BIN/ferrovia-loadgen" reflect --listen "127.0.0.1:$refl" --duration 300
        refl_pid=$STARTED_PID
        "${MEASURE[@]}" wait-udp "$refl" 5 || { log "reflector did not start"; return 1; }
    fi
    if [[ $name == direct ]]; then
        target=$refl
    elif start_forwarder "$name" "$fwd" "$refl" "$dir"; then
        fwd_pid=$FWD_PID
    else
        stop_pid "$refl_pid"
        for pid in "${extra[@]}"; do stop_pid "$pid"; done
        return 0
    fi
    log "B: $name: zero-loss search"
    "$BIN/ferrovia-loadgen" search --target "127.0.0.1:$target" --reflector "127.0.0.1:$refl" \
        --start-rate 10000 --max-rate 400000 --step-secs "$STEP_SECS" --max-steps "$SEARCH_STEPS" \
        --precision 0.1 --grace-ms 500 --hgrm "$dir/search-best.hgrm" \
        >"$dir/search.json" 2>"$dir/search.log" || true
    sleep 0.5
    log "B: $name: $B_RATE requests/s for $B_SECS s"
    local before=null after=null
    if [[ -n $fwd_pid ]]; then before=$(cpu_ns "$fwd_pid"); fi
    "$BIN/ferrovia-loadgen" send --target "127.0.0.1:$target" --reflector "127.0.0.1:$refl" \
        --rate "$B_RATE" --duration "$B_SECS" --hgrm "$dir/rtt.hgrm" \
        >"$dir/send.json" 2>"$dir/send.log" || true
    if [[ -n $fwd_pid ]]; then
        after=$(cpu_ns "$fwd_pid")
        stop_forwarder "$name" "$dir"
    fi
    stop_pid "$refl_pid"
    for pid in "${extra[@]}"; do stop_pid "$pid"; done
    python3 - "$name" "$dir" "$before" "$after" >>"$RESULTS" <<'PY'
import json, sys
name, d = sys.argv[1], sys.argv[2]
before, after = json.loads(sys.argv[3]), json.loads(sys.argv[4])
def load(path):
    try:
        with open(path) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return {}
search, send = load(f"{d}/search.json"), load(f"{d}/send.json")
row = {"workload": "B", "forwarder": name, "zero_loss_rate": search.get("best_rate"),
       "limit": search.get("limit"), "steps": search.get("steps"), "send": send,
       "hgrm": f"{d}/rtt.hgrm"}
if before and after and send.get("answered"):
    ns = after["sched_ns"] - before["sched_ns"] or after["stat_ns"] - before["stat_ns"]
    # Each transaction crosses the forwarder twice: the request and its 200.
    msgs = send["sent"] + send["answered"]
    row["cpu_us_per_msg"] = round(ns / msgs / 1000, 2)
print(json.dumps(row))
PY
    log "B: $name: zero-loss $(python3 -c 'import json,sys; print(json.loads(sys.stdin.readlines()[-1]).get("zero_loss_rate"))' <"$RESULTS")/s"
}

# --- main -----------------------------------------------------------------------------------

main() {
    install_missing
    build
    machine
    log "results in $OUT"
    if [[ " $WORKLOADS " == *" A "* ]]; then
        local rate name
        for rate in $RATES; do
            for name in "${FORWARDERS[@]}"; do
                wanted "$name" A && run_calls "$name" "$rate"
            done
        done
    fi
    if [[ " $WORKLOADS " == *" B "* ]]; then
        local name
        for name in direct "${FORWARDERS[@]}"; do
            if [[ $name == direct ]] || wanted "$name" B; then
                run_load "$name"
            fi
        done
        plot
    fi
    python3 "$HERE/report.py" "$RESULTS" "$OUT/machine.txt" | tee "$OUT/report.md"
    log "raw results: $RESULTS; report: $OUT/report.md"
}

plot() {
    local series=() name
    for name in ferrovia-w1 ferrovia-w2 kamailio-c1-fm kamailio-c2-fm relay direct; do
        if [[ -s $OUT/B/$name/rtt.hgrm ]]; then
            local label=$name
            [[ $name == direct ]] && label="no forwarder (the tools' own floor)"
            series+=("$label=$OUT/B/$name/rtt.hgrm")
        fi
    done
    if ((${#series[@]})); then
        "$BIN/ferrovia-loadgen" plot --out "$OUT/latency.svg" \
            --title "Round trip through each forwarder at $B_RATE requests/s (loopback)" \
            "${series[@]}" >/dev/null
    fi
}

main "$@"
