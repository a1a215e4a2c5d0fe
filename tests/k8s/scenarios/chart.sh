#!/usr/bin/env bash
# charts/pwru rendered by tools/chart-render with tests/k8s/values-test.yaml
# and applied with the machine's real kubectl WITH validation (the API
# server's OpenAPI schema of Kubernetes 1.20): the agent DaemonSet Ready on
# both nodes, each agent healthy on its node's address. Later scenarios use
# this install.
. "$(dirname "$0")/../scenario-lib.sh"

require "the chart renders and the real API server accepts it with validation" apply_chart
check "the agent DaemonSet is Ready on both nodes" wait_until 180 "the pwru-agent DaemonSet" agents_ready
agents_ready || { kc -n pwru get pods -o wide; kc -n pwru describe pods | grep -A5 -iE 'warning|error' | head -20; }
for n in "${NODES[@]}"; do
  check "the agent on $n answers /healthz on the node's address" \
    in_cp curl -sf --max-time 5 "http://${NODE_IP[$n]}:4246/healthz" -o /dev/null
done
finish
