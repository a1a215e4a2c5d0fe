#!/usr/bin/env bash
# runc for the k8s layer's containerd (its BinaryName): this machine's
# sandbox does not have CAP_SYS_RESOURCE in its bounding set, so runc cannot
# grant it to a container ("unable to apply caps: operation not permitted"),
# while a real node can. The chart asks for it (RLIMIT_MEMLOCK on kernels
# before 5.11; this kernel charges BPF memory to the cgroup and needs none).
# So that the chart and manifests/install.sh run as a user runs them, the node
# drops that one capability from the container's spec before runc creates it;
# everything else passes through unchanged.
set -euo pipefail
cmd="" bundle=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --bundle | -b) bundle=${args[i + 1]} ;;
    --bundle=*) bundle=${args[i]#--bundle=} ;;
    create | run) [ -z "$cmd" ] && cmd=${args[i]} ;;
  esac
done
if [ -n "$cmd" ] && [ -n "$bundle" ] && [ -f "$bundle/config.json" ] &&
  grep -q CAP_SYS_RESOURCE "$bundle/config.json"; then
  jq -c '.process.capabilities |= with_entries(.value |= map(select(. != "CAP_SYS_RESOURCE")))' \
    "$bundle/config.json" >"$bundle/config.json.pwru" && mv "$bundle/config.json.pwru" "$bundle/config.json"
fi
exec runc "$@"
