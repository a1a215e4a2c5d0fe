#!/usr/bin/env python3
"""Checks a kubectl pwru --output-json timeline (the kind e2e's assertions).

usage: e2e/kind/assert-trace.py TRACE.ndjson --nodes N1,N2 --drop-to IP[:PORT]
                                [--reason SKB_DROP_REASON_NETFILTER_DROP]
Passes when:
  - there are events from every node in --nodes;
  - events are in time order: wall_ns never decreases, except on events the
    plugin marked "late" (it prints a late event instead of dropping it);
  - some event is the drop: drop_reason contains --reason and the tuple goes
    to --drop-to (daddr, and dport when given).
Prints one line per check; exits 1 when one fails. Python 3 standard library only.
"""
import argparse
import json
import sys

ap = argparse.ArgumentParser()
ap.add_argument("trace")
ap.add_argument("--nodes", required=True)
ap.add_argument("--drop-to", required=True)
ap.add_argument("--reason", default="SKB_DROP_REASON_NETFILTER_DROP")
a = ap.parse_args()

events, statuses, bad_lines = [], [], 0
with open(a.trace) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        try:
            j = json.loads(line)
        except ValueError:
            bad_lines += 1
            continue
        if "func" in j:
            events.append(j)
        elif "node_status" in j:
            statuses.append(j)

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


check(bad_lines == 0, f"every line is JSON ({bad_lines} are not)")
check(len(events) > 0, f"{len(events)} events")
nodes = [n for n in a.nodes.split(",") if n]
per_node = {n: sum(1 for e in events if e.get("node") == n) for n in nodes}
check(all(per_node.values()), f"events from every node: {per_node}")
in_order = [e for e in events if not e.get("late")]
disorder = [i for i in range(1, len(in_order)) if in_order[i]["wall_ns"] < in_order[i - 1]["wall_ns"]]
late = len(events) - len(in_order)
check(not disorder, f"time order: wall_ns never decreases ({len(disorder)} inversions; {late} events marked late)")
ip, _, port = a.drop_to.partition(":")
drops = [e for e in events if a.reason in e.get("drop_reason", "") and e.get("tuple", {}).get("daddr") == ip
         and (not port or str(e["tuple"].get("dport")) == port)]
check(bool(drops), f"the drop: {len(drops)} events with {a.reason} to {a.drop_to}"
      + (f", first on node {drops[0].get('node')} in {drops[0].get('func')}" if drops else ""))
errors = [s for s in statuses if s.get("node_status") == "error"]
check(not errors, f"no stream error: {[s.get('message') for s in errors]}")
sys.exit(1 if failures else 0)
