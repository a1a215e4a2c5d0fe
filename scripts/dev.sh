#!/usr/bin/env bash
# The two entry points of the README:
#   scripts/dev.sh demo   install what is missing, build, run the built-in demo
#   scripts/dev.sh test   install what is missing, build, run every test layer
# Extra arguments after `test` go to ctest (e.g. `-L unit`).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

build() {
  scripts/install-deps.sh
  # ccache (found by CMakeLists.txt): one cache for every clone and build folder
  # of this machine, keyed on paths relative to the checkout.
  export CCACHE_DIR=${CCACHE_DIR:-/var/cache/pwru-ccache}
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build "$BUILD_DIR" -j"$(nproc)"
}

case "${1:-}" in
  demo)
    build
    e2e/demo.sh "$BUILD_DIR/pwru"
    ;;
  test)
    shift
    build
    # Layers run one after another: the netns tests make real traffic and
    # must not see another layer's packets.
    ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
    ;;
  *)
    echo "usage: $0 demo|test [ctest args]" >&2
    exit 2
    ;;
esac
