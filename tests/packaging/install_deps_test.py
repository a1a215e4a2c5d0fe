#!/usr/bin/python3
"""What scripts/install-deps.sh installs for each of its sets, read from its
`--print` (ctest label packaging):

- build is inside demo, demo inside test;
- demo adds to build exactly the packages of the tools e2e/demo.sh checks for
  (e2e/lib.sh's e2e_require_root, minus Essential ones like coreutils), and neither
  build nor demo has a test-only package (qemu, containerd, Go, buildah, ...);
- only test runs npm ci or adds nodejs/npm/kubernetes-client (shown with a PATH
  where neither npm nor kubectl is found).

usage: install_deps_test.py SOURCE_DIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

SRC = sys.argv[1]
from checks import check, finish  # noqa: E402

SCRIPT = os.path.join(SRC, "scripts/install-deps.sh")
# Packages no demo needs: the test layers' tools. A regression moves one of
# these into the build or demo set.
TEST_ONLY = {"catch2", "qemu-system-x86", "busybox-static", "cpio", "containerd", "runc",
             "containernetworking-plugins", "bpftrace", "tcpdump", "iperf3", "jq", "golang-go",
             "golang-github-masterminds-sprig-dev", "buildah", "debootstrap", "shellcheck",
             "python3-yaml", "nodejs", "npm", "kubernetes-client"}


def printed(set_name):
    """(apt packages, npm dirs) of `install-deps.sh --print SET`, run with an empty PATH:
    no npm, no kubectl, so every conditional package shows."""
    with tempfile.TemporaryDirectory() as empty:
        p = subprocess.run(["/bin/bash", SCRIPT, "--print", set_name], capture_output=True, text=True,
                           env={"PATH": empty})
    check(p.returncode == 0 and p.stdout, f"install-deps.sh --print {set_name} runs {p.stderr.strip()}")
    lines = p.stdout.splitlines()
    bad = [l for l in lines if not re.fullmatch(r"(apt|npm): \S+", l)]
    check(not bad, f"--print {set_name}: only `apt: PKG` / `npm: DIR` lines {bad}")
    apt = [l[5:] for l in lines if l.startswith("apt: ")]
    check(len(apt) == len(set(apt)), f"--print {set_name}: no package twice")
    return set(apt), [l[5:] for l in lines if l.startswith("npm: ")]


build, build_npm = printed("build")
demo, demo_npm = printed("demo")
test, test_npm = printed("test")
default, default_npm = printed("")
check((default, default_npm) == (test, test_npm), "no set given is the test set (.ci/run, dev.sh test)")
check(build < demo < test, f"build < demo < test ({len(build)}, {len(demo)}, {len(test)} packages)")
check(not build_npm and not demo_npm, f"only test runs npm ci: build {build_npm}, demo {demo_npm}")
check(test_npm == ["tools/k8s-validate"] and os.path.isfile(os.path.join(SRC, test_npm[0], "package-lock.json")),
      f"test runs npm ci in tools/k8s-validate (its package-lock.json): {test_npm}")
check({"nodejs", "npm", "kubernetes-client"} <= test, "without npm / kubectl on PATH, test installs them")
check(not (build | demo) & TEST_ONLY, f"no test-only package in build or demo: {sorted((build | demo) & TEST_ONLY)}")
check(TEST_ONLY <= test, f"the test set has every test-only package: missing {sorted(TEST_ONLY - test)}")

# The demo's own tools, from the check e2e/demo.sh runs first.
lib = open(os.path.join(SRC, "e2e/lib.sh")).read()
m = re.search(r"e2e_require_root\(\) \{.*?for tool in ([\w -]+); do", lib, re.S)
tools = m.group(1).split() if m else []
check({"ip", "iptables"} <= set(tools), f"e2e_require_root checks the demo's tools: {tools}")
if shutil.which("dpkg-query"):
    want = set()
    for t in tools:
        path = shutil.which(t) or shutil.which(t, path="/usr/sbin:/sbin")
        if not check(path is not None, f"{t} is installed here (its package is looked up)"):
            continue
        # dpkg -S knows the path the package shipped: /usr/sbin/ip or /sbin/ip (merged /usr).
        real = os.path.realpath(path)
        owners = set()
        for cand in {path, real, real.replace("/usr/", "/", 1), "/usr" + real if not real.startswith("/usr/") else real}:
            p = subprocess.run(["dpkg-query", "-S", cand], capture_output=True, text=True)
            if p.returncode == 0:
                owners |= {o.strip() for o in p.stdout.split(":")[0].split(",")}
        check(len(owners) == 1, f"{t} ({path}) belongs to one package: {sorted(owners)}")
        for o in owners:
            ess = subprocess.run(["dpkg-query", "-W", "-f=${Essential}", o], capture_output=True, text=True).stdout
            if ess.strip() != "yes":
                want.add(o)
    check(demo - build == want,
          f"demo adds to build exactly its tools' packages {sorted(want)}: {sorted(demo - build)}")
else:
    check(demo - build == {"iproute2", "iptables"}, f"demo adds iproute2 and iptables to build: {sorted(demo - build)}")

p = subprocess.run(["/bin/bash", SCRIPT, "--print", "nope"], capture_output=True, text=True)
check(p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "usage" in p.stderr,
      f"an unknown set is one line with the usage: {p.stderr.strip()}")
finish()
