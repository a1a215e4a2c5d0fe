#!/usr/bin/env bash
# Prints the Debian packages holding the shared libraries the given binaries
# load, one per line: what the Dockerfile's runtime stage installs.
#   scripts/runtime-packages.sh build/pwru build/agent/pwru-agent ...
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
ldd "$@" | awk '/=> \// { print $3 }' | sort -u | while read -r lib; do
  # /lib is /usr/lib on merged-/usr systems: dpkg knows one of the two names.
  pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")" 2>/dev/null || true)
  if [ -z "$pkg" ]; then
    echo "runtime-packages: no Debian package holds $lib; install it from a package, not by hand" >&2
    exit 1
  fi
  echo "${pkg%%:*}"
done | sort -u
