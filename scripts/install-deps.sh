#!/usr/bin/env bash
# Installs what building and testing pwru-k8s needs on Debian bookworm, and
# only what is missing (apt is not touched when everything is there).
#   scripts/install-deps.sh         everything (build and every test layer)
#   scripts/install-deps.sh build   only what building pwru, pwru-agent and
#                                   kubectl-pwru needs (the Dockerfile's builder)
set -euo pipefail

BUILD_PACKAGES=(
  # build
  build-essential cmake pkg-config clang llvm
  # a second build of the same sources is a cache read (CMakeLists.txt, dev.sh)
  ccache
  # libraries
  libbpf-dev libelf-dev zlib1g-dev libpcap-dev libre2-dev
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  # BPF skeletons
  bpftool
  # the agent: CRI client (gRPC C++ and protoc with its gRPC plugin)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  # the agent: HTTPS with mTLS (cpp-httplib built with OpenSSL)
  libcpp-httplib-dev libssl-dev
  # kubectl-pwru: kubeconfig (yaml-cpp), the API and agent connections (Boost.Beast)
  libyaml-cpp-dev libboost-dev libboost-system-dev
)

TEST_PACKAGES=(
  catch2
  # the demo and the netns tests: namespaces, veth, iptables
  iproute2 iptables
  # the vm test layer
  # (qemu under software emulation, a static busybox and cpio for the initramfs,
  # kmod's modinfo for module dependencies, xz for the guest kernel's .ko.xz;
  # the guest kernel itself is fetched and cached by tests/vm/run-in-vm.sh)
  qemu-system-x86 busybox-static cpio kmod xz-utils
  # the vm layer's clone case opens a packet socket from python3
  python3
  # the cri test layer (a private containerd, runc, the CNI bridge plugins)
  containerd runc containernetworking-plugins
  # bench/run.sh: the peers (bpftrace, tcpdump), traffic (iperf3), certificates
  # and the agent's stream (openssl, curl), reading JSON (jq)
  bpftrace tcpdump iperf3 openssl curl jq
  # the packaging layer: chart-render (Go, sprig and YAML/JSON-schema libraries
  # as Debian packages, built offline), openssl for the chart's certificates,
  # PyYAML for the chart test, shellcheck for the scripts
  golang-go golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev
  golang-gopkg-yaml.v2-dev golang-github-xeipuuv-gojsonschema-dev
  openssl python3-yaml shellcheck
  # the image layer: the Dockerfile built with buildah on a debootstrap'd base
  buildah debootstrap
  # the k8s layer: etcd for the API server; rsync for Kubernetes' `make
  # generated_files` (tests/k8s/build-kubernetes.sh builds it from Debian's
  # source package with golang-go); util-linux's unshare/nsenter are essential
  etcd-server rsync
)

only_build=false
case "${1:-}" in
  build) only_build=true ;;
  "") ;;
  *) echo "usage: $0 [build]" >&2; exit 2 ;;
esac

PACKAGES=("${BUILD_PACKAGES[@]}")
if ! $only_build; then
  PACKAGES+=("${TEST_PACKAGES[@]}")
  # The packaging layer validates manifests with Node.js (tools/k8s-validate).
  # Any node >= 14 and npm will do; Debian's when there is none.
  if ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
  fi
  # tests/cri/kind_trace_test.cc runs e2e/kind-trace.sh, which runs kubectl: any
  # kubectl on PATH does (Debian's kubernetes-client when there is none).
  command -v kubectl >/dev/null || PACKAGES+=(kubernetes-client)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# tools/k8s-validate's npm packages, as pinned by its package-lock.json.
npm_deps() {
  local dir
  if $only_build; then return 0; fi
  dir="$(dirname "$0")/../tools/k8s-validate"
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "install-deps: npm ci in tools/k8s-validate"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  npm_deps
  echo "install-deps: everything is installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root (sudo $0)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
npm_deps
