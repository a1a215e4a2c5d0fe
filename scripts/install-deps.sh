#!/usr/bin/env bash
# Installs what building, the demo and testing pwru-k8s need on Debian bookworm,
# and only what is missing (apt is not touched when everything is there).
#   scripts/install-deps.sh [test]  everything: build, the demo, every test layer
#                                   (also tools/k8s-validate's npm packages)
#   scripts/install-deps.sh demo    the build set and what e2e/demo.sh runs
#                                   (scripts/dev.sh demo)
#   scripts/install-deps.sh build   only what building pwru, pwru-agent and
#                                   kubectl-pwru needs (the Dockerfile's builder)
#   scripts/install-deps.sh --print [SET]   print what SET needs, install nothing:
#                                   `apt: PACKAGE` lines, `npm: DIR` for npm ci
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

# What e2e/demo.sh runs beyond bash and coreutils (its e2e_require_root checks
# them): ip (namespaces, veth) and iptables (the DROP). Nothing test-only here:
# tests/packaging/install_deps_test.py fails when a test package moves in.
DEMO_PACKAGES=(
  iproute2 iptables
)

# The test layers; also needs DEMO_PACKAGES (the netns tests: namespaces, veth, iptables).
TEST_PACKAGES=(
  # the test binaries (the demo builds with -DPWRU_BUILD_TESTS=OFF)
  catch2
  # the vm test layer
  # (qemu under software emulation, a static busybox and cpio for the initramfs,
  # kmod's modinfo for module dependencies, xz for the guest kernel's .ko.xz;
  # the guest kernel itself is fetched and cached by tests/vm/run-in-vm.sh)
  qemu-system-x86 busybox-static cpio kmod xz-utils
  # the vm layer's clone case opens a packet socket from python3
  python3
  # the cri test layer (a private containerd, runc, the CNI bridge plugins)
  containerd runc containernetworking-plugins
  # the fuzz layer: afl-fuzz, its runtime and its libFuzzer driver
  afl++
  # the format check (tests/format_check.sh: the tree follows .clang-format)
  clang-format-14
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

print_only=false
if [ "${1:-}" = --print ]; then print_only=true; shift; fi
set_name=${1:-test}
case "$set_name" in
  build) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
  demo) PACKAGES=("${BUILD_PACKAGES[@]}" "${DEMO_PACKAGES[@]}") ;;
  test) PACKAGES=("${BUILD_PACKAGES[@]}" "${DEMO_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  *) echo "install-deps: unknown set '$set_name'; usage: $0 [--print] [build|demo|test]" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "install-deps: one set at most; usage: $0 [--print] [build|demo|test]" >&2; exit 2; }
if [ "$set_name" = test ]; then
  # The packaging layer validates manifests with Node.js (tools/k8s-validate).
  # Any node >= 14 and npm will do; Debian's when there is none.
  if ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
  fi
  # tests/cri/kind_trace_test.cc runs e2e/kind-trace.sh, which runs kubectl: any
  # kubectl on PATH does (Debian's kubernetes-client when there is none).
  command -v kubectl >/dev/null || PACKAGES+=(kubernetes-client)
fi
# Once each (a package several layers need is listed with each of them).
declare -A listed=()
unique=()
for p in "${PACKAGES[@]}"; do
  [ -n "${listed[$p]:-}" ] || unique+=("$p")
  listed[$p]=1
done
PACKAGES=("${unique[@]}")
K8S_VALIDATE=tools/k8s-validate

if $print_only; then
  printf 'apt: %s\n' "${PACKAGES[@]}"
  [ "$set_name" != test ] || echo "npm: $K8S_VALIDATE"
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# tools/k8s-validate's npm packages, as pinned by its package-lock.json (tests only).
npm_deps() {
  local dir
  [ "$set_name" = test ] || return 0
  dir="$(dirname "$0")/../$K8S_VALIDATE"
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
