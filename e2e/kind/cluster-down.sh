#!/usr/bin/env bash
# Deletes the e2e's kind cluster.
#   e2e/kind/cluster-down.sh [CLUSTER]      (default: pwru-e2e)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
need kind
kind delete cluster --name "${1:-pwru-e2e}"
