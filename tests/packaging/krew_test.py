#!/usr/bin/python3
"""krew/pwru.yaml (ctest label packaging): krew's Plugin format
(krew.googlecontainertools.github.com/v1alpha2: metadata.name, spec.version,
homepage, shortDescription, platforms[] with selector, uri, sha256, bin), the
version equal to CMake's project version, and krew/release.sh filling version,
uri and sha256 from archives (run here on archives made from a stand-in binary).

usage: krew_test.py SOURCE_DIR [KUBECTL_PWRU]
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

import yaml

SRC = sys.argv[1]
BIN = sys.argv[2] if len(sys.argv) > 2 else ""
from checks import check, finish  # noqa: E402




def structure(m, version):
    check(m.get("apiVersion") == "krew.googlecontainertools.github.com/v1alpha2" and m.get("kind") == "Plugin",
          "apiVersion/kind: krew v1alpha2 Plugin")
    check(m["metadata"]["name"] == "pwru", "metadata.name pwru (installed as kubectl-pwru, run as kubectl pwru)")
    s = m["spec"]
    check(s.get("version") == version, f"spec.version {s.get('version')} == {version}")
    check(str(s.get("homepage", "")).startswith("https://"), "spec.homepage is an https URL")
    check(0 < len(s.get("shortDescription", "")) <= 80 and "\n" not in s["shortDescription"], "shortDescription: one short line")
    archs = set()
    for p in s["platforms"]:
        labels = p["selector"]["matchLabels"]
        archs.add((labels.get("os"), labels.get("arch")))
        check(re.fullmatch(r"[0-9a-f]{64}", str(p["sha256"])) is not None, f"{labels}: sha256 is 64 hex digits")
        check(p["uri"].startswith("https://") and p["uri"].endswith(f"/{version}/kubectl-pwru_{version}_linux_{labels['arch']}.tar.gz"),
              f"{labels}: uri names this version's archive: {p['uri']}")
        check(p["bin"] == "kubectl-pwru" and any(f["from"] == "kubectl-pwru" for f in p.get("files", [])),
              f"{labels}: bin kubectl-pwru, taken from the archive")
    check(archs == {("linux", "amd64"), ("linux", "arm64")}, f"platforms linux/amd64 and linux/arm64: {sorted(archs)}")


cmake = re.search(r"project\(pwru-k8s VERSION ([0-9.]+)", open(os.path.join(SRC, "CMakeLists.txt")).read()).group(1)
manifest = os.path.join(SRC, "krew/pwru.yaml")
structure(yaml.safe_load(open(manifest)), "v" + cmake)

with tempfile.TemporaryDirectory() as tmp:
    copy = os.path.join(tmp, "pwru.yaml")
    shutil.copy(manifest, copy)
    binary = os.path.join(tmp, "kubectl-pwru")
    if BIN:
        shutil.copy(BIN, binary)
    else:
        open(binary, "w").write("#!/bin/sh\n")
    sums = {}
    for arch in ("amd64", "arm64"):
        path = os.path.join(tmp, f"kubectl-pwru_v9.8.7_linux_{arch}.tar.gz")
        with tarfile.open(path, "w:gz") as t:
            t.add(binary, arcname="kubectl-pwru")
        sums[arch] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    p = subprocess.run([os.path.join(SRC, "krew/release.sh"), "--repo", "example/pwru-k8s", "--manifest", copy, "v9.8.7",
                        *[os.path.join(tmp, f"kubectl-pwru_v9.8.7_linux_{a}.tar.gz") for a in ("amd64", "arm64")]],
                       capture_output=True, text=True)
    check(p.returncode == 0, f"krew/release.sh runs: {p.stderr.strip()}")
    filled = yaml.safe_load(open(copy))
    structure(filled, "v9.8.7")
    got = {pl["selector"]["matchLabels"]["arch"]: pl for pl in filled["spec"]["platforms"]}
    check(all(got[a]["sha256"] == sums[a] for a in sums), "release.sh: each platform gets its archive's sha256")
    check(got["amd64"]["uri"] == "https://github.com/example/pwru-k8s/releases/download/v9.8.7/kubectl-pwru_v9.8.7_linux_amd64.tar.gz",
          f"release.sh: uri on the release's repository: {got['amd64']['uri']}")
    bad = subprocess.run([os.path.join(SRC, "krew/release.sh"), "--manifest", copy, "9.8", binary], capture_output=True, text=True)
    check(bad.returncode == 2 and "not vX.Y.Z" in bad.stderr, f"release.sh refuses a bad version: {bad.stderr.strip()}")

finish()
