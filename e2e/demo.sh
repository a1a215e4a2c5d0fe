#!/usr/bin/env bash
# The demo a new user runs: "where did my packet go?"
#
# A client namespace sends a TCP SYN to port 80 of a server namespace; the
# server drops it with iptables. pwru traces the SYN through the kernel and the
# last line says why it died: SKB_DROP_REASON_NETFILTER_DROP.
#
# usage (as root): e2e/demo.sh [--setup-only] [PATH_TO_PWRU]   (default: build/pwru)
#   --setup-only  build the namespaces and the DROP, check that the SYN is
#                 really dropped, tear down; pwru is not needed.
# Environment: DEMO_READY_TIMEOUT (s, default 60), DEMO_STOP_TIMEOUT (s, default
# 90: the kprobe backend can take about a minute to detach).
set -euo pipefail

# shellcheck disable=SC2034  # read by lib.sh for its messages
E2E_NAME=demo
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"

setup_only=0
case ${1:-} in
-h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
--setup-only) setup_only=1 && shift ;;
esac
pwru=${1:-$here/../build/pwru}
ready_timeout=${DEMO_READY_TIMEOUT:-60}
stop_timeout=${DEMO_STOP_TIMEOUT:-90}

e2e_require_root
if ((!setup_only)); then
    [[ -x $pwru ]] || e2e_die "no pwru binary at '$pwru' (build it first, or pass its path)"
fi

e2e_init pwru-demo-
e2e_mktemp
e2e_netns_pair
client=$E2E_NS_A server=$E2E_NS_B server_addr=$E2E_ADDR_B
e2e_log "client $client ($E2E_ADDR_A) -> server $server ($server_addr)"

# Nothing listens on port 80, so before the DROP the server answers with a
# RST: proves the veth carries packets both ways.
rc=0
e2e_tcp_attempt "$client" "$server_addr" 80 2 || rc=$?
case $rc in
0) e2e_die "something accepted a connection on $server_addr:80; expected a refusal" ;;
124) e2e_die "no answer from $server_addr:80 before the DROP rule: the veth does not work" ;;
esac

e2e_iptables "$server" -A INPUT -p tcp --dport 80 -j DROP

if ((setup_only)); then
    rc=0
    e2e_tcp_attempt "$client" "$server_addr" 80 2 || rc=$?
    ((rc == 124)) || e2e_die "expected the SYN to be dropped (timeout), got exit status $rc"
    counters=$(ip netns exec "$server" iptables -w 5 -L INPUT -v -n -x)
    pkts=$(awk 'NR == 3 { print $1 }' <<<"$counters")
    ((pkts >= 1)) || e2e_die "the DROP rule counted no packets:"$'\n'"$counters"
    e2e_log "setup ok: $pkts SYN(s) dropped by INPUT in $server"
    exit 0
fi

out=$E2E_TMP/pwru.out err=$E2E_TMP/pwru.err ready=$E2E_TMP/ready
# The host filter keeps unrelated port-80 traffic (pwru sees every namespace)
# out of the demo.
e2e_log "starting $pwru"
e2e_start_bg "$out" "$err" "$pwru" --ready-file "$ready" "tcp and dst port 80 and dst host $server_addr"
pwru_pid=$E2E_BG_PID

if ! e2e_wait_for_file "$ready" "$ready_timeout" "$pwru_pid"; then
    if kill -0 "$pwru_pid" 2>/dev/null; then
        e2e_log "error: pwru was not ready after ${ready_timeout}s; its stderr:"
    else
        wait "$pwru_pid" && rc=0 || rc=$?
        e2e_log "error: pwru exited with status $rc before it was ready; its stderr:"
    fi
    cat "$err" >&2
    exit 1
fi
e2e_log "pwru is ready; sending one TCP SYN to $server_addr:80"

rc=0
e2e_tcp_attempt "$client" "$server_addr" 80 2 || rc=$?
((rc == 124)) || e2e_log "warning: the connection attempt ended with $rc, not a timeout"

# pwru may buffer its output until it exits, so this wait is only a bounded
# courtesy; the check below runs on the final output.
e2e_wait_for_text "$out" SKB_DROP_REASON_NETFILTER_DROP 5 || true
e2e_stop_bg "$pwru_pid" "$stop_timeout"
status=$E2E_BG_STATUS

echo "---- pwru output ----"
cat "$out"
echo "---------------------"
if [[ $status == timeout ]]; then
    e2e_log "warning: pwru did not exit within ${stop_timeout}s of SIGINT and was killed; its stderr:"
    cat "$err" >&2
elif [[ $status != 0 ]]; then
    e2e_log "warning: pwru exited with status $status after SIGINT; its stderr:"
    cat "$err" >&2
fi

if grep -F -- "$server_addr" "$out" | grep -qF SKB_DROP_REASON_NETFILTER_DROP; then
    echo "demo: the drop was traced"
    exit 0
fi
if [[ $status == 0 ]]; then
    e2e_log "pwru's stderr:"
    cat "$err" >&2
fi
if grep -qF SKB_DROP_REASON_NETFILTER_DROP "$out"; then
    e2e_die "a SKB_DROP_REASON_NETFILTER_DROP line was printed, but none with the server address $server_addr"
fi
e2e_die "no line with $server_addr and SKB_DROP_REASON_NETFILTER_DROP in pwru's output"
