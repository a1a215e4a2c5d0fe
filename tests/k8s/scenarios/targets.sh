#!/usr/bin/env bash
# (b) deploy/ds/sts targets and -l selectors resolved by the real API server;
# a pod that does not exist, one that is in another namespace, one that is
# not scheduled: one line each on stderr, the other targets still traced.
. "$(dirname "$0")/../scenario-lib.sh"
TLS_DIR=$(client_tls_dir)
kc apply -f "$K8S_HERE/targets.yaml" >/dev/null
require "the deployment, daemonset and statefulset pods are Ready" \
  wait_until 120 "the target workloads" kc wait --for=condition=Ready --timeout=5s pod -l 'app in (web,echo,db)'
kc -n shop wait --for=condition=Ready --timeout=60s pod/shop-web >/dev/null
web_ip=$(kc get pod -l app=web -o jsonpath='{.items[0].status.podIP}')

start_plugin kinds --ready-file "$WORK/kinds.ready" --output-json \
  deploy/web ds/echo sts/db pod/nope pod/shop-web pod/pending -- 'tcp port 80'
if wait_ready "$WORK/kinds.ready" 90; then
  check "the deployment's pod is traced: the client's GET to it" client_get "http://$web_ip/"
  sleep 2
else
  check "deploy/ds/sts attached ($(tail -3 "$WORK/kinds.err" | tr '\n' ' '))" false
fi
stop_plugin 30
err="$WORK/kinds.err" out="$WORK/kinds.out"
check "the agents of both nodes attached (ds/echo runs on both)" grep -qx node-a "$WORK/kinds.ready"
check "node-b in the ready file" grep -qx node-b "$WORK/kinds.ready"
check "pod/nope: one line, not found" test "$(count "$err" 'kubectl-pwru: .*pods? "?nope"? .*not found')" -eq 1
check "pod/shop-web (namespace shop, asked in default): one line, not found" \
  test "$(count "$err" 'kubectl-pwru: .*shop-web.*not found')" -eq 1
check "pod/pending: one line, not scheduled" test "$(count "$err" 'kubectl-pwru: .*default/pending.*not scheduled')" -eq 1
check "exit 1: some targets could not be traced (exit $PLUGIN_RC)" test "$PLUGIN_RC" -eq 1
check "deploy/web's pod traced on node-b" jq_true -s -e '[.[] | select(.func != null and .node == "node-b" and (.pod | startswith("web-")))] | length > 0' "$out"
check "sts/db: its pod db-0 on node-a was traced (connected)" \
  grep -qE '"node":"node-a","node_status":"connected","target":"default/db-0"' "$out"
check "ds/echo: its pods on both nodes were traced" test "$(grep -cE '"node_status":"connected","target":"default/echo-' "$out")" -eq 2

# -l: the API server's label selector; -n: the other namespace.
start_plugin selector --ready-file "$WORK/selector.ready" --output-json -l app=httpd -- 'tcp port 80'
if wait_ready "$WORK/selector.ready" 90; then
  client_get "http://$(pod_ip httpd)/" || true
  sleep 2
fi
stop_plugin 30
check "-l app=httpd resolves to the httpd pod on node-b only" test "$(cat "$WORK/selector.ready" 2>/dev/null)" = node-b
check "-l app=httpd: the pod's events" json_events_on "$WORK/selector.out" node-b httpd
check "-l app=httpd: exit 0 (exit $PLUGIN_RC)" test "$PLUGIN_RC" -eq 0

start_plugin other-ns --ready-file "$WORK/other-ns.ready" -n shop pod/shop-web -- 'tcp port 80'
wait_ready "$WORK/other-ns.ready" 90 || true
stop_plugin 30
check "-n shop pod/shop-web attaches on node-a" test "$(cat "$WORK/other-ns.ready" 2>/dev/null)" = node-a
finish
