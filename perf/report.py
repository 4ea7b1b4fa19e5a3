#!/usr/bin/env python3
"""Markdown tables from perf/run.sh's results.jsonl.

  report.py RESULTS.jsonl [MACHINE.txt]

Ratios are taken within the same run only:
  x relay     this forwarder's number divided by the bare relay's (CPU: lower is better;
              zero-loss rate: higher is better).
  x Kamailio  divided by Kamailio's with the same number of cores and the fast allocator:
              ferrovia-wN and kamailio-cN-qm against kamailio-cN-fm, the relay against
              kamailio-c1-fm.
"""

import json
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    return rows


def kamailio_peer(name):
    if name.startswith("ferrovia-w"):
        workers = name[len("ferrovia-w"):].split("-")[0]
        return f"kamailio-c{workers}-fm"
    if name.startswith("kamailio-c"):
        return name.rsplit("-", 1)[0] + "-fm"
    return "kamailio-c1-fm"


def ratio(value, base):
    if value is None or not base:
        return "–"
    return f"{value / base:.2f}"


def num(value, digits=1):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}"


def calls_table(rows, rate):
    at_rate = [r for r in rows if r["rate"] == rate]
    by_name = {r["forwarder"]: r for r in at_rate}
    relay = by_name.get("relay", {}).get("cpu_us_per_msg")
    out = [
        f"### {rate:,} calls/s ({at_rate[0]['calls']:,} calls)",
        "",
        "| forwarder | calls ok | failed | unexpected msgs | retrans | msgs forwarded "
        "| CPU µs/msg | × relay | × Kamailio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in at_rate:
        cpu = r.get("cpu_us_per_msg")
        peer = by_name.get(kamailio_peer(r["forwarder"]), {}).get("cpu_us_per_msg")
        out.append(
            f"| {r['forwarder']} | {num(r['calls_ok'])} | {num(r['calls_failed'])} "
            f"| {num(r['unexpected_msgs'])} | {num(r['retransmissions'])} "
            f"| {num(r['msgs_forwarded'])} | {num(cpu, 2)} | {ratio(cpu, relay)} "
            f"| {ratio(cpu, peer)} |"
        )
    return out


def load_table(rows):
    by_name = {r["forwarder"]: r for r in rows}
    relay = by_name.get("relay", {}).get("zero_loss_rate")
    rate = next((r["send"].get("rate") for r in rows if r.get("send")), None)
    out = [
        "| forwarder | zero-loss req/s | limited by | × relay | × Kamailio "
        f"| at {num(rate)} req/s: lost | RTT p50 µs | p90 | p99 | p99.9 | max | CPU µs/msg |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        best = r.get("zero_loss_rate")
        peer = by_name.get(kamailio_peer(r["forwarder"]), {}).get("zero_loss_rate")
        send = r.get("send") or {}
        rtt = send.get("rtt") or {}
        name = r["forwarder"] + (" (no forwarder)" if r["forwarder"] == "direct" else "")
        out.append(
            f"| {name} | {num(best)} | {r.get('limit') or '–'} "
            f"| {ratio(best, relay) if r['forwarder'] != 'direct' else '–'} "
            f"| {ratio(best, peer) if r['forwarder'] != 'direct' else '–'} "
            f"| {num(send.get('lost'))} | {num(rtt.get('p50_us'))} | {num(rtt.get('p90_us'))} "
            f"| {num(rtt.get('p99_us'))} | {num(rtt.get('p99_9_us'))} | {num(rtt.get('max_us'))} "
            f"| {num(r.get('cpu_us_per_msg'), 2)} |"
        )
    return out


def verdict(ok):
    return "met" if ok else "**missed**"


def targets(calls, loads):
    """Issue 6's targets, for the rows that exist."""
    out = []
    top_rate = max((r["rate"] for r in calls), default=None)
    top = {r["forwarder"]: r for r in calls if r["rate"] == top_rate}
    loads_by = {r["forwarder"]: r for r in loads}
    for w in ("ferrovia-w1", "ferrovia-w2"):
        f = top.get(w)
        if f and f.get("cpu_us_per_msg"):
            k = top.get(kamailio_peer(w), {}).get("cpu_us_per_msg")
            relay = top.get("relay", {}).get("cpu_us_per_msg")
            cpu = f["cpu_us_per_msg"]
            if k:
                out.append(f"- {w} CPU/msg ≤ 1/4 of Kamailio's at {top_rate:,} calls/s: "
                           f"{cpu:.2f} vs {k:.2f} µs ({cpu / k:.2f}×): {verdict(cpu <= k / 4)}")
            if relay:
                out.append(f"- {w} CPU/msg ≤ 1.3× the relay's: {cpu:.2f} vs {relay:.2f} µs "
                           f"({cpu / relay:.2f}×): {verdict(cpu <= 1.3 * relay)}")
        b = loads_by.get(w, {}).get("zero_loss_rate")
        kb = loads_by.get(kamailio_peer(w), {}).get("zero_loss_rate")
        if b and kb:
            out.append(f"- {w} zero-loss rate ≥ 4× Kamailio's ({kamailio_peer(w)}): {b:,} vs "
                       f"{kb:,} req/s ({b / kb:.2f}×): {verdict(b >= 4 * kb)}")
    # Issue 15: a 3-destination group costs at most 1.3x the relay's CPU per message (B).
    relay_b = loads_by.get("relay", {}).get("cpu_us_per_msg")
    for name, r in loads_by.items():
        cpu = r.get("cpu_us_per_msg")
        if not name.endswith("-group3") or not cpu:
            continue
        plain = loads_by.get(name[: -len("-group3")], {}).get("cpu_us_per_msg")
        if relay_b:
            out.append(f"- {name} CPU/msg ≤ 1.3× the relay's (B, same run): {cpu:.2f} vs "
                       f"{relay_b:.2f} µs ({cpu / relay_b:.2f}×): {verdict(cpu <= 1.3 * relay_b)}")
        if plain:
            out.append(f"- {name} against {name[: -len('-group3')]} (no group): {cpu:.2f} vs "
                       f"{plain:.2f} µs/msg ({cpu / plain:.2f}×)")
    w2 = [r for r in calls if r["forwarder"] == "ferrovia-w2"]
    if w2:
        failed = sum(r["calls_failed"] for r in w2)
        out.append(f"- ferrovia-w2: zero failed sipp calls: {failed} failed: {verdict(failed == 0)}")
    return out


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    rows = load(argv[0])
    calls = [r for r in rows if r.get("workload") == "A"]
    loads = [r for r in rows if r.get("workload") == "B"]
    out = ["# ferrovia perf run", ""]
    if len(argv) > 1:
        with open(argv[1]) as f:
            out += ["```", f.read().rstrip(), "```", ""]
    if calls:
        out += ["## Workload A: sipp uac → forwarder → sipp uas", "",
                "CPU µs/msg: the forwarder's user+system CPU time (all its processes and "
                "threads, from /proc) during the run, divided by the SIP messages that crossed "
                "it (everything the uac and the uas received).", ""]
        for rate in sorted({r["rate"] for r in calls}):
            out += calls_table(calls, rate) + [""]
    if loads:
        out += ["## Workload B: ferrovia-loadgen send → forwarder → ferrovia-loadgen reflect", "",
                "Zero-loss: the highest offered rate (INVITE with SDP, 900 B, 64 flows) at which "
                "every request got its 200 back, from a bounded doubling-then-bisection search. "
                "\"direct\" is the load generator against the reflector with nothing between: "
                "the ceiling of the measuring tools themselves on this machine.", ""]
        out += load_table(loads) + [""]
    goals = targets(calls, loads)
    if goals:
        out += ["## Issue 6 targets", ""] + goals + [""]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
