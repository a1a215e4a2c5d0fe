#!/usr/bin/env bash
# Regenerates manifests/pwru.yaml: charts/pwru rendered with its defaults
# (release pwru, namespace pwru) for Kubernetes 1.20, certificate data
# normalized (scripts/chart-normalize.sh). The packaging tests fail when it is
# stale.
# Why 1.20, the chart's lowest version: one static file must apply on every
# supported cluster, and what differs by version (AppArmor: the annotation
# before 1.30, the securityContext field from 1.30) has a 1.20 form that
# current versions still honour (they copy the annotation into the field and
# warn that it is deprecated), while the 1.30 form is refused by older API
# servers. helm install renders for the cluster's own version instead.
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
$renderer pwru charts/pwru --namespace pwru --kube-version 1.20.0 | scripts/chart-normalize.sh > manifests/pwru.yaml.tmp
mv manifests/pwru.yaml.tmp manifests/pwru.yaml
echo "render-manifests: wrote manifests/pwru.yaml"
