#!/usr/bin/python3
"""The chart's DaemonSet, run here as far as one machine allows (ctest label packaging, root):
the real pwru-agent started with the rendered container's args (paths moved to a temp dir),
the generated Secrets and the authz ConfigMap, under exactly the capabilities the chart
grants (setpriv: bounding set = the chart's list, nothing else). Then:

- the probes' paths answer on the health port (what the kubelet asks);
- kubectl pwru's view: TLS to the name `pwru-agent` verified against the client Secret's
  ca.crt, with the client Secret's certificate, a node-wide trace streams start..summary
  (so the capabilities suffice for loading and attaching on this kernel, and the
  ConfigMap's authz.json is accepted and grants kubectl-pwru the node);
- a pod trace reaches the CRI socket the chart names (absent here: 503 naming it);
- a client certificate from another CA is refused in the handshake.

usage: chart_agent_test.py SOURCE_DIR CHART_RENDER PWRU_AGENT
"""
import base64
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import yaml

SRC, RENDER, AGENT = sys.argv[1:4]
if os.geteuid() != 0:
    print("SKIPPED: needs root (BPF) to run pwru-agent")
    sys.exit(0)
from checks import check, finish  # noqa: E402




def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


objs = [d for d in yaml.safe_load_all(subprocess.run(
    [RENDER, "pwru", os.path.join(SRC, "charts/pwru"), "--namespace", "pwru"],
    capture_output=True, text=True, check=True).stdout) if d]
ds = next(o for o in objs if o["kind"] == "DaemonSet")
container = ds["spec"]["template"]["spec"]["containers"][0]
secrets = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Secret"}
authz = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "pwru-agent-authz")
mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}

