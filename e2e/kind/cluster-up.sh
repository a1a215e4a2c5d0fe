#!/usr/bin/env bash
# Creates a two-node kind cluster (one control plane, one worker) and waits
# for its nodes to be Ready. Reuses the cluster when it already exists.
#   e2e/kind/cluster-up.sh [CLUSTER]          (default: pwru-e2e)
# Env: KIND_NODE_IMAGE (a kindest/node image; default: kind's own).
# Nodes: CLUSTER-control-plane, CLUSTER-worker; kubeconfig context kind-CLUSTER.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cluster=${1:-pwru-e2e}
need docker kind kubectl

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "cluster $cluster exists"
else
  log "creating kind cluster $cluster (2 nodes)"
  args=(create cluster --name "$cluster" --wait 180s --config -)
  [ -n "${KIND_NODE_IMAGE:-}" ] && args+=(--image "$KIND_NODE_IMAGE")
  kind "${args[@]}" <<'YAML'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
YAML
fi
kubectl --context "kind-$cluster" wait --for=condition=Ready node --all --timeout=180s
kubectl --context "kind-$cluster" get nodes -o wide
