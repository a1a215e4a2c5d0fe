#!/usr/bin/env bash
# The k8s layer's cluster, run by k8s-layer.sh:
#   cluster.sh holder KUBE_BIN_DIR BUILD_DIR   (under unshare -m: brings the cluster up,
#                                               then keeps its mount namespace alive)
#   cluster.sh teardown                        (from the host: stops everything)
#
# The holder's mount namespace is private (nothing mounted here reaches the
# host): a tmpfs on /run holds the netns files (ip netns, CNI's cni-*), the
# nodes' CRI sockets and iptables' lock; they vanish with the namespace.
# Control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)
# in netns pwk8s-cp; each node (node.sh) in its own netns and mount namespace.
set -euo pipefail
# shellcheck source=tests/k8s/lib.sh
. "$(dirname "$0")/lib.sh"

start_bg() {  # start_bg NAME CMD...: a control-plane daemon in the cp netns, logged
  local name=$1
  shift
  nsenter --net=/run/netns/$NS_CP -- "$@" >"$K8S_DIR/logs/$name.log" 2>&1 &
  echo $! >"$K8S_DIR/pids/$name.pid"
}

network() {
  ip netns add "$NS_CP"
  in_cp ip link set lo up
  in_cp ip addr add "$API_IP/32" dev lo
  in_cp sysctl -qw net.ipv4.ip_forward=1
  local n
  for n in "${NODES[@]}"; do
    local ns=${NODE_NS[$n]} cpif=${NODE_CP_IF[$n]}
    ip netns add "$ns"
    ip link add "$cpif" netns "$NS_CP" type veth peer name eth0 netns "$ns"
    in_cp ip addr add "${NODE_GW[$n]}/24" dev "$cpif"
    in_cp ip link set "$cpif" up
    in_node "$n" ip link set lo up
    in_node "$n" ip addr add "${NODE_IP[$n]}/24" dev eth0
    in_node "$n" ip link set eth0 up
    in_node "$n" ip route add default via "${NODE_GW[$n]}"
    in_node "$n" sysctl -qw net.ipv4.ip_forward=1
    in_cp ip route add "${POD_CIDR[$n]}" via "${NODE_IP[$n]}"
  done
}

control_plane() {
  local bin=$1 p="$K8S_DIR/pki"
  start_bg etcd etcd --name pwk8s --data-dir "$K8S_DIR/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster pwk8s=http://127.0.0.1:2380
  wait_until 60 etcd in_cp bash -c 'exec 3<>/dev/tcp/127.0.0.1/2379' || { tail -20 "$K8S_DIR/logs/etcd.log" >&2; return 1; }
  # --kubelet-preferred-address-types=InternalIP: dial kubelets by their
  # node IP (there is no DNS for node names here).
  start_bg kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 --bind-address=0.0.0.0 --secure-port=6443 \
    --advertise-address="$API_IP" --allow-privileged=true \
    --authorization-mode=Node,RBAC --client-ca-file="$p/ca.crt" \
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$p/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-cluster-ip-range=10.96.0.0/16 --enable-admission-plugins=NodeRestriction
  wait_until 120 "kube-apiserver's /readyz" kc get --raw /readyz ||
    { tail -20 "$K8S_DIR/logs/kube-apiserver.log" >&2; return 1; }
  start_bg kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$p/controller-manager.kubeconfig" --leader-elect=false \
    --use-service-account-credentials --root-ca-file="$p/ca.crt" \
    --service-account-private-key-file="$p/sa.key" \
    --cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key" \
    --bind-address=127.0.0.1
  start_bg kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig="$p/scheduler.kubeconfig" --leader-elect=false --bind-address=127.0.0.1
}

node_ready() {
  kc get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}

nodes() {
  local bin=$1 n
  for n in "${NODES[@]}"; do
    unshare -m --propagation private "$K8S_HERE/node.sh" "$n" "$bin" >"$K8S_DIR/logs/$n.log" 2>&1 &
    echo $! >"$K8S_DIR/pids/$n.pid"
  done
  for n in "${NODES[@]}"; do
    wait_until 120 "node $n to be Ready" node_ready "$n" ||
      { tail -20 "$K8S_DIR/logs/$n.log" "$K8S_DIR/$n/kubelet.log" >&2; return 1; }
  done
}

