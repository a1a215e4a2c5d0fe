#!/usr/bin/env bash
# The whole kind e2e, as CI runs it (.github/workflows/kind-e2e.yml), on a
# machine with docker, kind, helm, kubectl and kubectl-pwru on PATH:
#   cluster-up -> image (docker build, kind load) -> install-chart (helm) ->
#   workloads -> drop add -> trace (kubectl pwru) -> drop del -> assert-trace
#   e2e/kind/run.sh [CLUSTER] [IMAGE] [OUT_DIR]   (pwru-e2e, pwru-k8s:e2e, kind-e2e-out)
# Env: KEEP_CLUSTER=1 leaves the cluster up; SKIP_BUILD=1 uses a built IMAGE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
cluster=${1:-pwru-e2e}
image=${2:-pwru-k8s:e2e}
out=${3:-kind-e2e-out}
mkdir -p "$out"

"$here/cluster-up.sh" "$cluster"
if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
  trap '"$here/cluster-down.sh" "$cluster" || true' EXIT
fi
"$here/image.sh" "$cluster" "$image"
"$here/install-chart.sh" "$cluster" "$image"
eval "$("$here/workloads.sh" "$cluster")"
log "httpd $HTTPD_IP on $HTTPD_NODE, client $CLIENT_IP on $CLIENT_NODE"
[ "$HTTPD_NODE" != "$CLIENT_NODE" ] || die "httpd and client run on the same node"
"$here/drop.sh" add "$HTTPD_NODE" "$HTTPD_IP" 80
trace_rc=0
"$here/trace.sh" "$cluster" "$out/trace.ndjson" "$HTTPD_IP" || trace_rc=$?
"$here/drop.sh" del "$HTTPD_NODE" "$HTTPD_IP" 80
[ $trace_rc -eq 0 ] || die "the trace failed"
"$here/assert-trace.py" "$out/trace.ndjson" --nodes "$CLIENT_NODE,$HTTPD_NODE" --drop-to "$HTTPD_IP:80"
log "kind e2e passed"