tmp = tempfile.mkdtemp(prefix="pwru-chart-agent-")
agent = None
try:
    # The volumes, where the DaemonSet mounts them, under tmp.
    for name, secret in (("tls", "pwru-agent-tls"), ("client", "pwru-client-tls")):
        os.makedirs(f"{tmp}/{name}")
        for k, v in secrets[secret]["data"].items():
            with open(f"{tmp}/{name}/{k}", "wb") as f:
                f.write(base64.b64decode(v))
    os.makedirs(f"{tmp}/authz")
    with open(f"{tmp}/authz/authz.json", "w") as f:
        f.write(authz["data"]["authz.json"])

    port, health = free_port(), free_port()
    args = []
    for a in container["args"]:
        a = a.replace(mounts["tls"], f"{tmp}/tls").replace(mounts["authz"], f"{tmp}/authz")
        a = re.sub(r"^--listen=.*", f"--listen=127.0.0.1:{port}", a)
        a = re.sub(r"^--health-listen=.*", f"--health-listen=127.0.0.1:{health}", a)
        a = re.sub(r"^--cri-socket=.*", f"--cri-socket={tmp}/no-runtime.sock", a)
        a = a.replace("$(NODE_NAME)", "chart-node")
        args.append(a)
    args.append(f"--ready-file={tmp}/ready")

    # The chart's capabilities, as far as this machine has them (a sandbox may lack some).
    have = int(re.search(r"CapBnd:\s*([0-9a-f]+)", open("/proc/self/status").read()).group(1), 16)
    caps_by_name = {"BPF": 39, "PERFMON": 38, "NET_ADMIN": 12, "SYS_ADMIN": 21, "SYS_RESOURCE": 24,
                    "SYS_PTRACE": 19, "SYSLOG": 34}
    chart_caps = container["securityContext"]["capabilities"]["add"]
    unknown = [c for c in chart_caps if c not in caps_by_name]
    check(not unknown, f"the chart's capabilities are known here ({unknown})")
    granted = [c for c in chart_caps if c in caps_by_name and have >> caps_by_name[c] & 1]
    absent = sorted(set(chart_caps) - set(granted) - set(unknown))
    if absent:
        print(f"note: this machine lacks {absent}; the agent runs without them")
    bset = "-all," + ",".join("+" + c.lower() for c in granted)

    # Why SYS_PTRACE and SYSLOG are in the list: a pod netns as /proc/PID/ns/net of a
    # root process with more capabilities (hostNetwork pods, CRI-O), and kallsyms
    # addresses (skb tracking, kprobes). With the chart's set both work; without them not.
    def as_caps(caps, *cmd):
        return subprocess.run(["setpriv", "--bounding-set=-all," + ",".join("+" + c.lower() for c in caps),
                               "--inh-caps=-all", "--", *cmd], capture_output=True, text=True)
    holder = subprocess.Popen(["sleep", "60"])
    try:
        ns = f"/proc/{holder.pid}/ns/net"
        without = [c for c in granted if c != "SYS_PTRACE"]
        check(as_caps(granted, "stat", "-L", "-c", "%i", ns).returncode == 0
              and as_caps(without, "stat", "-L", "-c", "%i", ns).returncode != 0,
              "SYS_PTRACE: /proc/PID/ns/net of a root process opens with the chart's set, not without it")
    finally:
        holder.kill()
        holder.wait()
    first = lambda caps: as_caps(caps, "head", "-n1", "/proc/kallsyms").stdout.split(" ")[0]
    check(first(granted).strip("0") != "" and first([c for c in granted if c != "SYSLOG"]).strip("0") == "",
          "SYSLOG: /proc/kallsyms shows addresses with the chart's set, zeros without it")
    agent = subprocess.Popen(["setpriv", f"--bounding-set={bset}", "--inh-caps=-all", "--", AGENT, *args],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 20
    while not os.path.exists(f"{tmp}/ready") and agent.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    if not check(os.path.exists(f"{tmp}/ready"), "pwru-agent serves with the chart's args and capabilities"):
        agent.kill()
        print(agent.communicate()[0])
        sys.exit(1)
    eff = int(re.search(r"CapEff:\s*([0-9a-f]+)", open(f"/proc/{agent.pid}/status").read()).group(1), 16)
    check(eff == sum(1 << caps_by_name[c] for c in granted), f"the agent's effective capabilities are the chart's ({eff:#x})")

    def curl(path, *extra, tls=True, cert="client", body=None):
        cmd = ["curl", "-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"]
        if tls:
            cmd += ["--cacert", f"{tmp}/client/ca.crt", "--resolve", f"pwru-agent:{port}:127.0.0.1"]
            if cert:
                cmd += ["--cert", f"{tmp}/{cert}/tls.crt", "--key", f"{tmp}/{cert}/tls.key"]
            url = f"https://pwru-agent:{port}{path}"
        else:
            url = f"http://127.0.0.1:{health}{path}"
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "-d", body]
        p = subprocess.run(cmd + list(extra) + [url], capture_output=True, text=True)
        out, _, code = p.stdout.rpartition("\n")
        return code, out, p.stderr.strip()

    for probe in ("livenessProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        code, out, err = curl(path, tls=False)
        check(code == "200", f"{probe} {path} on the health port: {code} {out.strip()[:80]} {err}")

    code, out, err = curl("/v1/trace", body='{"node":true,"filter":"icmp","max_duration_s":1}')
    types = [yaml.safe_load(line).get("type") for line in out.splitlines() if line.startswith("{")]
    check(code == "200" and types[:1] == ["start"] and types[-1:] == ["summary"],
          f"node-wide trace as kubectl-pwru over mTLS to `pwru-agent`: {code}, records {sorted(set(types))} {err}")
    code, out, err = curl("/v1/trace", body='{"namespace":"default","pod":"web","max_duration_s":1}')
    check(code == "503" and "no-runtime.sock" in out, f"a pod trace asks the chart's CRI socket: {code} {out.strip()[:160]}")

    # A client certificate from another CA.
    os.makedirs(f"{tmp}/stranger")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kubectl-pwru",
                    "-keyout", f"{tmp}/stranger/tls.key", "-out", f"{tmp}/stranger/tls.crt"], capture_output=True, check=True)
    code, out, err = curl("/v1/trace", cert="stranger", body='{"node":true,"max_duration_s":1}')
    check(code == "000", f"a client certificate of another CA is refused in the handshake ({err[:100]})")
    code, out, err = curl("/healthz", cert=None)
    check(code == "000", f"no client certificate: refused ({err[:100]})")
finally:
    if agent and agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
    subprocess.run(["rm", "-rf", tmp])

finish()
