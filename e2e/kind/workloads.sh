#!/usr/bin/env bash
# Deploys the e2e workloads in namespace pwru-e2e: pod `httpd` on the worker
# node and pod `client` on the control-plane node (pinned by nodeName, so the
# control plane's taint does not matter), waits until both are Ready, and
# prints their nodes and IPs as shell assignments:
#   HTTPD_NODE=... HTTPD_IP=... CLIENT_NODE=... CLIENT_IP=...
#   e2e/kind/workloads.sh [CLUSTER]            (default: pwru-e2e)
#   eval "$(e2e/kind/workloads.sh pwru-e2e)"
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cluster=${1:-pwru-e2e}
need kubectl
ctx=kind-$cluster
k() { kubectl --context "$ctx" "$@"; }

k create namespace pwru-e2e --dry-run=client -o yaml | k apply -f - >&2
k apply -f - >&2 <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: httpd
  namespace: pwru-e2e
  labels: {app: httpd}
spec:
  nodeName: $cluster-worker
  containers:
    - name: httpd
      image: httpd:2.4-alpine
      ports: [{containerPort: 80}]
      readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 2}
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: pwru-e2e
  labels: {app: client}
spec:
  nodeName: $cluster-control-plane
  containers:
    - name: client
      image: busybox:1.36
      command: [sleep, "3600"]
YAML
k -n pwru-e2e wait --for=condition=Ready pod/httpd pod/client --timeout=180s >&2
for p in httpd client; do
  node=$(k -n pwru-e2e get pod "$p" -o jsonpath='{.spec.nodeName}')
  ip=$(k -n pwru-e2e get pod "$p" -o jsonpath='{.status.podIP}')
  [ -n "$ip" ] || die "pod $p has no IP"
  up=$(echo "$p" | tr '[:lower:]' '[:upper:]')
  echo "${up}_NODE=$node ${up}_IP=$ip"
done
