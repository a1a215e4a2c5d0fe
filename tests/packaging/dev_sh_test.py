#!/usr/bin/python3
"""The README's two commands, `scripts/dev.sh demo|test`, as a user who is not root
(ctest label packaging; as root the test drops to nobody with setpriv):

- with sudo on PATH, dev.sh runs itself again through sudo with the same arguments
  and its BUILD_DIR, before it installs or builds anything (a stub sudo records it);
- without sudo, one line saying to run it from a root shell, exit 1;
- a wrong command is the usage, exit 2, whoever runs it.
(That a root shell runs them directly is what .ci/run and every other layer show.)

usage: dev_sh_test.py SOURCE_DIR
"""
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.path.realpath(sys.argv[1])
from checks import check, finish  # noqa: E402

DEV = os.path.join(SRC, "scripts/dev.sh")


def as_user():
    """The command prefix that runs as a user who is not root, or None."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def run(args, bindir, extra_env=None):
    env = {"PATH": bindir, "HOME": "/nonexistent"}
    env.update(extra_env or {})
    return subprocess.run(prefix + [DEV, *args], capture_output=True, text=True, env=env, cwd="/", timeout=60)


prefix = as_user()
if prefix is None:
    print("SKIPPED: running as root without setpriv: cannot run dev.sh as another user")
    sys.exit(0)

with tempfile.TemporaryDirectory() as tmp:
    os.chmod(tmp, 0o777)
    # Only what dev.sh runs before it decides about root, so no real sudo is found.
    bindir = os.path.join(tmp, "bin")
    os.mkdir(bindir)
    for tool in ("bash", "env", "dirname", "id"):
        os.symlink(shutil.which(tool), os.path.join(bindir, tool))
    os.chmod(bindir, 0o755)

    p = run(["demo"], bindir)
    lines = p.stderr.strip().splitlines()
    check(p.returncode == 1 and len(lines) == 1 and "root shell" in lines[0] and not p.stdout,
          f"not root, no sudo: one line, exit 1 (exit {p.returncode}): {p.stderr.strip()} {p.stdout.strip()}")

    record = os.path.join(tmp, "sudo-args")
    stub = os.path.join(bindir, "sudo")
    with open(stub, "w") as f:
        # Records its arguments, one a line; installs, builds and runs nothing.
        f.write(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\nexit 7\n")
    os.chmod(stub, 0o755)
    for args in (["demo"], ["test", "-L", "unit"]):
        if os.path.exists(record):
            os.remove(record)
        p = run(args, bindir, {"BUILD_DIR": "build-x"})
        got = open(record).read().splitlines() if os.path.exists(record) else []
        want = ["--", "env", "BUILD_DIR=build-x", DEV, *args]
        check(p.returncode == 7 and got == want,
              f"not root, sudo on PATH: dev.sh {' '.join(args)} is sudo {' '.join(want)} (exit {p.returncode}): {got} {p.stderr.strip()}")
        check("sudo" in p.stderr and "cmake" not in p.stdout + p.stderr, f"  ... and says so, nothing built: {p.stderr.strip()}")

for who, pre in (("a user", prefix), ("root", [])):
    p = subprocess.run(pre + [DEV, "nope"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 2 and "usage" in p.stderr and len(p.stderr.strip().splitlines()) == 1,
          f"dev.sh nope as {who}: the usage, exit 2 (exit {p.returncode}): {p.stderr.strip()}")
finish()
