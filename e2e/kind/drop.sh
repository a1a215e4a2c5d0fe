#!/usr/bin/env bash
# Adds (or deletes) the drop the e2e looks for: an iptables DROP of TCP to
# IP:PORT in the FORWARD chain of NODE, the kind node container (its own
# network namespace, so only that node drops). Traffic from another node's pod
# to a pod on NODE is forwarded there, so the SYN dies in netfilter with
# SKB_DROP_REASON_NETFILTER_DROP. The rule carries the comment pwru-e2e.
#   e2e/kind/drop.sh add|del NODE IP [PORT]     (PORT default 80)
# (A NetworkPolicy would depend on the CNI enforcing it; kindnet's support is
# recent. The iptables rule works on every kind version.)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
[ $# -ge 3 ] || die "usage: $0 add|del NODE IP [PORT]"
action=$1 node=$2 ip=$3 port=${4:-80}
need docker
rule=(FORWARD -d "$ip/32" -p tcp --dport "$port" -m comment --comment pwru-e2e -j DROP)
case $action in
  add) docker exec "$node" iptables -I "${rule[@]}" ;;
  del) while docker exec "$node" iptables -D "${rule[@]}" 2>/dev/null; do :; done ;;
  *) die "usage: $0 add|del NODE IP [PORT]" ;;
esac
log "drop $action on $node: tcp to $ip:$port"
docker exec "$node" iptables -S FORWARD | grep pwru-e2e >&2 || true
