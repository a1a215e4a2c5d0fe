#!/usr/bin/env bash
# Installs what building and testing pwru-k8s needs on Debian bookworm, and
# only what is missing (apt is not touched when everything is there).
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config clang llvm
  # libraries
  libbpf-dev libelf-dev zlib1g-dev libpcap-dev libre2-dev
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev catch2
  # BPF skeletons
  bpftool
  # the demo and the netns tests: namespaces, veth, iptables
  iproute2 iptables
  # the vm test layer
  # (qemu under software emulation, a static busybox and cpio for the initramfs,
  # kmod's modinfo for module dependencies, xz for the guest kernel's .ko.xz;
  # the guest kernel itself is fetched and cached by tests/vm/run-in-vm.sh)
  qemu-system-x86 busybox-static cpio kmod xz-utils
  # the agent: CRI client (gRPC C++ and protoc with its gRPC plugin)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  # the agent: HTTPS with mTLS (cpp-httplib built with OpenSSL)
  libcpp-httplib-dev libssl-dev
  # kubectl-pwru: kubeconfig (yaml-cpp), the API and agent connections (Boost.Beast)
  libyaml-cpp-dev libboost-dev libboost-system-dev
  # the vm layer's clone case opens a packet socket from python3
  python3
  # the cri test layer (a private containerd, runc, the CNI bridge plugins)
  containerd runc containernetworking-plugins
  # bench/run.sh: the peers (bpftrace, tcpdump), traffic (iperf3), certificates
  # and the agent's stream (openssl, curl), reading JSON (jq)
  bpftrace tcpdump iperf3 openssl curl jq
)

# tests/cri/kind_trace_test.cc runs e2e/kind-trace.sh, which runs kubectl: any
# kubectl on PATH does (Debian's kubernetes-client when there is none).
command -v kubectl >/dev/null || PACKAGES+=(kubernetes-client)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
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
