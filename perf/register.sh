#!/usr/bin/env bash
# REGISTER with MD5 digest authentication at a fixed rate, through ferrovia (the worked
# example, examples/registrar/registrar.toml), through Kamailio (registrar + auth_db on
# db_text holding the same users, perf/kamailio/kamailio-registrar.cfg) and through the
# register floor (`ferrovia-loadgen register-floor`: one blocking socket, recvfrom + sendto,
# canned 401 and 200, no table, no digest check — the least any server can spend on this
# workload), one after the other in the same run, on loopback. Two more floors can be asked
# for (PERF_REG_SERVERS): floor-epoll answers the same way through ferrovia's workers' I/O
# shape (edge-triggered epoll, recvmmsg / sendmmsg, epoll_wait with a 250 ms timeout), and
# floor-epoll-notimeout the same with epoll_wait waiting without a timeout.
#
# Each registration is REGISTER, 401, REGISTER with Authorization, 200 (sipp's
# tests/sipp/register_auth.xml as alice, a new Call-ID per registration). Prints the CPU time
# each server used per successful registration: the scheduler's runtime of every thread of
# its process tree (/proc/*/task/*/schedstat, ns), with the load average before and after.
#
#   perf/register.sh                      # 500 registrations/s for 10 s, one worker / child
#   PERF_REG_RATE=1000 PERF_REG_SECS=20 PERF_FERROVIA=target/release/ferrovia perf/register.sh
#   PERF_REG_STAT=1 perf/register.sh      # also `perf stat` per thread: context switches,
#                                         # system calls (by call), wake-ups caused, hrtimers,
#                                         # IPIs, membarrier, futex per registration (the
#                                         # syscall tracepoints slow every system call a little:
#                                         # take CPU figures from a run without it)
#   PERF_REG_RECORD=1 perf/register.sh    # also `perf record -e cpu-clock` of the process tree:
#                                         # the share of samples in the kernel and the top symbols
#                                         # (NAME-perf.txt; sampling perturbs the CPU figures too)
#   PERF_REG_SERVERS="ferrovia floor" perf/register.sh
#   PERF_REG_CPUS=0 PERF_REG_SIPP_CPUS=1 perf/register.sh
#                                         # every thread of each server on CPU 0 (taskset after
#                                         # it started: this also lifts ferrovia's own pinning
#                                         # when the list has several CPUs), sipp on CPU 1
#
# Needs sipp and kamailio (apt-get install sip-tester kamailio), perf for PERF_REG_STAT, and
# release builds (cargo build --release -p ferrovia -p ferrovia-loadgen). Loopback only; every
# run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
rate=${PERF_REG_RATE:-500}
secs=${PERF_REG_SECS:-10}
ferrovia=${PERF_FERROVIA:-target/release/ferrovia}
loadgen=${PERF_LOADGEN:-target/release/ferrovia-loadgen}
servers=${PERF_REG_SERVERS:-ferrovia kamailio floor}
stat=${PERF_REG_STAT:-0}
record=${PERF_REG_RECORD:-0}
cpus=${PERF_REG_CPUS:-}
sipp_cpus=${PERF_REG_SIPP_CPUS:-}
calls=$((rate * secs))
out=${PERF_OUT:-perf/out/register-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
events=task-clock,context-switches,cpu-migrations,page-faults,raw_syscalls:sys_enter
events+=,sched:sched_waking,timer:hrtimer_start,irq_vectors:reschedule_entry
events+=,irq_vectors:call_function_single_entry,irq_vectors:local_timer_entry
events+=,syscalls:sys_enter_membarrier,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait
events+=,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendmmsg
events+=,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sched_ns() { python3 perf/measure.py cpu "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sched_ns"])'; }
load() { cut -d' ' -f1 /proc/loadavg; }

