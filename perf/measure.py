#!/usr/bin/env python3
"""Measurements perf/run.sh takes from outside the processes it runs.

  measure.py cpu PID            CPU time used so far by PID and all its descendants (every
                                thread): one JSON line {"sched_ns", "stat_ns", "processes"}.
  measure.py sipp DIR           the final counts of the sipp uac and uas that ran in DIR
                                (-trace_counts and -trace_stat files): one JSON line.
  measure.py wait-udp PORT SECS exit 0 once something listens on UDP PORT (loopback or any),
                                1 after SECS.

CPU time: /proc/<pid>/stat utime+stime (clock ticks, usually 10 ms) for each process, and the
scheduler's nanosecond runtime summed over /proc/<pid>/task/*/schedstat, the same quantity
without the tick rounding. Only the standard library is used.
"""

import csv
import glob
import json
import os
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (which may hold spaces)."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rindex(")") + 2:].split()


def descendants(root):
    """root and every process below it, from the parent links in /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(stat_fields(entry)[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def sched_ns(pid):
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def cpu(root):
    stat_total, sched_total, seen = 0, 0, 0
    for pid in descendants(root):
        try:
            fields = stat_fields(pid)
        except OSError:
            continue  # exited meanwhile
        # After the name: state(0) ppid(1) ... utime(11) stime(12)
        stat_total += (int(fields[11]) + int(fields[12])) * 1_000_000_000 // CLK_TCK
        sched_total += sched_ns(pid)
        seen += 1
    return {"sched_ns": sched_total, "stat_ns": stat_total, "processes": seen}


def last_row(pattern):
    """The header and the last data row of the newest sipp CSV matching pattern."""
    paths = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not paths:
        return None
    with open(paths[-1], newline="") as f:
        rows = [r for r in csv.reader(f, delimiter=";") if r]
    if len(rows) < 2:
        return None
    return dict(zip(rows[0], rows[-1]))


def message_counts(row):
    """Messages received (incl. retransmissions and unexpected ones) and sent by one sipp."""
    received = sent = 0
    for name, value in (row or {}).items():
        parts = name.split("_")
        if len(parts) < 3 or not value.strip().isdigit():
            continue
        kind, n = parts[-1], int(value)
        if kind in ("Recv", "Unexp"):
            received += n
        elif kind == "Sent":
            sent += n
        elif kind == "Retrans":
            # A retransmission counted on a row the sipp sends is one more datagram it sent;
            # on a row it receives, one more it received.
            row_sends = f"{parts[0]}_{parts[1]}_Sent" in row
            if row_sends:
                sent += n
            else:
                received += n
    return received, sent


def as_int(row, key):
    try:
        return int((row or {}).get(key, "0") or 0)
    except ValueError:
        return 0


def sipp(directory):
    uac_counts = last_row(os.path.join(directory, "uac_*_counts.csv"))
    uas_counts = last_row(os.path.join(directory, "uas_*_counts.csv"))
    uac_stat = last_row(os.path.join(directory, "uac_stat.csv"))
    uac_in, uac_out = message_counts(uac_counts)
    uas_in, uas_out = message_counts(uas_counts)
    return {
        "calls_created": as_int(uac_stat, "TotalCallCreated"),
        "calls_ok": as_int(uac_stat, "SuccessfulCall(C)"),
        "calls_failed": as_int(uac_stat, "FailedCall(C)"),
        "failed_unexpected": as_int(uac_stat, "FailedUnexpectedMessage(C)"),
        "failed_max_retrans": as_int(uac_stat, "FailedMaxUDPRetrans(C)"),
        "retransmissions": as_int(uac_stat, "Retransmissions(C)"),
        "unexpected_msgs": sum(
            as_int(r, k) for r in (uac_counts, uas_counts) for k in (r or {}) if k.endswith("_Unexp")
        ),
        # What crossed the forwarder: everything the far side received, both directions.
        "msgs_forwarded": uac_in + uas_in,
        # What was offered to it: everything either side sent.
        "msgs_offered": uac_out + uas_out,
        "uac_found": uac_counts is not None and uac_stat is not None,
        "uas_found": uas_counts is not None,
    }


def udp_listening(port):
    want = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    if line.split()[1].endswith(want):
                        return True
        except (OSError, StopIteration, IndexError):
            continue
    return False


def wait_udp(port, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if udp_listening(port):
            return 0
        time.sleep(0.05)
    return 1


def main(argv):
    if len(argv) >= 2 and argv[0] == "cpu":
        print(json.dumps(cpu(int(argv[1]))))
        return 0
    if len(argv) >= 2 and argv[0] == "sipp":
        print(json.dumps(sipp(argv[1])))
        return 0
    if len(argv) >= 3 and argv[0] == "wait-udp":
        return wait_udp(int(argv[1]), float(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
