#!/usr/bin/env bash
# Builds the Dockerfile's image with buildah where no container registry is
# reachable (this project's CI machine): the Debian bookworm base image is made
# with debootstrap from the machine's own apt mirror (read from its apt
# sources, never written into the repository), cached, and passed to the
# Dockerfile as DEBIAN_IMAGE. Then checks the image: the three binaries run
# and find their libraries, and the default user is not root.
#   scripts/build-image-offline.sh [TAG]        (default localhost/pwru-k8s:dev)
# Env: PWRU_IMAGE_CACHE (default /var/cache/pwru-image: the base rootfs),
#      BUILDAH_ARGS (extra `buildah bud` arguments).
# Needs root, buildah and debootstrap (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/pwru-k8s:dev}
cache=${PWRU_IMAGE_CACHE:-/var/cache/pwru-image}
base=localhost/pwru-debian-bookworm:base
export STORAGE_DRIVER=vfs   # works in containers and sandboxes without overlayfs
bah() { buildah --storage-driver vfs "$@"; }

for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { echo "build-image-offline: $tool is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "build-image-offline: needs root (debootstrap, buildah)" >&2; exit 1; }

# The machine's Debian mirror, as its apt is configured (deb822 or one-line form).
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ { print $2 }' | grep -m1 '/debian/*$' || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { echo "build-image-offline: no Debian bookworm mirror in /etc/apt/sources.list*" >&2; exit 1; }

if ! bah inspect --type image "$base" >/dev/null 2>&1; then
  if [ ! -f "$cache/rootfs.tar" ]; then
    echo "build-image-offline: debootstrap bookworm (minbase) into $cache"
    mkdir -p "$cache"
    rm -rf "$cache/rootfs"
    debootstrap --variant=minbase bookworm "$cache/rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
    rm -rf "$cache/rootfs/var/cache/apt/archives/"*.deb "$cache/rootfs/var/lib/apt/lists/"*
    tar -C "$cache/rootfs" -cf "$cache/rootfs.tar.tmp" . && mv "$cache/rootfs.tar.tmp" "$cache/rootfs.tar"
    rm -rf "$cache/rootfs"
  fi
  echo "build-image-offline: importing the base image $base"
  ctr=$(bah from scratch)
  trap 'bah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  bah add "$ctr" "$cache/rootfs.tar" /
  bah config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  bah commit -q "$ctr" "$base" >/dev/null
  bah rm "$ctr" >/dev/null
  trap - EXIT
fi

echo "build-image-offline: buildah bud -t $tag (DEBIAN_IMAGE=$base)"
start=$(date +%s)
# shellcheck disable=SC2086
bah bud --isolation chroot --layers --build-arg DEBIAN_IMAGE="$base" ${BUILDAH_ARGS:-} -t "$tag" .
echo "build-image-offline: built in $(( $(date +%s) - start )) s"

# The image works: every binary finds its libraries and runs; the user is not root.
ctr=$(bah from "$tag")
trap 'bah rm "$ctr" >/dev/null 2>&1 || true' EXIT
fail=0
for bin in pwru pwru-agent kubectl-pwru; do
  if bah run --isolation chroot "$ctr" -- ldd "/usr/local/bin/$bin" | grep -q "not found"; then
    echo "FAIL $bin: a library is missing in the image"; fail=1
  fi
done
bah run --isolation chroot "$ctr" -- pwru --version || { echo "FAIL pwru --version"; fail=1; }
bah run --isolation chroot "$ctr" -- kubectl-pwru --version || { echo "FAIL kubectl-pwru --version"; fail=1; }
bah run --isolation chroot "$ctr" -- pwru-agent --help | grep -q -- --health-listen || { echo "FAIL pwru-agent --help"; fail=1; }
user=$(bah inspect --type image --format '{{.OCIv1.Config.User}}' "$tag")
[ "$user" = "65532:65532" ] || { echo "FAIL image user is '$user', not 65532:65532"; fail=1; }
[ $fail -eq 0 ] && echo "build-image-offline: $tag works (user $user)"
exit $fail
