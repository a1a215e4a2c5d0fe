#!/usr/bin/env bash
# Traces pods with the real kubectl pwru while the client pod sends HTTP
# requests to the httpd pod, and writes the merged timeline as NDJSON.
#   e2e/kind/trace.sh CLUSTER OUT.ndjson HTTPD_IP [REQUESTS]   (REQUESTS default 5)
# kubectl-pwru must be on PATH (kubectl runs it as `kubectl pwru`). The client
# certificate comes from the chart's Secret pwru-client-tls (namespace pwru),
# as NOTES.txt tells users; it is kept in a temp dir removed on exit.
# Traced: pod/client and pod/httpd in namespace pwru-e2e, filter 'tcp port 80'.
# stderr of kubectl pwru (its per-node summary) goes to OUT.ndjson.stderr.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
[ $# -ge 3 ] || die "usage: $0 CLUSTER OUT.ndjson HTTPD_IP [REQUESTS]"
cluster=$1 out=$2 httpd_ip=$3 requests=${4:-5}
need kubectl kubectl-pwru
ctx=kind-$cluster

tls=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$tls"
}
trap cleanup EXIT
for f in tls.crt tls.key ca.crt; do
  kubectl --context "$ctx" -n pwru get secret pwru-client-tls -o "go-template={{index .data \"$f\" | base64decode}}" > "$tls/$f"
  [ -s "$tls/$f" ] || die "Secret pwru/pwru-client-tls has no $f"
done

log "kubectl pwru pod/client pod/httpd (background)"
kubectl pwru --context "$ctx" -n pwru-e2e pod/client pod/httpd --tls-dir "$tls" \
  --output-json --max-duration 90 -- 'tcp port 80' > "$out" 2> "$out.stderr" &
pid=$!

# Both traces attached: each stream reports `connected` once its agent answered.
for _ in $(seq 1 120); do
  [ "$(grep -c '"node_status":"connected"' "$out" 2>/dev/null || true)" -ge 2 ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$out.stderr" >&2; die "kubectl pwru exited before attaching"; }
  sleep 0.5
done
[ "$(grep -c '"node_status":"connected"' "$out" || true)" -ge 2 ] || { cat "$out.stderr" >&2; die "kubectl pwru did not attach on both nodes within 60 s"; }
sleep 2

log "client -> http://$httpd_ip/ x$requests (each should time out: the drop)"
for i in $(seq 1 "$requests"); do
  if kubectl --context "$ctx" -n pwru-e2e exec client -- wget -q -T 2 -O /dev/null "http://$httpd_ip/" 2>/dev/null; then
    log "request $i got through (is the drop in place?)"
  fi
done
sleep 3
log "stopping kubectl pwru"
kill -INT "$pid"
for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; die "kubectl pwru did not stop within 30 s of SIGINT"; }
wait "$pid" || log "kubectl pwru exited with $?"
pid=""
cat "$out.stderr" >&2
log "$(grep -c '"func"' "$out" || true) events in $out"
