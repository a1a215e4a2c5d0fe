#!/usr/bin/env bash
# Builds the repository's Dockerfile with docker and loads the image into the
# kind cluster's nodes (no registry involved).
#   e2e/kind/image.sh [CLUSTER] [IMAGE]      (defaults: pwru-e2e, pwru-k8s:e2e)
# Env: SKIP_BUILD=1 loads an IMAGE that is already built.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cluster=${1:-pwru-e2e}
image=${2:-pwru-k8s:e2e}
need docker kind

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "docker build -t $image $repo_root"
  docker build -t "$image" "$repo_root"
fi
log "kind load docker-image $image --name $cluster"
kind load docker-image "$image" --name "$cluster"
