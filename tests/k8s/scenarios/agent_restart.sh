#!/usr/bin/env bash
# (d) The agent pod on node-b deleted while a trace runs: node-b is reported
# unavailable, node-a's events keep flowing, the trace ends cleanly; once the
# DaemonSet has recreated the pod, a new trace works.
. "$(dirname "$0")/../scenario-lib.sh"
TLS_DIR=$(client_tls_dir)
httpd_ip=$(pod_ip httpd)
agent_b=$(kc -n pwru get pods -l app.kubernetes.io/name=pwru-agent --field-selector spec.nodeName=node-b -o name)
require "an agent pod runs on node-b" test -n "$agent_b"

start_plugin killed --ready-file "$WORK/killed.ready" --output-json pod/httpd pod/client -- 'tcp port 80'
require "attached on both nodes" wait_ready "$WORK/killed.ready" 90
client_get "http://$httpd_ip/" || true
kc -n pwru delete "$agent_b" --wait=false >/dev/null
# A deleted pod gets SIGTERM: the agent ends its traces itself (a summary
# with "ended": "shutdown") before it goes, and kubectl-pwru, whose user did
# not stop, reports the node unavailable with why.
check "node-b is reported unavailable while the trace runs" \
  wait_until 60 "node-b's status line" grep -qE '"node":"node-b","node_status":"unavailable"' "$WORK/killed.out"
check "node-b's status says its agent shut down" \
  jq_true -s -e '[.[] | select(.node == "node-b" and .node_status == "unavailable" and ((.message // "") | test("agent shut down")))] | length > 0' "$WORK/killed.out"
before=$(jq -s '[.[] | select(.func != null and .node == "node-a")] | length' "$WORK/killed.out")
# The client's GET still crosses node-a (node-b's half is not traced now).
client_get "http://$httpd_ip/" 3 || true
sleep 2
after=$(jq -s '[.[] | select(.func != null and .node == "node-a")] | length' "$WORK/killed.out")
check "node-a's events keep flowing after node-b's agent went ($before -> $after)" test "$after" -gt "$before"
stop_plugin 30
check "the trace ends cleanly on SIGINT (exit $PLUGIN_RC, not killed)" test "$PLUGIN_RC" -ne 124
check "the exit summary still has node-a" summary_has_events "$WORK/killed.err" node-a
check "the exit summary says node-b became unavailable and why" grep -qE '^  node-b: .*unavailable \(its agent shut down' "$WORK/killed.err"
check "no crash message" sh -c "! grep -qiE 'terminate|abort|segmentation' '$WORK/killed.err'"

check "the DaemonSet recreates node-b's agent" wait_until 180 "the pwru-agent DaemonSet" agents_ready
start_plugin again --ready-file "$WORK/again.ready" --output-json pod/httpd -- 'tcp port 80'
if wait_ready "$WORK/again.ready" 90; then
  client_get "http://$httpd_ip/" || true
  sleep 2
fi
stop_plugin 30
check "a new trace works on the recreated agent (exit $PLUGIN_RC)" test "$PLUGIN_RC" -eq 0
check "the new trace has node-b's httpd events" json_events_on "$WORK/again.out" node-b httpd
finish
