#!/usr/bin/python3
"""The kind e2e and the other packaging scripts, checked where docker, kind and
helm do not run (ctest label packaging):

- every shell script parses (bash -n) and passes shellcheck;
- .github/workflows/kind-e2e.yml is YAML with jobs whose `run:` blocks parse,
  and every repository path it names exists;
- the kubectl pwru flags e2e/kind/trace.sh passes exist in the built kubectl-pwru;
- e2e/kind/assert-trace.py accepts a good timeline and refuses each kind of bad one.

usage: e2e_scripts_test.py SOURCE_DIR [KUBECTL_PWRU]
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

SRC = sys.argv[1]
PLUGIN = sys.argv[2] if len(sys.argv) > 2 else ""
from checks import check, finish  # noqa: E402




scripts = sorted(glob.glob(os.path.join(SRC, "e2e/kind/*.sh")) + glob.glob(os.path.join(SRC, "scripts/*.sh"))
                 + [os.path.join(SRC, "manifests/install.sh"), os.path.join(SRC, "krew/release.sh")])
check(len(scripts) >= 12, f"{len(scripts)} scripts found")
for s in scripts:
    p = subprocess.run(["bash", "-n", s], capture_output=True, text=True)
    check(p.returncode == 0, f"bash -n {os.path.relpath(s, SRC)} {p.stderr.strip()}")
if check(shutil.which("shellcheck") is not None, "shellcheck is installed (scripts/install-deps.sh)"):
    p = subprocess.run(["shellcheck", "-x", "-P", "SCRIPTDIR", *scripts], capture_output=True, text=True, cwd=SRC)
    check(p.returncode == 0, "shellcheck: every packaging script\n" + p.stdout[:3000])
    # The k8s layer's scripts: warnings and errors (their info notes are style).
    k8s = sorted(glob.glob(os.path.join(SRC, "tests/k8s/*.sh")) + glob.glob(os.path.join(SRC, "tests/k8s/scenarios/*.sh")))
    check(len(k8s) >= 10, f"{len(k8s)} k8s layer scripts found")
    p = subprocess.run(["shellcheck", "-x", "-P", "SCRIPTDIR", "-S", "warning", *k8s], capture_output=True, text=True, cwd=SRC)
    check(p.returncode == 0, "shellcheck -S warning: every k8s layer script\n" + p.stdout[:3000])

wf_path = os.path.join(SRC, ".github/workflows/kind-e2e.yml")
wf = yaml.safe_load(open(wf_path))
check(set(wf["jobs"]) == {"chart", "kind"} and wf["jobs"]["kind"]["needs"] == "chart", "workflow: chart job, then kind job")
runs = [st["run"] for job in wf["jobs"].values() for st in job["steps"] if "run" in st]
for r in runs:
    p = subprocess.run(["bash", "-n"], input=r, capture_output=True, text=True)
    check(p.returncode == 0, f"workflow run block parses: {r.splitlines()[0]} {p.stderr.strip()}")
uses = [st["uses"] for job in wf["jobs"].values() for st in job["steps"] if "uses" in st]
check(all(re.search(r"@v\d+$", u) for u in uses), f"actions pinned to a major version: {uses}")
text = open(wf_path).read()
paths = set(re.findall(r"(?:e2e/kind|scripts|charts|manifests)/[\w./-]+", text))
for p in sorted(paths):
    check(os.path.exists(os.path.join(SRC, p.rstrip("."))), f"workflow names {p}: exists")
check("e2e/kind/run.sh" in text and "helm template pwru charts/pwru --namespace pwru --kube-version 1.20.0 | scripts/chart-normalize.sh" in text,
      "workflow runs e2e/kind/run.sh and diffs helm template (normalized) against manifests/")
run_sh = open(os.path.join(SRC, "e2e/kind/run.sh")).read()
for step in ("cluster-up.sh", "image.sh", "install-chart.sh", "workloads.sh", "drop.sh", "trace.sh", "assert-trace.py"):
    check(step in run_sh, f"run.sh runs {step}")

if PLUGIN:
    help_text = subprocess.run([PLUGIN, "--help"], capture_output=True, text=True).stdout
    trace_sh = open(os.path.join(SRC, "e2e/kind/trace.sh")).read()
    cmd = re.search(r"kubectl pwru (.*?)-- 'tcp port 80'", trace_sh, re.S).group(1)
    flags = re.findall(r"(--[a-z-]+)", cmd)
    check(flags and all(f in help_text for f in flags), f"kubectl-pwru knows trace.sh's flags {flags}")

# assert-trace.py on timelines made here.
ASSERT = os.path.join(SRC, "e2e/kind/assert-trace.py")


def ev(node, t, func="ip_rcv", reason="", daddr="10.244.1.5", dport=80, late=False):
    e = {"skb": "0x1", "func": func, "wall_ns": t, "node": node, "pod": "pwru-e2e/x",
         "tuple": {"saddr": "10.244.0.7", "daddr": daddr, "sport": 40000, "dport": dport, "proto": 6}}
    if reason:
        e["drop_reason"] = reason
    if late:
        e["late"] = True
    return e


good = [{"node_status": "connected", "node": "a"}, {"node_status": "connected", "node": "b"},
        ev("a", 100), ev("a", 200), ev("b", 300),
        ev("b", 400, "kfree_skb", "SKB_DROP_REASON_NETFILTER_DROP"), ev("a", 150, late=True), ev("a", 500)]
cases = {
    "a good timeline": (good, 0),
    "events from one node only": ([e for e in good if e.get("node") != "b" or "node_status" in e], 1),
    "out of order without late": (good[:3] + [ev("b", 50)] + good[3:], 1),
    "no drop": ([e for e in good if "drop_reason" not in e], 1),
    "another drop reason": ([dict(e, drop_reason="SKB_DROP_REASON_NO_SOCKET") if "drop_reason" in e else e for e in good], 1),
    "the drop to another address": ([ev("b", 400, "kfree_skb", "SKB_DROP_REASON_NETFILTER_DROP", daddr="10.9.9.9")
                                     if "drop_reason" in e else e for e in good], 1),
    "a stream error": (good + [{"node_status": "error", "node": "b", "message": "refused"}], 1),
}
with tempfile.TemporaryDirectory() as tmp:
    for what, (lines, want) in cases.items():
        path = os.path.join(tmp, "t.ndjson")
        with open(path, "w") as f:
            f.write("".join(json.dumps(l) + "\n" for l in lines))
        p = subprocess.run([sys.executable, ASSERT, path, "--nodes", "a,b", "--drop-to", "10.244.1.5:80"],
                           capture_output=True, text=True)
        check(p.returncode == want, f"assert-trace.py on {what}: exit {p.returncode} (want {want})"
              + ("" if p.returncode == want else "\n" + p.stdout))

finish()
