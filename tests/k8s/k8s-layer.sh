#!/usr/bin/env bash
# The k8s test layer's entry point (tests/CMakeLists.txt registers one ctest
# test per step; ctest fixtures run `up` first and `down` last, also when a
# scenario failed):
#   k8s-layer.sh up BUILD_DIR          build or reuse Kubernetes, bring the cluster up
#   k8s-layer.sh run SCENARIO BUILD_DIR  tests/k8s/scenarios/SCENARIO.sh in the cluster
#   k8s-layer.sh down                  tear everything down, fail on anything left
# Exit 77 (ctest's SKIP_RETURN_CODE) with "SKIPPED: why" when the cluster
# cannot be had here (not root, no Debian source for Kubernetes).
set -euo pipefail
# shellcheck source=tests/k8s/lib.sh
. "$(dirname "$0")/lib.sh"

skip() { echo "SKIPPED: $*"; mkdir -p "$K8S_DIR"; echo "$*" >"$K8S_DIR/skipped"; exit 77; }

# The sysctls the kubelet sets on start (setupKernelTunables; they are not per
# netns): saved before, restored by `down`, so the host keeps its own values.
KUBELET_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

bpf_prog_ids() { bpftool prog show -j 2>/dev/null | jq -r '.[].id' 2>/dev/null | sort -n || true; }

up() {
  local build=$1
  [ "$(id -u)" -eq 0 ] || skip "the k8s layer needs root (namespaces, kubelet, containerd); run it as root"
  # A crashed run's cluster first.
  [ -d "$K8S_DIR" ] && down >/dev/null 2>&1 || true
  local bin rc=0
  if ! "$K8S_HERE/build-kubernetes.sh" --check; then
    echo "k8s: building Kubernetes from Debian's source package once (about 12 minutes on 2 cores; cached in /var/cache/pwru-k8s)"
  fi
  bin=$("$K8S_HERE/build-kubernetes.sh") || rc=$?
  [ "$rc" -eq 77 ] && skip "Kubernetes cannot be built here (see build-kubernetes's message above)"
  [ "$rc" -eq 0 ] || k8s_die "tests/k8s/build-kubernetes.sh failed (exit $rc)"
  cat "$bin/../BUILD-INFO" 2>/dev/null || true
  for c in etcd containerd ctr runc kubectl jq; do
    command -v "$c" >/dev/null || skip "$c is not installed; run scripts/install-deps.sh"
  done

  mkdir -p "$K8S_DIR"
  local s
  for s in "${KUBELET_SYSCTLS[@]}"; do echo "$s $(cat "/proc/sys/$s")"; done >"$K8S_DIR/sysctls.saved"
  bpf_prog_ids >"$K8S_DIR/bpf-progs.before"
  # The nodes bind their own libcni cache over /var/lib/cni: its mountpoint,
  # removed by `down` when this run made it.
  if [ ! -d /var/lib/cni ]; then mkdir -p /var/lib/cni && touch "$K8S_DIR/made-var-lib-cni"; fi
  # Without the fds this script inherited: the cluster outlives this test, and
  # an inherited lock (flock around the layers) would be held as long.
  (
    for fd in "/proc/$BASHPID"/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid unshare -m --propagation private "$K8S_HERE/cluster.sh" holder "$bin" "$build" \
      </dev/null >"$K8S_DIR/holder.log" 2>&1
  ) &
  local t0=$SECONDS
  while [ ! -e "$K8S_DIR/ready" ] && [ ! -e "$K8S_DIR/failed" ] && ((SECONDS - t0 < 600)); do sleep 1; done
  if [ ! -e "$K8S_DIR/ready" ]; then
    tail -n 15 "$K8S_DIR"/logs/*.log "$K8S_DIR/holder.log" "$K8S_DIR"/node-*/kubelet.log 2>&1 || true
    k8s_die "the cluster did not come up (logs in $K8S_DIR/logs; \`down\` removes them)"
  fi
  echo "k8s: cluster up in $((SECONDS - t0)) s: $(in_holder kc get nodes --no-headers | awk '{print $1 "=" $2}' | tr '\n' ' ')"
}

