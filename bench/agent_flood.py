#!/usr/bin/env python3
"""Bench 5c: pwru-agent under hostile clients (issue #23), run by agent_flood.sh.

A real pwru-agent on loopback (mTLS, file authz, --node-scope kernel, a
plain-HTTP health port) and, one after another:
  idle      IDLE_CONNS TCP connections that never send a byte, from 20
            loopback addresses (above the per-address and the total caps);
  hello     TRICKLE_CONNS connections sending a real TLS ClientHello one byte
            a second;
  health    TRICKLE_CONNS connections to the health port trickling header lines;
  bodies    4 clients in parallel each posting 10 MB of `[` (declared, then
            chunked), 3 rounds.
During each, a good client (its own address, 127.0.0.2) asks GET /healthz every
0.5 s: the worst and median time and the failures are the rows. The agent's
RSS and fd count are read before, at peak (sampled every 20 ms) and 3 s after
the flood ends. Prints RESULT lines (bench/lib.sh) and never fails on a
number; exit 1 only when the bench itself cannot run.
"""
import argparse
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

GOOD_SOURCE = "127.0.0.2"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def result(what, ours, peer, ratio, note):
    print(f"RESULT\tflood\t{what}\t{ours}\t{peer}\t{ratio}\t{note}", flush=True)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RssSampler:
    """Peak RSS of a process, sampled every 20 ms while running."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except OSError:
                return
            time.sleep(0.02)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def make_certs(work):
    def run(*args):
        subprocess.run(args, cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=pwru-bench-ca", "-days", "1")
    for name, san in (("agent", "DNS:localhost,IP:127.0.0.1"), ("client", "URI:spiffe://bench/client")):
        run("openssl", "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        with open(os.path.join(work, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\n")
        run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.crt")
    with open(os.path.join(work, "authz.json"), "w") as f:
        f.write('{"clients":[{"identity":"spiffe://bench/client","namespaces":["*"],"node":true}]}')


class Agent:
    def __init__(self, binary, work):
        self.work = work
        self.health_port = free_port()
        ready = os.path.join(work, "agent.ready")
        self.log = open(os.path.join(work, "agent.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--health-listen", f"127.0.0.1:{self.health_port}",
             "--tls-cert", "agent.crt", "--tls-key", "agent.key", "--client-ca", "ca.crt",
             "--authz-config", "authz.json", "--cri-socket", os.path.join(work, "no-cri.sock"),
             "--node-name", "bench-node", "--node-scope", "kernel", "--ready-file", ready],
            cwd=work, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(600):  # 60 s
            if os.path.exists(ready) and open(ready).read().strip() or self.proc.poll() is not None:
                break
            time.sleep(0.1)
        text = open(ready).read() if os.path.exists(ready) else ""
        digits = "".join(c for c in text if c.isdigit())
        if not digits:
            raise SystemExit("bench: the agent did not start; its log: " + open(self.log.name).read()[-2000:])
        self.port = int(digits)
        self.pid = self.proc.pid

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def client_context(work):
    ctx = ssl.create_default_context(cafile=os.path.join(work, "ca.crt"))
    ctx.load_cert_chain(os.path.join(work, "client.crt"), os.path.join(work, "client.key"))
    return ctx


def get_healthz(port, ctx, timeout=10.0):
    """One GET /healthz from GOOD_SOURCE: (ok, seconds)."""
    t0 = time.monotonic()
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(GOOD_SOURCE, 0))
        s = ctx.wrap_socket(raw, server_hostname="localhost") if ctx else raw
        with s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.startswith(b"HTTP/1.1 200"), time.monotonic() - t0
    except OSError:
        return False, time.monotonic() - t0


def probe_while(port, ctx, seconds):
    """GET /healthz every 0.5 s for `seconds`: (worst s, median s, failures, count)."""
    times, failures, end = [], 0, time.monotonic() + seconds
    while time.monotonic() < end:
        ok, t = get_healthz(port, ctx)
        times.append(t)
        failures += 0 if ok else 1
        time.sleep(0.5)
    return max(times), statistics.median(times), failures, len(times)


def open_idle(port, count, addresses):
    socks = []
    for i in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2,
                                         source_address=(addresses[i % len(addresses)], 0))
            socks.append(s)
        except OSError:
            pass
    return socks


def still_open(socks):
    """How many of `socks` the agent has not closed yet."""
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                continue  # closed by the agent
            n += 1
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def client_hello():
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def trickle(socks, payload, seconds, stop):
    """One byte of `payload` per second on every socket, for `seconds`."""
    for i in range(min(len(payload), int(seconds))):
        if stop.is_set():
            return
        for s in socks:
            try:
                s.send(payload[i:i + 1])
            except OSError:
                pass
        time.sleep(1)


def post_big(port, ctx, chunked):
    body = b"[" * (10 << 20)
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            if chunked:
                s.sendall(b"POST /v1/trace HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
                for off in range(0, len(body), 1 << 20):
                    piece = body[off:off + (1 << 20)]
                    s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            else:
                s.sendall(b"POST /v1/trace HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            return s.recv(64).startswith(b"HTTP/1.1 413")
    except OSError:
        return False


def trickle_flood(agent, port, ctx, payload, conns, hold):
    """`conns` connections to `port` from 127.0.0.1 sending `payload` one byte
    a second while the good client probes it: (worst s, failures, probes,
    flood sockets still open, opened, peak RSS KB)."""
    stop = threading.Event()
    with RssSampler(agent.pid) as rss:
        socks = open_idle(port, conns, ["127.0.0.1"])
        t = threading.Thread(target=trickle, args=(socks, payload, hold, stop), daemon=True)
        t.start()
        worst, _, fails, n = probe_while(port, ctx, hold)
        left = still_open(socks)
        stop.set()
        t.join()
    for s in socks:
        s.close()
    return worst, fails, n, left, len(socks), rss.peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    idle_conns, trickle_conns, hold = (200, 20, 8) if args.quick else (400, 40, 15)

    work = tempfile.mkdtemp(prefix="pwru-bench-flood.")
    try:
        make_certs(work)
        agent = Agent(os.path.abspath(args.agent), work)
        ctx = client_context(work)
        try:
            run_scenarios(agent, ctx, idle_conns, trickle_conns, hold)
        finally:
            agent.stop()
    finally:
        subprocess.run(["rm", "-rf", work])


def run_scenarios(agent, ctx, idle_conns, trickle_conns, hold):
    time.sleep(2)
    base_rss, base_fds = rss_kb(agent.pid), fd_count(agent.pid)
    base_worst, base_median, _, _ = probe_while(agent.port, ctx, 3)
    log(f"agent pid {agent.pid} port {agent.port} health {agent.health_port}: RSS {base_rss} KB, {base_fds} fds, "
        f"/healthz median {base_median * 1000:.1f} ms")
    result("/healthz (mTLS) with no flood, median ms", f"{base_median * 1000:.1f}", "-", "-",
           f"worst {base_worst * 1000:.1f} ms")
    peaks = []

    # idle: more connections than the caps allow, from 20 addresses.
    addresses = [f"127.0.0.{10 + i}" for i in range(20)]
    with RssSampler(agent.pid) as rss:
        socks = open_idle(agent.port, idle_conns, addresses)
        worst, median, fails, n = probe_while(agent.port, ctx, hold)
        left = still_open(socks)
    for s in socks:
        s.close()
    peaks.append(rss.peak)
    result(f"/healthz during {len(socks)} idle connections from 20 addresses, worst ms", f"{worst * 1000:.0f}",
           f"{base_worst * 1000:.0f} unflooded", f"{worst / base_worst:.1f}x" if base_worst else "n/a",
           f"{fails}/{n} failed; {left} flood sockets still open after {hold} s (handshake deadline 5 s)")

    # hello: ClientHellos trickled one byte a second; health: header lines
    # trickled to the plain health port.
    worst, fails, n, left, opened, peak = trickle_flood(agent, agent.port, ctx, client_hello(), trickle_conns, hold)
    peaks.append(peak)
    result(f"/healthz during {trickle_conns} ClientHellos at 1 byte/s, worst ms", f"{worst * 1000:.0f}",
           f"{base_worst * 1000:.0f} unflooded", f"{worst / base_worst:.1f}x" if base_worst else "n/a",
           f"{fails}/{n} failed; {left} of {opened} still open after {hold} s")
    head = b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(100))
    worst, fails, n, left, opened, peak = trickle_flood(agent, agent.health_port, None, head, trickle_conns, hold)
    peaks.append(peak)
    result(f"health port /healthz during {trickle_conns} trickled heads, worst ms", f"{worst * 1000:.0f}", "-", "-",
           f"{fails}/{n} failed; {left} of {opened} still open after {hold} s (head deadline 10 s)")

    # bodies: 4 x 10 MB in parallel, declared and chunked, 3 rounds.
    refused, total = 0, 0
    t0 = time.monotonic()
    with RssSampler(agent.pid) as rss:
        for _ in range(3):
            for chunked in (False, True):
                outcomes = []
                threads = [threading.Thread(target=lambda: outcomes.append(post_big(agent.port, ctx, chunked)))
                           for _ in range(4)]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                refused += sum(outcomes)
                total += len(threads)
    peaks.append(rss.peak)
    result("RSS peak during 4 parallel 10 MB bodies x 6 rounds, MB", f"{rss.peak / 1024:.1f}",
           f"{base_rss / 1024:.1f} idle", f"{rss.peak / base_rss:.2f}" if base_rss else "n/a",
           f"{refused}/{total} answered 413; {time.monotonic() - t0:.1f} s")

    time.sleep(3)
    after_rss, after_fds = rss_kb(agent.pid), fd_count(agent.pid)
    result("RSS peak over every flood, MB", f"{max(peaks) / 1024:.1f}", f"{base_rss / 1024:.1f} idle",
           f"{max(peaks) / base_rss:.2f}" if base_rss else "n/a", "bound: docs/agent-api.md Limits")
    result("RSS and fds 3 s after the floods", f"{after_rss / 1024:.1f} MB, {after_fds} fds",
           f"{base_rss / 1024:.1f} MB, {base_fds} fds before", f"{after_rss / base_rss:.2f}" if base_rss else "n/a",
           "back to baseline when the ratio is about 1 and the fds equal")


if __name__ == "__main__":
    main()
