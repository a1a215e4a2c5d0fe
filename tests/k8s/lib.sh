# Shared by the k8s layer's scripts (sourced): where the cluster lives, how to
# run a command inside it, small helpers. See tests/k8s/README.md.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the globals are for the scripts that source this file

K8S_DIR=${PWRU_K8S_DIR:-/tmp/pwru-k8s}   # one cluster at a time (the layers' lock)
K8S_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_SRC=$(cd "$K8S_HERE/../.." && pwd)

# Network: a control-plane namespace routes between the two node namespaces.
#   pwk8s-cp  lo 10.250.0.10 (API server), pwk8s-a0 10.250.1.1, pwk8s-b0 10.250.2.1
#   pwk8s-a   eth0 10.250.1.2 (node-a), pods 10.244.1.0/24 on bridge cni0
#   pwk8s-b   eth0 10.250.2.2 (node-b), pods 10.244.2.0/24 on bridge cni0
NS_CP=pwk8s-cp
API_IP=10.250.0.10
API_URL=https://$API_IP:6443
NODES=(node-a node-b)
declare -A NODE_NS=([node-a]=pwk8s-a [node-b]=pwk8s-b)
declare -A NODE_IP=([node-a]=10.250.1.2 [node-b]=10.250.2.2)
declare -A NODE_GW=([node-a]=10.250.1.1 [node-b]=10.250.2.1)
declare -A NODE_CP_IF=([node-a]=pwk8s-a0 [node-b]=pwk8s-b0)
declare -A POD_CIDR=([node-a]=10.244.1.0/24 [node-b]=10.244.2.0/24)

PAUSE_IMAGE=pwru.local/pause:test
BUSYBOX_IMAGE=pwru.local/busybox:test
# The name manifests/pwru.yaml (the chart's defaults) uses, so that
# manifests/install.sh runs unchanged.
AGENT_IMAGE=pwru-k8s:0.1.0

k8s_log() { printf 'k8s: %s\n' "$*" >&2; }
k8s_die() { printf 'k8s: error: %s\n' "$*" >&2; exit 1; }

# The holder process keeps the cluster's private mount namespace alive;
# every other step of the layer runs inside it (see k8s-layer.sh).
holder_pid() { cat "$K8S_DIR/holder.pid" 2>/dev/null; }

# Runs a command in the control plane's netns without a new mount namespace
# (`ip netns exec` would remount /sys).
in_cp() { nsenter --net=/run/netns/$NS_CP -- "$@"; }
in_node() { local n=$1; shift; nsenter --net=/run/netns/"${NODE_NS[$n]}" -- "$@"; }

# kubectl as the cluster's admin (the machine's own kubectl, any version).
kc() { in_cp kubectl --kubeconfig "$K8S_DIR/pki/admin.kubeconfig" "$@"; }

# wait_until SECONDS DESCRIPTION CMD...: polls CMD every second.
wait_until() {
  local timeout=$1 what=$2 i
  shift 2
  for ((i = 0; i < timeout; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  k8s_log "timed out after ${timeout}s waiting for $what"
  return 1
}
