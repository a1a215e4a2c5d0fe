#!/usr/bin/env bash
# The cluster's images as docker-save tarballs (no registry is reachable; the
# nodes' containerd imports them with `ctr images import`):
#   tests/k8s/images.sh OUT_DIR BUILD_DIR
#   OUT_DIR/pause.tar    the sandbox image: the cri layer's static pause
#   OUT_DIR/busybox.tar  the workloads: Debian's busybox-static (httpd, nc, sh)
#   OUT_DIR/agent.tar    the agent image assembled from the build: pwru,
#                        pwru-agent, kubectl-pwru and the libraries ldd lists
# The agent image has no /var/run -> /run link (unlike Debian's base image),
# so the agent must find pods' netns by the folder the chart mounts, /run/netns.
set -euo pipefail
# shellcheck source=tests/k8s/lib.sh
. "$(dirname "$0")/lib.sh"
out=$1 build=$2
mkdir -p "$out"
work=$(mktemp -d "$out/image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# image NAME TAG ROOTFS ENTRYPOINT_JSON: docker-save layout, one layer.
image() {
  local name=$1 tag=$2 rootfs=$3 entry=$4 d="$work/$1"
  mkdir -p "$d"
  tar -C "$rootfs" --owner=0 --group=0 --numeric-owner -cf "$d/layer.tar" .
  local sha
  sha=$(sha256sum "$d/layer.tar" | cut -c1-64)
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$entry" "$sha" >"$d/config.json"
  printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$tag" >"$d/manifest.json"
  tar -C "$d" -cf "$out/$name.tar" manifest.json config.json layer.tar
}

# pause
mkdir -p "$work/pause-root"
cp "$build/tests/pwru-cri-pause" "$work/pause-root/pause"
image pause "$PAUSE_IMAGE" "$work/pause-root" '["/pause"]'

# busybox: one static binary, its applets as links.
bb="$work/busybox-root"
mkdir -p "$bb/bin" "$bb/tmp" "$bb/www" "$bb/etc"
cp /bin/busybox "$bb/bin/busybox"
for applet in sh httpd nc sleep cat echo wget ls ip ps kill true; do ln -s busybox "$bb/bin/$applet"; done
echo "hello from pwru-k8s" >"$bb/www/index.html"
image busybox "$BUSYBOX_IMAGE" "$bb" '["/bin/sh"]'

# agent: the binaries where the Dockerfile puts them, plus every library.
ag="$work/agent-root"
mkdir -p "$ag/usr/local/bin" "$ag/run/netns" "$ag/tmp" "$ag/etc"
bins=("$build/pwru" "$build/agent/pwru-agent" "$build/kubectl-plugin/kubectl-pwru")
for b in "${bins[@]}"; do strip --strip-debug -o "$ag/usr/local/bin/$(basename "$b")" "$b"; done
ldd "${bins[@]}" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' | sort -u | while read -r lib; do
  mkdir -p "$ag$(dirname "$lib")"
  cp -L "$lib" "$ag$lib"
done
echo 'root:x:0:0:root:/:/bin/false' >"$ag/etc/passwd"
image agent "$AGENT_IMAGE" "$ag" '["/usr/local/bin/pwru-agent"]'
ls -l "$out"/*.tar >&2
