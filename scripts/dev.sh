#!/usr/bin/env bash
# The two entry points of the README (as root; a user with sudo is re-run through it):
#   scripts/dev.sh demo   install what the build and the demo need, build pwru,
#                         run the built-in demo (e2e/demo.sh)
#   scripts/dev.sh test   install what is missing of everything, build everything,
#                         run every test layer
# Extra arguments after `test` go to ctest (e.g. `-L unit`).
# What each installs: scripts/install-deps.sh --print demo|test.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

case "${1:-}" in
  demo|test) ;;
  *)
    echo "usage: $0 demo|test [ctest args]" >&2
    exit 2
    ;;
esac

# Installing packages, BPF and network namespaces need root.
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    echo "dev.sh: not root; running it again through sudo" >&2
    # sudo drops the environment: pass on this script's own knobs.
    exec sudo -- env ${BUILD_DIR:+BUILD_DIR="$BUILD_DIR"} ${CCACHE_DIR:+CCACHE_DIR="$CCACHE_DIR"} \
      "$PWD/scripts/dev.sh" "$@"
  fi
  echo "dev.sh: needs root (apt, BPF, network namespaces) and sudo is not installed: run it from a root shell" >&2
  exit 1
fi

# ccache (found by CMakeLists.txt): one cache for every clone and build folder
# of this machine, keyed on paths relative to the checkout.
ccache_env() {
  export CCACHE_DIR=${CCACHE_DIR:-/var/cache/pwru-ccache}
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
}

case "$1" in
  demo)
    # The demo runs pwru alone: no test packages, no test binaries, one target.
    # (The Dockerfile's builder: the same configure, its three binaries as targets.)
    scripts/install-deps.sh demo
    ccache_env
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPWRU_BUILD_TESTS=OFF
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target pwru
    e2e/demo.sh "$BUILD_DIR/pwru"
    ;;
  test)
    shift
    scripts/install-deps.sh test
    ccache_env
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPWRU_BUILD_TESTS=ON
    cmake --build "$BUILD_DIR" -j"$(nproc)"
    # Layers run one after another: the netns tests make real traffic and
    # must not see another layer's packets.
    ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
    ;;
esac
