#!/usr/bin/env bash
# (a) kubectl pwru pod/httpd pod/client -- 'tcp port 80', httpd on node-b and
# the client on node-a, in the default port-forward mode and with --direct:
# one timeline with both nodes' events in time order, the drop of an iptables
# DROP rule in node-b with its reason on node-b, the exit summary per node.
. "$(dirname "$0")/../scenario-lib.sh"
TLS_DIR=$(client_tls_dir)
httpd_ip=$(pod_ip httpd)
require "the httpd pod has an IP on node-b's pod network" test -n "$httpd_ip"

drop_rule=(FORWARD -d "$httpd_ip" -p tcp --dport 80 -j DROP)
cleanup() { in_node node-b iptables -D "${drop_rule[@]}" 2>/dev/null || true; }
trap 'cleanup' EXIT

# trace MODE ARGS...: one trace with a GET that works and one that node-b drops.
trace() {
  local mode=$1
  shift
  start_plugin "$mode" --ready-file "$WORK/$mode.ready" "$@" pod/httpd pod/client -- 'tcp port 80'
  if ! wait_ready "$WORK/$mode.ready" 90; then
    stop_plugin 10
    check "$mode: kubectl-pwru attached on both nodes (its stderr: $(tail -3 "$WORK/$mode.err" | tr '\n' ' '))" false
    return 0
  fi
  check "$mode: the client's GET to httpd works before the DROP rule" client_get "http://$httpd_ip/"
  in_node node-b iptables -I "${drop_rule[@]}"
  check "$mode: the GET fails with node-b's DROP rule" client_get_fails "http://$httpd_ip/" 2
  cleanup
  sleep 2  # the agents' stream has the last events
  stop_plugin 30
  check "$mode: kubectl-pwru exits 0 after SIGINT (exit $PLUGIN_RC; $(tail -2 "$WORK/$mode.err" | tr '\n' ' '))" test "$PLUGIN_RC" -eq 0
  check "$mode: the exit summary counts node-a's events" summary_has_events "$WORK/$mode.err" node-a
  check "$mode: the exit summary counts node-b's events" summary_has_events "$WORK/$mode.err" node-b
}

trace port-forward --output-json
out="$WORK/port-forward.out"
check "port-forward: events of the client pod on node-a" json_events_on "$out" node-a client
check "port-forward: events of the httpd pod on node-b" json_events_on "$out" node-b httpd
check "port-forward: one timeline, every event in wall-clock order" json_events_in_time_order "$out"
check "port-forward: the DROP on node-b with its reason (NETFILTER_DROP)" json_drop_on "$out" node-b NETFILTER_DROP

trace direct --direct
out="$WORK/direct.out"
check "direct: the text timeline has a NODE and a POD column" has "$out" 'NODE' 'POD' 'FUNC'
check "direct: lines of node-a's client pod" has "$out" 'node-a' 'client'
check "direct: lines of node-b's httpd pod" has "$out" 'node-b' 'httpd'
check "direct: the DROP on node-b with its reason" has "$out" 'node-b' 'NETFILTER_DROP'
check "direct: the plugin did not port-forward (no port-forward message)" sh -c "! grep -q 'port-forward' '$WORK/direct.err'"
finish
