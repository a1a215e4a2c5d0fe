#!/usr/bin/env bash
# Bad input against the real cluster, one line each that says what to do,
# and the rest of the trace goes on: a context that is not in the
# kubeconfig, an API server nobody answers at, a node without an agent.
. "$(dirname "$0")/../scenario-lib.sh"
TLS_DIR=$(client_tls_dir)

start_plugin context --context nope pod/httpd -- 'tcp port 80'
wait_plugin 30
check "--context nope: exit 2 or 1, not a crash (exit $PLUGIN_RC)" test "$PLUGIN_RC" -eq 1 -o "$PLUGIN_RC" -eq 2
check "--context nope: one line naming the context" test "$(count "$WORK/context.err" 'nope')" -eq 1
check "--context nope: nothing else on stderr" test "$(wc -l <"$WORK/context.err")" -eq 1

sed "s|$API_URL|https://10.250.0.99:6443|" "$K8S_DIR/pki/admin.kubeconfig" >"$WORK/unreachable.kubeconfig"
PLUGIN_KUBECONFIG="$WORK/unreachable.kubeconfig" start_plugin unreachable pod/httpd -- 'tcp port 80'
wait_plugin 90
check "unreachable API server: kubectl-pwru gives up on its own (exit $PLUGIN_RC)" test "$PLUGIN_RC" -ne 124 -a "$PLUGIN_RC" -ne 0
check "unreachable API server: one line naming the server" test "$(count "$WORK/unreachable.err" '10\.250\.0\.99')" -eq 1

# No agent on node-b: the DaemonSet kept off it by a node affinity.
kc -n pwru patch ds pwru-agent --type merge -p '{"spec":{"template":{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/hostname","operator":"NotIn","values":["node-b"]}]}]}}}}}}}' >/dev/null
no_agent_on_b() {
  [ -z "$(kc -n pwru get pods -l app.kubernetes.io/name=pwru-agent --field-selector spec.nodeName=node-b -o name)" ] &&
    [ "$(kc -n pwru get ds pwru-agent -o jsonpath='{.status.numberReady}/{.status.desiredNumberScheduled}')" = 1/1 ]
}
require "the agent is gone from node-b" wait_until 120 "no agent on node-b" no_agent_on_b
start_plugin missing --ready-file "$WORK/missing.ready" --output-json pod/httpd pod/client -- 'tcp port 80'
if wait_ready "$WORK/missing.ready" 90; then
  client_get "http://$(pod_ip httpd)/" || true
  sleep 2
fi
stop_plugin 30
check "no agent on node-b: one line saying so" test "$(count "$WORK/missing.err" 'kubectl-pwru: .*default/httpd.*no pwru agent on node node-b')" -eq 1
check "no agent on node-b: node-a still traced" grep -qx node-a "$WORK/missing.ready"
check "no agent on node-b: the client's events on node-a" json_events_on "$WORK/missing.out" node-a client
check "no agent on node-b: exit 1 (exit $PLUGIN_RC)" test "$PLUGIN_RC" -eq 1
kc -n pwru patch ds pwru-agent --type json -p '[{"op":"remove","path":"/spec/template/spec/affinity"}]' >/dev/null
check "the agent is back on both nodes" wait_until 180 "the pwru-agent DaemonSet" agents_ready
finish
