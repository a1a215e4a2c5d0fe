#!/usr/bin/env bash
# Regenerates manifests/pwru.yaml: charts/pwru rendered with its defaults
# (release pwru, namespace pwru), certificate data normalized
# (scripts/chart-normalize.sh). The packaging tests fail when it is stale.
#   scripts/render-manifests.sh [RENDERER]
# RENDERER: a `helm template`-like command (default: build/tools/chart-render,
# built by cmake; `helm template` gives the same output).
set -euo pipefail
cd "$(dirname "$0")/.."
renderer=${1:-${BUILD_DIR:-build}/tools/chart-render}
if ! command -v "${renderer%% *}" >/dev/null 2>&1; then
  echo "render-manifests: $renderer not found; build first (cmake --build build --target chart-render) or pass 'helm template'" >&2
  exit 1
fi
$renderer pwru charts/pwru --namespace pwru | scripts/chart-normalize.sh > manifests/pwru.yaml.tmp
mv manifests/pwru.yaml.tmp manifests/pwru.yaml
echo "render-manifests: wrote manifests/pwru.yaml"
