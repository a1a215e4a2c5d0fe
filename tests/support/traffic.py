#!/usr/bin/env python3
"""Test traffic between two network namespaces, for the drop tests of the netns
layer (tests/netns/pwru_drop_test.cc) and the vm layer (tests/vm/guest_tests.sh).

  traffic.py exchange A_NETNS B_NETNS ADDR_B PORT
      nothing the kernel drops: a full TCP exchange (connect, 5 bytes each way,
      both sides close), one UDP datagram each way, one ICMP echo and its reply
      (a ping socket, so the reply is consumed, not left to icmp_rcv), all from
      A to ADDR_B in B. Prints "ok tcp", "ok udp", "ok icmp"; exit 0 when all passed.
  traffic.py udp A_NETNS ADDR PORT SIZE [df]
      one UDP datagram of SIZE payload bytes from A (with DF when "df").

A_NETNS / B_NETNS: a netns file (/run/netns/NAME) or "-" for the current one.
Every wait is bounded (5 s). Needs root (setns, the ping_group_range sysctl).
"""
import ctypes
import os
import socket
import sys

CLONE_NEWNET = 0x40000000
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2
TIMEOUT = 5.0
libc = ctypes.CDLL(None, use_errno=True)


def enter(netns):
    """Moves this (single-threaded) process into netns; "-" stays."""
    if netns == "-":
        return
    fd = os.open(netns, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            sys.exit(f"traffic.py: setns({netns}): {os.strerror(err)}; run as root with an existing netns")
    finally:
        os.close(fd)


def serve(addr, port, ready_w):
    """B's side: one TCP connection (read 5 bytes, answer 5, wait for EOF, close)
    and one UDP datagram answered."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((addr, port))
    tcp.listen(1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((addr, port))
    tcp.settimeout(TIMEOUT)
    udp.settimeout(TIMEOUT)
    os.write(ready_w, b"r")
    conn, _ = tcp.accept()
    conn.settimeout(TIMEOUT)
    got = b""
    while len(got) < 5:
        chunk = conn.recv(5 - len(got))
        if not chunk:
            break
        got += chunk
    conn.sendall(b"world")
    while conn.recv(64):  # until A's FIN: nothing left unread, so no RST
        pass
    conn.close()
    data, peer = udp.recvfrom(64)
    udp.sendto(b"pong:" + data, peer)
    tcp.close()
    udp.close()


def exchange(a_ns, b_ns, addr, port):
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        code = 0
        try:
            enter(b_ns)
            serve(addr, port, ready_w)
        except Exception as e:  # the parent reports the failure
            print(f"server: {e}", file=sys.stderr)
            code = 1
        os._exit(code)
    os.close(ready_w)
    enter(a_ns)
    ok = True
    try:
        if os.read(ready_r, 1) != b"r":
            raise RuntimeError("the server in B did not start")
        c = socket.create_connection((addr, port), timeout=TIMEOUT)
        c.sendall(b"hello")
        got = b""
        while len(got) < 5:
            chunk = c.recv(5 - len(got))
            if not chunk:
                break
            got += chunk
        c.shutdown(socket.SHUT_WR)
        while c.recv(64):  # until B's FIN
            pass
        c.close()
        print("ok tcp" if got == b"world" else f"bad tcp: got {got!r}")
        ok &= got == b"world"

        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(TIMEOUT)
        u.sendto(b"ping", (addr, port))
        reply, _ = u.recvfrom(64)
        u.close()
        print("ok udp" if reply == b"pong:ping" else f"bad udp: got {reply!r}")
        ok &= reply == b"pong:ping"

        ok &= icmp_echo(addr)
    except Exception as e:
        print(f"failed: {e}")
        ok = False
    _, status = os.waitpid(pid, 0)
    if status != 0:
        print(f"server in B failed (status {status})")
        ok = False
    return ok


def icmp_echo(addr):
    """One echo request on a ping socket (its reply goes to the socket, the
    kernel's normal path); ping_group_range admits root for the exchange."""
    path = "/proc/sys/net/ipv4/ping_group_range"
    with open(path) as f:
        old = f.read().strip()
    with open(path, "w") as f:
        f.write("0 0")
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        s.settimeout(TIMEOUT)
        # type 8 (echo), code 0, checksum (the kernel fills it), id (the kernel's), seq 1
        s.sendto(b"\x08\x00\x00\x00\x00\x00\x00\x01" + b"pwru", (addr, 0))
        reply, _ = s.recvfrom(64)
        s.close()
    finally:
        with open(path, "w") as f:
            f.write(old.replace("\t", " "))
    good = len(reply) >= 8 and reply[0] == 0  # echo reply
    print("ok icmp" if good else f"bad icmp: got {reply!r}")
    return good


def udp(a_ns, addr, port, size, df):
    enter(a_ns)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if df:
        s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    s.sendto(b"x" * size, (addr, port))
    s.close()
    print("sent udp")
    return True


def main(argv):
    try:
        if len(argv) == 5 and argv[0] == "exchange":
            return 0 if exchange(argv[1], argv[2], argv[3], int(argv[4])) else 1
        if len(argv) in (5, 6) and argv[0] == "udp" and argv[5:] in ([], ["df"]):
            return 0 if udp(argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5:] == ["df"]) else 1
    except ValueError as e:
        sys.exit(f"traffic.py: {e}; see the usage at the top of {__file__}")
    sys.exit(f"traffic.py: bad arguments {argv}; see the usage at the top of {__file__}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
