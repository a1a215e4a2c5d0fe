#!/usr/bin/env bash
# One Kubernetes node: a containerd and a kubelet in the node's network
# namespace, in a mount namespace of the node's own. Started by cluster.sh as
#   unshare -m --propagation private tests/k8s/node.sh NODE KUBE_BIN_DIR
# and stays in the foreground (its mount namespace lives as long as it does);
# cluster.sh's teardown kills what it started.
#
# What the node's mount namespace gives each node, as a real machine has it:
#  - / shared (`mount --make-rshared /`): the kubelet refuses HostToContainer
#    mounts (the chart's /run/netns) on a private root, and pod netns mounts
#    made later must reach the agent's container. A real node's systemd makes
#    / shared; here it is done only inside this private namespace, the host's
#    mounts are untouched.
#  - /run/containerd, /var/log and /var/lib/cni of its own (bind mounts of folders under
#    $K8S_DIR/NODE): the CRI socket at the path the chart mounts on every node,
#    the kubelet's /var/log/pods and /var/log/containers, libcni's cache.
set -euo pipefail
# shellcheck source=tests/k8s/lib.sh
. "$(dirname "$0")/lib.sh"
node=$1 bin=$2
d="$K8S_DIR/$node"
ns=${NODE_NS[$node]}

mount --make-rshared /
mkdir -p "$d/run" "$d/log" "$d/root" "$d/opt" "$d/cni/conf" "$d/cni/ipam" "$d/kubelet" /run/containerd
mount --bind "$d/run" /run/containerd
# The teardown finds this node's processes (containerd's shims leave their
# parent) by this mount namespace, the containers as their descendants.
readlink /proc/self/ns/mnt >"$d/mntns"
mount --bind "$d/log" /var/log
# libcni's cache (/var/lib/cni/results): killed pods never get their CNI DEL,
# so it must not be the host's (k8s-layer.sh up makes the mountpoint).
mkdir -p "$d/cni/cache"
mount --bind "$d/cni/cache" /var/lib/cni

# The CNI bridge: pods get 10.244.N.x and a default route through cni0; the
# other node's pods are reached by the routes between the node namespaces.
# No masquerade: nothing is added to any iptables but the node's own.
cat >"$d/cni/conf/10-bridge.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "pwru-k8s",
 "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "${POD_CIDR[$node]}"}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$d/cni/ipam"}}
 ]}
EOF

# restrict_oom_score_adj: runc cannot lower oom_score_adj without
# CAP_SYS_RESOURCE, which this machine does not grant (see runc-wrapper.sh).
# native snapshotter: overlay on this machine's overlay root does not work.
cri='[plugins."io.containerd.grpc.v1.cri"'
cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "/run/containerd/state"
[grpc]
  address = "/run/containerd/containerd.sock"
[ttrpc]
  address = "/run/containerd/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
$cri]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
$cri.containerd]
  snapshotter = "native"
  default_runtime_name = "runc"
$cri.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
$cri.containerd.runtimes.runc.options]
  BinaryName = "$K8S_HERE/runc-wrapper.sh"
  Root = "/run/containerd/runc"
$cri.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "$d/cni/conf"
  max_conf_num = 1
EOF

# The kubelet as on a node without systemd: cgroupfs, no QoS cgroups (the
# containers' cgroups are containerd's /k8s.io/ID, removed by the teardown),
# no eviction or image GC (the images cannot be pulled again).
cat >"$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
address: ${NODE_IP[$node]}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $K8S_DIR/pki/ca.crt}
authorization: {mode: AlwaysAllow}
serializeImagePulls: false
EOF

nsenter --net=/run/netns/"$ns" -- containerd --config "$d/config.toml" >"$d/containerd.log" 2>&1 &
echo $! >"$d/containerd.pid"
wait_until 30 "containerd of $node" ctr --address /run/containerd/containerd.sock version ||
  { tail -20 "$d/containerd.log" >&2; exit 1; }
for img in pause busybox agent; do
  ctr --address /run/containerd/containerd.sock -n k8s.io images import --snapshotter native \
    "$K8S_DIR/images/$img.tar" >/dev/null
done

nsenter --net=/run/netns/"$ns" -- "$bin/kubelet" \
  --config "$d/kubelet.yaml" --kubeconfig "$K8S_DIR/pki/$node.kubeconfig" \
  --root-dir "$d/kubelet" --cert-dir "$d/kubelet/pki" \
  --container-runtime=remote --container-runtime-endpoint=unix:///run/containerd/containerd.sock \
  --hostname-override "$node" --node-ip "${NODE_IP[$node]}" \
  --pod-infra-container-image "$PAUSE_IMAGE" -v 1 >"$d/kubelet.log" 2>&1 &
echo $! >"$d/kubelet.pid"
touch "$d/started"
wait
