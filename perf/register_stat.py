#!/usr/bin/env python3
"""Helpers of perf/register.sh: which processes to watch, and what `perf stat` counted.

  register_stat.py pids ROOT              ROOT and every process below it, comma-separated
  register_stat.py summary FILE OK NAME   `perf stat -x, --per-thread` output FILE of one
                                          server's run with OK successful registrations:
                                          one JSON line with the per-registration figures,
                                          summed over every thread and per thread
  register_stat.py table JSONL            the JSON lines of one run as Markdown tables

Only the standard library is used.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import descendants  # noqa: E402

# perf's event names and the short names the tables use.
EVENTS = {
    "task-clock": "cpu_us",
    "context-switches": "switches",
    "cpu-migrations": "migrations",
    "page-faults": "faults",
    "raw_syscalls:sys_enter": "syscalls",
    "sched:sched_waking": "wakes_caused",
    "timer:hrtimer_start": "hrtimers",
    "syscalls:sys_enter_membarrier": "membarriers",
    "syscalls:sys_enter_futex": "futexes",
    "syscalls:sys_enter_epoll_wait": "epoll_waits",
    "syscalls:sys_enter_epoll_pwait": "epoll_pwaits",
    "syscalls:sys_enter_recvmmsg": "recvmmsgs",
    "syscalls:sys_enter_sendmmsg": "sendmmsgs",
    "syscalls:sys_enter_recvfrom": "recvfroms",
    "syscalls:sys_enter_sendto": "sendtos",
    "irq_vectors:reschedule_entry": "resched_ipis",
    "irq_vectors:call_function_single_entry": "call_ipis",
    "irq_vectors:local_timer_entry": "timer_irqs",
}


def pids(root):
    return ",".join(str(p) for p in sorted(descendants(int(root))))


def parse(path):
    """{thread: {short name: value}} from `perf stat -x, --per-thread` output."""
    threads = {}
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split(",")
            if len(fields) < 4 or line.startswith("#"):
                continue
            thread, value, event = fields[0], fields[1], fields[3]
            short = EVENTS.get(event)
            if short is None or not re.match(r"^[0-9.]+$", value):
                continue
            value = float(value)
            if short == "cpu_us":
                value *= 1000.0  # task-clock is in milliseconds
            threads.setdefault(thread, {})[short] = value
    return threads


def summary(path, ok, name):
    ok = int(ok)
    threads = parse(path)
    total = {}
    for counts in threads.values():
        for key, value in counts.items():
            total[key] = total.get(key, 0.0) + value
    per = lambda counts: {k: round(v / ok, 3) for k, v in counts.items()} if ok else {}
    busy = sorted(threads.items(), key=lambda t: -t[1].get("cpu_us", 0.0))
    out = {
        "server": name,
        "ok": ok,
        "per_registration": per(total),
        "threads": {t: per(c) for t, c in busy if c.get("cpu_us", 0.0) > 0.0},
    }
    print(json.dumps(out))


COLUMNS = [
    ("cpu_us", "CPU µs"), ("switches", "ctx switches"), ("syscalls", "syscalls"),
    ("wakes_caused", "wake-ups caused"), ("hrtimers", "hrtimers armed"),
    ("resched_ipis", "resched IPIs"), ("call_ipis", "call IPIs"),
    ("membarriers", "membarrier"), ("futexes", "futex"), ("faults", "page faults"),
    ("migrations", "migrations"),
]


def table(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    print("Per successful registration, whole process tree (perf stat, every thread):\n")
    print("| server | ok | " + " | ".join(c[1] for c in COLUMNS) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in COLUMNS) + " |")
    for r in rows:
        p = r["per_registration"]
        cells = [f"{p.get(k, 0.0):.2f}" for k, _ in COLUMNS]
        print(f"| {r['server']} | {r['ok']} | " + " | ".join(cells) + " |")
    print("\nSystem calls per successful registration, by call:\n")
    calls = ["epoll_waits", "epoll_pwaits", "recvmmsgs", "sendmmsgs", "recvfroms", "sendtos"]
    print("| server | " + " | ".join(calls) + " |")
    print("| --- | " + " | ".join("---:" for _ in calls) + " |")
    for r in rows:
        p = r["per_registration"]
        print(f"| {r['server']} | " + " | ".join(f"{p.get(k, 0.0):.2f}" for k in calls) + " |")
    print("\nBusiest threads (CPU µs / context switches / syscalls per registration):\n")
    for r in rows:
        top = list(r["threads"].items())[:4]
        text = "; ".join(
            f"{t} {c.get('cpu_us', 0):.2f} / {c.get('switches', 0):.2f} / {c.get('syscalls', 0):.2f}"
            for t, c in top
        )
        print(f"- {r['server']}: {text}")


def main(argv):
    if len(argv) == 3 and argv[1] == "pids":
        print(pids(argv[2]))
    elif len(argv) == 5 and argv[1] == "summary":
        summary(argv[2], argv[3], argv[4])
    elif len(argv) == 3 and argv[1] == "table":
        table(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
