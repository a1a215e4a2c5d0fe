#!/usr/bin/env bash
# (f) --correlate across the two nodes: the client's packets to httpd become
# trajectories that start on node-a and end on node-b, one packet's events
# from both nodes in one trajectory.
. "$(dirname "$0")/../scenario-lib.sh"
TLS_DIR=$(client_tls_dir)
httpd_ip=$(pod_ip httpd)
client_ip=$(pod_ip client)

start_plugin correlate --ready-file "$WORK/ready" --output-json --correlate pod/client pod/httpd -- 'tcp port 80'
if wait_ready "$WORK/ready" 90; then
  check "a GET from the client to httpd while traced" client_get "http://$httpd_ip/"
  sleep 2
else
  check "--correlate attached on both nodes ($(tail -3 "$WORK/correlate.err" | tr '\n' ' '))" false
fi
stop_plugin 30
out="$WORK/correlate.out"
check "exit 0 (exit $PLUGIN_RC)" test "$PLUGIN_RC" -eq 0
check "events carry their trajectory" jq_true -s -e '[.[] | select(.func != null and .trajectory != null)] | length > 0' "$out"
check "a trajectory of a client->httpd packet spans node-a then node-b" jq_true -s -e --arg c "$client_ip" --arg h "$httpd_ip" '
  [.[] | select(.nodes != null) | select((.nodes | index("node-a")) != null and (.nodes | index("node-b")) != null
     and (.nodes | index("node-a")) < (.nodes | index("node-b")))] | length > 0' "$out"
finish