holder() {
  local bin=$1 build=$2
  echo $$ >"$K8S_DIR/holder.pid"
  readlink /proc/$$/ns/mnt >"$K8S_DIR/holder.mntns"
  mkdir -p "$K8S_DIR/logs" "$K8S_DIR/pids"
  mount --make-rprivate /
  mount -t tmpfs -o mode=755 pwru-k8s-run /run
  mkdir -p /run/netns
  # A process of its own, so that set -e holds (it does not under `||`).
  "$0" up "$bin" "$build" >>"$K8S_DIR/logs/up.log" 2>&1 || touch "$K8S_DIR/failed"
  [ -e "$K8S_DIR/failed" ] || touch "$K8S_DIR/ready"
  exec sleep infinity
}

up() {
  network
  "$K8S_HERE/pki.sh" "$K8S_DIR/pki"
  "$K8S_HERE/images.sh" "$K8S_DIR/images" "$2"
  control_plane "$1"
  nodes "$1"
  # Pods need their namespace's default service account (the token controller's).
  wait_until 60 "the default service account" kc get serviceaccount default
  kc apply -f "$K8S_HERE/workloads.yaml"
  wait_until 120 "the workload pods to be Ready" kc wait --for=condition=Ready --timeout=5s pod/httpd pod/client ||
    { kc get pods -o wide; kc describe pods | tail -30; return 1; }
  kc get pods -o wide
}

# stop PIDFILE: SIGTERM, then SIGKILL after 10 s.
stop() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# kill_mount_ns NS: every process in mount namespace NS (as readlink prints
# /proc/PID/ns/mnt) and their descendants; the containers' cgroups
# (containerd's /k8s.io/ID) are listed in $K8S_DIR/cgroups.killed for `down`
# to remove.
kill_mount_ns() {
  local ns=$1 p pids=() all=()
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && pids+=("${p#/proc/}")
  done
  descendants() { local c; echo "$1"; for c in $(pgrep -P "$1"); do descendants "$c"; done; }
  for p in "${pids[@]}"; do mapfile -t -O "${#all[@]}" all < <(descendants "$p"); done
  for p in "${all[@]}"; do
    awk -F: '$2 == "pids" && $3 ~ /^\/k8s.io\// { print $3 }' "/proc/$p/cgroup" 2>/dev/null
  done | sort -u >>"$K8S_DIR/cgroups.killed"
  ((${#all[@]} == 0)) || kill -9 "${all[@]}" 2>/dev/null || true
}

# kill_node NODE: the node's mount namespace (containerd, its shims, the
# kubelet, node.sh) and the containers below them.
kill_node() {
  local ns
  ns=$(cat "$K8S_DIR/$1/mntns" 2>/dev/null) || return 0
  kill_mount_ns "$ns"
}

teardown() {
  local n d
  # The kubelets first, so that they do not restart what is killed next.
  for n in "${NODES[@]}"; do stop "$K8S_DIR/$n/kubelet.pid"; done
  for n in "${NODES[@]}"; do kill_node "$n"; done
  sleep 1
  for n in "${NODES[@]}"; do kill_node "$n"; done  # anything forked meanwhile
  for d in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$K8S_DIR/pids/$d.pid"; done
  # Anything else in the cluster's namespace (a trace left running), then the
  # holder: its mount namespace, with the netns files, goes with it.
  local ns
  ns=$(cat "$K8S_DIR/holder.mntns" 2>/dev/null) || return 0
  kill_mount_ns "$ns"
}

case ${1:-} in
  holder) holder "$2" "$3" ;;
  up) up "$2" "$3" ;;
  teardown) teardown ;;
  *) echo "usage: $0 holder|up KUBE_BIN_DIR BUILD_DIR | teardown" >&2; exit 2 ;;
esac