# run NAME PORT PID: the sipp load against 127.0.0.1:PORT; prints
# "NAME ok µs/registration load-before load-after".
run() {
    local name=$1 port=$2 pid=$3 before after ok l0 l1 perfpid= recpid=
    python3 perf/measure.py wait-udp "$port" 10 || echo "$name: nothing listens on $port" >&2
    sleep 1
    if [[ -n $cpus ]]; then
        for p in $(python3 perf/register_stat.py pids "$pid" | tr , ' '); do
            taskset -a -p -c "$cpus" "$p" > /dev/null
        done
    fi
    local pin=()
    if [[ -n $sipp_cpus ]]; then pin=(taskset -c "$sipp_cpus"); fi
    if [[ $stat == 1 ]]; then
        perf stat -x, --per-thread -e "$events" -p "$(python3 perf/register_stat.py pids "$pid")" \
            -o "$out/$name-perfstat.csv" &
        perfpid=$!
        sleep 0.5
    fi
    if [[ $record == 1 ]]; then
        perf record -q -e cpu-clock -F 5000 -p "$(python3 perf/register_stat.py pids "$pid")" \
            -o "$out/$name.perf.data" 2> /dev/null &
        recpid=$!
        sleep 0.5
    fi
    l0=$(load)
    before=$(sched_ns "$pid")
    (cd "$out" && timeout $((secs * 3 + 30)) "${pin[@]}" sipp "127.0.0.1:$port" \
        -sf "$root/tests/sipp/register_auth.xml" -s alice -au alice -ap alice-secret \
        -key domain edge.example -i 127.0.0.1 -p "$(free_port)" -r "$rate" -m "$calls" \
        -nostdin -timeout $((secs * 3 + 20))s -trace_stat -stf "$name.csv" -fd 1 \
        > "$name-sipp.txt" 2>&1) || true
    after=$(sched_ns "$pid")
    l1=$(load)
    if [[ -n $perfpid ]]; then
        kill -INT "$perfpid"; wait "$perfpid" 2>/dev/null || true
    fi
    if [[ -n $recpid ]]; then
        kill -INT "$recpid"; wait "$recpid" 2>/dev/null || true
        {
            perf report -i "$out/$name.perf.data" --sort dso --stdio 2> /dev/null | grep '%'
            perf report -i "$out/$name.perf.data" --sort sym --stdio 2> /dev/null | grep '%' | head -40
        } > "$out/$name-perf.txt"
    fi
    ok=$(awk -F';' 'NR==1 {for (i=1;i<=NF;i++) if ($i=="SuccessfulCall(C)") c=i} END {print $c+0}' "$out/$name.csv")
    if [[ -n $perfpid ]]; then
        python3 perf/register_stat.py summary "$out/$name-perfstat.csv" "$ok" "$name" >> "$out/perfstat.jsonl"
    fi
    local us=0
    if ((ok > 0)); then us=$(python3 -c "print(f'{($after - $before) / 1000 / $ok:.1f}')"); fi
    echo "$name $ok $us $l0 $l1"
}

results=()
for server in $servers; do
    port=$(free_port)
    case $server in
    ferrovia)
        "$ferrovia" --config examples/registrar/registrar.toml --listen "udp:127.0.0.1:$port" \
            --workers 1 --metrics off --log-level warn 2> "$out/ferrovia.log" &
        name=ferrovia-w1 ;;
    kamailio)
        kamailio -f perf/kamailio/kamailio-registrar.cfg -l "udp:127.0.0.1:$port" -n 1 -x fm \
            -A "DBURL=\"text://$root/perf/kamailio/registrar-db\"" -DD -E -w "$out" \
            2> "$out/kamailio.log" &
        name=kamailio-c1 ;;
    floor)
        "$loadgen" register-floor --listen "127.0.0.1:$port" --duration $((secs * 3 + 60)) \
            > "$out/floor.json" 2> "$out/floor.log" &
        name=floor ;;
    floor-epoll | floor-epoll-notimeout)
        timeout_ms=250
        if [[ $server == floor-epoll-notimeout ]]; then timeout_ms=0; fi
        "$loadgen" register-floor --listen "127.0.0.1:$port" --duration $((secs * 3 + 60)) \
            --io epoll --poll-timeout-ms "$timeout_ms" \
            > "$out/$server.json" 2> "$out/$server.log" &
        name=$server ;;
    *) echo "unknown server $server" >&2; exit 2 ;;
    esac
    pid=$!
    results+=("$(run "$name" "$port" "$pid")")
    kill "$pid"; wait "$pid" 2>/dev/null || true
done

{
    echo "REGISTER with MD5 digest, $rate/s for $secs s ($calls registrations asked), one worker / child${cpus:+, servers on CPUs $cpus}${sipp_cpus:+, sipp on CPUs $sipp_cpus}"
    echo
    echo "| server | registrations ok | CPU µs per registration | load average before → after |"
    echo "| --- | ---: | ---: | --- |"
    for r in "${results[@]}"; do
        read -r name ok us l0 l1 <<< "$r"
        echo "| $name | $ok | $us | $l0 → $l1 |"
    done
    for r in "${results[@]}"; do
        read -r name _ <<< "$r"
        if [[ -s $out/$name-perf.txt ]]; then
            echo
            echo "$name, share of cpu-clock samples by object:"
            awk '$2 ~ /%$/ {next} {print}' "$out/$name-perf.txt" | head -5 | sed 's/^/    /'
        fi
    done
    if [[ -s $out/perfstat.jsonl ]]; then
        echo
        python3 perf/register_stat.py table "$out/perfstat.jsonl"
    fi
} | tee "$out/report.md"