# in_holder CMD...: a command in the cluster's mount namespace (its /run).
in_holder() {
  local pid
  pid=$(holder_pid) || k8s_die "no cluster (run \`up\` first)"
  nsenter -m -t "$pid" -- env K8S_BUILD="${K8S_BUILD:-}" bash -c '. "$0"; "$@"' "$K8S_HERE/lib.sh" "$@"
}

run() {
  local scenario=$1 build=$2
  [ -e "$K8S_DIR/skipped" ] && { echo "SKIPPED: $(cat "$K8S_DIR/skipped")"; exit 77; }
  [ -e "$K8S_DIR/ready" ] || k8s_die "the cluster is not up (the k8s_up test failed; see its output)"
  K8S_BUILD=$(cd "$build" && pwd) in_holder bash "$K8S_HERE/scenarios/$scenario.sh"
}

down() {
  [ -d "$K8S_DIR" ] || return 0
  [ -e "$K8S_DIR/skipped" ] && { rm -rf "$K8S_DIR"; exit 77; }
  local t0=$SECONDS
  "$K8S_HERE/cluster.sh" teardown || true
  local n left=()
  # The containers' cgroups, in every hierarchy (empty once their processes are gone).
  local c h
  sleep 1
  if [ -f "$K8S_DIR/cgroups.killed" ]; then
    for c in $(sort -u "$K8S_DIR/cgroups.killed"); do
      for h in /sys/fs/cgroup/*/; do [ -d "$h$c" ] && { rmdir "$h$c" 2>/dev/null || left+=("cgroup $h$c"); }; done
    done
    for h in /sys/fs/cgroup/*/k8s.io; do rmdir "$h" 2>/dev/null || true; done
  fi
  if [ -f "$K8S_DIR/sysctls.saved" ]; then
    while read -r s v; do echo "$v" >"/proc/sys/$s" 2>/dev/null || left+=("sysctl $s not restored to $v"); done <"$K8S_DIR/sysctls.saved"
  fi
  if [ -e "$K8S_DIR/made-var-lib-cni" ]; then rmdir /var/lib/cni 2>/dev/null || left+=("/var/lib/cni not empty"); fi
  # What must be gone.
  # (the holder's namespace too: its last process is a bare `sleep infinity`,
  # found by nothing else)
  local ns_file ns p2 what
  for ns_file in "$K8S_DIR"/node-*/mntns "$K8S_DIR/holder.mntns"; do
    ns=$(cat "$ns_file" 2>/dev/null) || continue
    what=$(basename "$(dirname "$ns_file")")
    [ "$ns_file" = "$K8S_DIR/holder.mntns" ] && what="the cluster's holder"
    for p2 in /proc/[0-9]*; do
      [ "$(readlink "$p2/ns/mnt" 2>/dev/null)" = "$ns" ] && left+=("process ${p2#/proc/} of $what: $(tr '\0' ' ' <"$p2/cmdline" | cut -c1-80)")
    done
  done
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "$K8S_DIR" && left+=("process ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline" | cut -c1-100)")
  done
  grep -q " $K8S_DIR" /proc/self/mountinfo && left+=("mounts under $K8S_DIR")
  if [ -f "$K8S_DIR/bpf-progs.before" ]; then
    local id
    # A BPF program of ours that outlived its process (attached, pinned).
    for id in $(comm -13 "$K8S_DIR/bpf-progs.before" <(bpf_prog_ids)); do
      bpftool prog show id "$id" -j 2>/dev/null | jq -e '(.pids // []) | length == 0' >/dev/null &&
        left+=("BPF program $id ($(bpftool prog show id "$id" -j | jq -r .name)) with no process")
    done
  fi
  if [ ${#left[@]} -gt 0 ]; then
    printf 'k8s: left behind: %s\n' "${left[@]}" >&2
    k8s_die "the teardown left ${#left[@]} things behind (listed above); logs kept in $K8S_DIR"
  fi
  rm -rf "$K8S_DIR"
  echo "k8s: torn down in $((SECONDS - t0)) s: no process, netns, mount, cgroup or BPF program left"
}

case ${1:-} in
  up) up "${2:?BUILD_DIR}" ;;
  run) run "${2:?SCENARIO}" "${3:?BUILD_DIR}" ;;
  down) down ;;
  *) echo "usage: $0 up BUILD_DIR | run SCENARIO BUILD_DIR | down" >&2; exit 2 ;;
esac
