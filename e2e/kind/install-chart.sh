#!/usr/bin/env bash
# Installs charts/pwru with real helm into namespace pwru of the kind cluster,
# running IMAGE (loaded by image.sh: pullPolicy Never), and waits until the
# agent is Ready on every node.
#   e2e/kind/install-chart.sh [CLUSTER] [IMAGE] [HELM ARGS...]
#   (defaults: pwru-e2e, pwru-k8s:e2e; e.g. --set authz.mode=rbac)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cluster=${1:-pwru-e2e}
image=${2:-pwru-k8s:e2e}
shift $(( $# > 2 ? 2 : $# ))
need helm kubectl
ctx=kind-$cluster

log "helm upgrade --install pwru charts/pwru (image $image)"
helm upgrade --install pwru "$repo_root/charts/pwru" --kube-context "$ctx" \
  --namespace pwru --create-namespace \
  --set image.repository="${image%:*}" --set image.tag="${image##*:}" --set image.pullPolicy=Never \
  --wait --timeout 5m "$@"
nodes=$(kubectl --context "$ctx" get nodes -o name | wc -l)
if ! kubectl --context "$ctx" -n pwru rollout status ds/pwru-agent --timeout=180s; then
  kubectl --context "$ctx" -n pwru get pods -o wide >&2 || true
  kubectl --context "$ctx" -n pwru logs -l app.kubernetes.io/name=pwru-agent --tail=50 >&2 || true
  die "pwru-agent is not Ready on every node"
fi
ready=$(kubectl --context "$ctx" -n pwru get ds pwru-agent -o jsonpath='{.status.numberReady}')
[ "$ready" = "$nodes" ] || die "pwru-agent Ready on $ready of $nodes nodes"
log "pwru-agent Ready on $ready nodes"
