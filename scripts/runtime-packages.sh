#!/usr/bin/env bash
# Prints the Debian packages holding the shared libraries the given binaries
# load, one per line: what the Dockerfile's runtime stage installs.
#   scripts/runtime-packages.sh build/pwru build/agent/pwru-agent ...
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
mapfile -t libs < <(ldd "$@" | awk '/=> \// { print $3 }' | sort -u)
[ ${#libs[@]} -gt 0 ] || { echo "runtime-packages: ldd found no shared libraries in $*" >&2; exit 1; }
# /lib is /usr/lib on merged-/usr systems: dpkg knows one of the two names.
paths=()
for lib in "${libs[@]}"; do paths+=("$lib" "$(realpath "$lib")"); done
owners=$(dpkg -S "${paths[@]}" 2>/dev/null || true)   # "pkg:arch: /path" for the names it knows
for lib in "${libs[@]}"; do
  if ! awk -F': ' -v a="$lib" -v b="$(realpath "$lib")" '$2 == a || $2 == b { found = 1 } END { exit !found }' <<<"$owners"; then
    echo "runtime-packages: no Debian package holds $lib; install it from a package, not by hand" >&2
    exit 1
  fi
done
sed -E 's/: .*//; s/:[a-z0-9]+$//' <<<"$owners" | tr ',' '\n' | sed 's/^ *//' | sort -u
