#!/usr/bin/env bash
# Builds the Kubernetes components the k8s test layer runs (kube-apiserver,
# kubelet, kube-controller-manager, kube-scheduler) from Debian's own
# `kubernetes` source package with Debian's Go, once, and caches them:
#   tests/k8s/build-kubernetes.sh            prints the folder of the binaries
#   tests/k8s/build-kubernetes.sh --check    exit 0 when cached, 1 when not
# Exit 77 when the build cannot be had here (not root, no Go, no Debian
# source), 1 when it fails.
# Everything comes from Debian's registry: the source package through a
# private apt sources list that reuses the mirror this machine's apt already
# uses (read at run time; no host name lives in this repository).
# Why this version: bookworm's source package carries the whole v1.20.2 tree
# with vendor/ (the binary package is only kubernetes-client), and bookworm's
# Go 1.19 builds it in GOPATH mode.
set -euo pipefail

VERSION="1.20.5+really1.20.2-1.1+deb12u1"
KUBE_GIT_VERSION="v1.20.2"
CACHE_ROOT="${PWRU_K8S_CACHE:-/var/cache/pwru-k8s}"
OUT="$CACHE_ROOT/kubernetes-$VERSION"
BINARIES=(kube-apiserver kubelet kube-controller-manager kube-scheduler)

cached() {
  local b
  for b in "${BINARIES[@]}"; do [ -x "$OUT/bin/$b" ] || return 1; done
}

if [ "${1:-}" = "--check" ]; then
  cached && exit 0 || exit 1
fi
if cached; then
  echo "$OUT/bin"
  exit 0
fi

fail() { echo "build-kubernetes: $*" >&2; exit 1; }
unavailable() { echo "build-kubernetes: $*" >&2; exit 77; }
[ "$(id -u)" -eq 0 ] || unavailable "needs root (it writes $CACHE_ROOT); run it with sudo"
command -v go >/dev/null || unavailable "no Go; run scripts/install-deps.sh (golang-go)"
command -v rsync >/dev/null || unavailable "no rsync (make generated_files needs it); run scripts/install-deps.sh"

# The mirror of the bookworm suite from the machine's own apt sources, deb822
# (*.sources) or one-line (*.list) format.
mirror_uri() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      /^[[:space:]]*$/ { if (uri != "" && bw && deb) { print uri; exit } uri=""; bw=0; deb=0; next }
      /^URIs:/ { uri=$2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") bw=1 }
      /^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb" || $i == "deb-src") deb=1 }
      END { if (uri != "" && bw && deb) print uri }' "$f" | head -n1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 ~ /^deb/ && $0 !~ /^#/ {
           for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i ~ /:\/\//) { uri=$i; suite=$(i+1); break }
           if (suite == "bookworm") { print uri; exit } }' "$f"
  done
}
MIRROR="$(mirror_uri | head -n1)"
[ -n "$MIRROR" ] || unavailable "no bookworm mirror in /etc/apt/sources*; add Debian's bookworm to apt's sources"

WORK="$CACHE_ROOT/work-$VERSION"
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/archives/partial" "$WORK/src"
started=$(date +%s)

# 1. The source package, through a sources list of our own (the machine's
# apt state is not touched).
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb-src [signed-by=$KEYRING] $MIRROR bookworm main" >"$WORK/apt/sources.list"
APT=(apt-get -q -o Dir::Etc::SourceList="$WORK/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
     -o Dir::State::Lists="$WORK/apt/lists" -o Dir::Cache::Archives="$WORK/apt/archives"
     -o APT::Get::List-Cleanup=0)
if ! ls "$WORK/src"/kubernetes_*.orig.tar.* >/dev/null 2>&1; then
  echo "build-kubernetes: fetching source package kubernetes=$VERSION from $MIRROR" >&2
  "${APT[@]}" update >&2 || unavailable "apt-get update of $MIRROR's bookworm sources failed"
  (cd "$WORK/src" && "${APT[@]}" source --download-only "kubernetes=$VERSION" >&2) ||
    unavailable "the source package kubernetes=$VERSION is not on $MIRROR"
fi
ORIG="$(ls "$WORK/src"/kubernetes_*.orig.tar.* | head -n1)"

# 2. The tree (the orig tarball is the full upstream tree with vendor/).
TREE="$WORK/gopath/src/k8s.io/kubernetes"
if [ ! -f "$TREE/.unpacked" ]; then
  rm -rf "$TREE" && mkdir -p "$TREE"
  tar -xf "$ORIG" -C "$TREE" --strip-components=1
  touch "$TREE/.unpacked"
fi

# 3. Build in GOPATH mode: with modules on (-mod=vendor) Go 1.19 refuses the
# 1.20 go.mod ("updates to go.mod needed").
export GOPATH="$WORK/gopath" GO111MODULE=off GOFLAGS="" GOCACHE="$WORK/gocache"
cd "$TREE"
if [ ! -f pkg/generated/openapi/zz_generated.openapi.go ]; then
  echo "build-kubernetes: make generated_files (kube-apiserver's OpenAPI code)" >&2
  nice -n 10 make generated_files >&2
fi
V=k8s.io/kubernetes/vendor/k8s.io
LDFLAGS="-s -w"
for pkg in "$V/component-base/version" "$V/client-go/pkg/version"; do
  LDFLAGS+=" -X $pkg.gitVersion=$KUBE_GIT_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20"
  LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
mkdir -p "$WORK/bin"
for b in "${BINARIES[@]}"; do
  [ -x "$WORK/bin/$b" ] && continue
  t0=$(date +%s)
  echo "build-kubernetes: go build $b" >&2
  nice -n 10 go build -ldflags "$LDFLAGS" -o "$WORK/bin/$b.tmp" "./cmd/$b" >&2
  mv "$WORK/bin/$b.tmp" "$WORK/bin/$b"
  echo "build-kubernetes: $b built in $(( $(date +%s) - t0 )) s" >&2
done

# 4. Cache the binaries; the tree and Go's cache (several GB) go.
mkdir -p "$OUT"
rm -rf "${OUT:?}/bin" && mv "$WORK/bin" "$OUT/bin"
elapsed=$(( $(date +%s) - started ))
echo "built from Debian source package kubernetes=$VERSION with $(go version) in $elapsed s on $(date -u +%FT%TZ)" >"$OUT/BUILD-INFO"
cd / && rm -rf "$WORK"
echo "build-kubernetes: Kubernetes $KUBE_GIT_VERSION built in $elapsed s, cached in $OUT/bin" >&2
echo "$OUT/bin"
