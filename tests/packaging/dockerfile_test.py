#!/usr/bin/python3
"""The Dockerfile, checked without a container engine (ctest label packaging):

- every COPY source from the build context exists and is not excluded by .dockerignore;
- every COPY --from=builder source is made by the builder stage;
- the builder installs scripts/install-deps.sh's build set (which the demo's set
  contains: tests/packaging/install_deps_test.py) and configures / builds with
  `scripts/dev.sh demo`'s cmake commands (tests off; only pwru-agent and kubectl-pwru
  added to its --target), which are `scripts/dev.sh test`'s but for the tests option;
- the copied binaries are where CMake puts them (the built targets' paths);
- scripts/runtime-packages.sh finds a Debian package for every library they load;
- the runtime image's user is not root.
(scripts/build-image-offline.sh builds the image for real with buildah: ctest label image.)

usage: dockerfile_test.py SOURCE_DIR [PWRU PWRU_AGENT KUBECTL_PWRU BUILD_DIR]
"""
import fnmatch
import glob
import os
import re
import shlex
import subprocess
import sys

SRC = sys.argv[1]
BINS = sys.argv[2:5]
BUILD = sys.argv[5] if len(sys.argv) > 5 else ""
from checks import check, finish  # noqa: E402




def instructions(path):
    """(stage, instruction, arguments) with continuations joined and comments dropped."""
    out, stage, buf = [], None, ""
    for line in open(path):
        if line.lstrip().startswith("#") and not buf:
            continue
        line = line.rstrip("\n")
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        line = (buf + line).strip()
        buf = ""
        if not line:
            continue
        ins, _, rest = line.partition(" ")
        ins = ins.upper()
        if ins == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            stage = m.group(2) or "final"
        out.append((stage, ins, rest.strip()))
    return out


ins = instructions(os.path.join(SRC, "Dockerfile"))
ignore = [l.strip() for l in open(os.path.join(SRC, ".dockerignore")) if l.strip() and not l.startswith("#")]


def ignored(rel):
    parts = rel.split("/")
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(parts[0], p) or rel.startswith(p.rstrip("/") + "/")
               for p in ignore)


froms = [rest for _, i, rest in ins if i == "FROM"]
arg_default = dict(re.match(r"(\w+)=(\S+)", rest).groups() for _, i, rest in ins if i == "ARG" and "=" in rest)
check(all(f.split()[0] == "${DEBIAN_IMAGE}" for f in froms) and arg_default.get("DEBIAN_IMAGE", "").startswith("debian:bookworm"),
      f"every stage is Debian bookworm (DEBIAN_IMAGE={arg_default.get('DEBIAN_IMAGE')})")
check(ignored("build/CMakeCache.txt") and ignored(".git/config"), ".dockerignore keeps build/ and .git out of the context")

builder_runs = " && ".join(rest for s, i, rest in ins if s == "builder" and i == "RUN")
for stage, i, rest in ins:
    if i != "COPY":
        continue
    words = shlex.split(rest)
    flags = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    srcs = paths[:-1]
    if any(f.startswith("--from=") for f in flags):
        for s in srcs:
            check(s in builder_runs or os.path.dirname(s) in builder_runs, f"COPY --from=builder {s}: made by the builder's RUN")
        continue
    for s in srcs:
        matches = glob.glob(os.path.join(SRC, s))
        check(bool(matches), f"COPY {s}: exists in the repository")
        if s != ".":
            check(not ignored(os.path.relpath(matches[0], SRC)) if matches else False, f"COPY {s}: not excluded by .dockerignore")

# The builder's commands against scripts/dev.sh's.
dev = open(os.path.join(SRC, "scripts/dev.sh")).read()


def dev_branch(name):
    """The commands of dev.sh's `NAME)` case branch (its last case), one word list each."""
    body = re.findall(r"^  " + name + r"\)\n(.*?)\n    ;;", dev, re.S | re.M)[-1]
    return [shlex.split(l.strip().replace('"$BUILD_DIR"', "build"))
            for l in body.splitlines() if l.strip() and not l.strip().startswith("#")]


def first(cmds, prefix):
    return next((c for c in cmds if c[:len(prefix)] == prefix), [])


demo_cmds, test_cmds = dev_branch("demo"), dev_branch("test")
docker_cmds = [shlex.split(c.strip()) for c in builder_runs.split("&&")]
check(["scripts/install-deps.sh", "demo"] in demo_cmds and ["scripts/install-deps.sh", "test"] in test_cmds
      and ["scripts/install-deps.sh", "build"] in docker_cmds,
      "builder installs with scripts/install-deps.sh build, dev.sh with its demo / test sets")
demo_configure, test_configure = first(demo_cmds, ["cmake", "-S"]), first(test_cmds, ["cmake", "-S"])
demo_build, test_build = first(demo_cmds, ["cmake", "--build"]), first(test_cmds, ["cmake", "--build"])
d_configure, d_build = first(docker_cmds, ["cmake", "-S"]), first(docker_cmds, ["cmake", "--build"])
check(demo_configure[-1:] == ["-DPWRU_BUILD_TESTS=OFF"] and test_configure[-1:] == ["-DPWRU_BUILD_TESTS=ON"]
      and demo_configure[:-1] == test_configure[:-1] and len(demo_configure) > 4,
      f"dev.sh demo and test configure alike but for the tests: {' '.join(demo_configure)} / {' '.join(test_configure)}")
check(d_configure == demo_configure,
      f"configure is dev.sh demo's {' '.join(demo_configure)}: {' '.join(d_configure)}")
check(demo_build[-2:] == ["--target", "pwru"] and test_build == demo_build[:-2] and len(test_build) > 2,
      f"dev.sh demo builds test's {' '.join(test_build)} with --target pwru: {' '.join(demo_build)}")
check(d_build == test_build + ["--target", "pwru", "pwru-agent", "kubectl-pwru"],
      f"build is dev.sh's {' '.join(test_build)} (+ --target of the three binaries): {' '.join(d_build)}")
readme = open(os.path.join(SRC, "README.md")).read()
check("scripts/dev.sh" in readme and "Dockerfile" in readme, "README names scripts/dev.sh and the Dockerfile")

cp = next((c for c in docker_cmds if c[:1] == ["cp"]), [])
if BINS and BUILD:
    rel = sorted(os.path.relpath(b, BUILD) for b in BINS)
    check(sorted(p.removeprefix("build/") for p in cp[1:-1]) == rel, f"the builder copies CMake's binaries {rel}: {cp[1:-1]}")
    p = subprocess.run([os.path.join(SRC, "scripts/runtime-packages.sh"), *BINS], capture_output=True, text=True)
    pkgs = p.stdout.split()
    check(p.returncode == 0 and {"libbpf1", "libgrpc++1.51", "libyaml-cpp0.7"} <= set(pkgs),
          f"scripts/runtime-packages.sh names the binaries' library packages: {' '.join(pkgs)} {p.stderr.strip()}")

users = [rest for s, i, rest in ins if s == "final" and i == "USER"]
check(users and users[-1].split(":")[0] not in ("0", "root"), f"the image's user is not root: {users}")
entry = [rest for s, i, rest in ins if s == "final" and i == "COPY" and "/usr/local/bin" in rest]
check(entry and all(b in entry[0] for b in ("/out/pwru ", "/out/pwru-agent", "/out/kubectl-pwru")),
      "the image has pwru, pwru-agent, kubectl-pwru in /usr/local/bin (the chart runs /usr/local/bin/pwru-agent)")

finish()
