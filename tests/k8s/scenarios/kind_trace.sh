#!/usr/bin/env bash
# (e) e2e/kind-trace.sh start|collect (the GitHub Action's script) against
# this cluster, with the chart already installed (--install false: no helm
# here) and this build's kubectl-pwru: its summary names the drop on node-b.
. "$(dirname "$0")/../scenario-lib.sh"
export KUBECONFIG="$K8S_DIR/pki/admin.kubeconfig"
httpd_ip=$(pod_ip httpd)
drop_rule=(FORWARD -d "$httpd_ip" -p tcp --dport 80 -j DROP)
trap 'in_node node-b iptables -D "${drop_rule[@]}" 2>/dev/null || true' EXIT

out="$WORK/kind-trace"
kind_trace_start() {
  in_cp "$K8S_SRC/e2e/kind-trace.sh" start --install false --plugin "$PLUGIN" --output-dir "$out" \
    --targets "pod/httpd pod/client" --filter 'tcp port 80' --attach-timeout 90 --ready-timeout 60 \
    >"$WORK/start.log" 2>&1 || { cat "$WORK/start.log"; return 1; }
}
check "kind-trace.sh start attaches to both nodes" kind_trace_start
# The tests of the project that uses the action: one GET that works, one that node-b drops.
client_get "http://$httpd_ip/" || true
in_node node-b iptables -I "${drop_rule[@]}"
client_get "http://$httpd_ip/" 2 || true
in_node node-b iptables -D "${drop_rule[@]}"
sleep 2
in_cp "$K8S_SRC/e2e/kind-trace.sh" collect --plugin "$PLUGIN" --output-dir "$out" >"$WORK/collect.log" 2>&1
check "collect wrote summary.md" test -s "$out/summary.md"
check "the summary counts node-a's events" has "$out/summary.md" '\| node-a \|' '\| [1-9][0-9]* \|'
check "the summary names the drop on node-b with its reason" has "$out/summary.md" 'node-b' 'NETFILTER_DROP'
check "trace.txt has both nodes" has "$out/trace.txt" node-a
check "trace.txt has node-b" has "$out/trace.txt" node-b
finish
