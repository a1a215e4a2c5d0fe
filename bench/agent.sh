#!/usr/bin/env bash
# Bench 5a/5b: pwru-agent's idle memory and its mTLS event stream.
#
# A real pwru-agent on 127.0.0.1 with certificates made here (openssl) and a
# file authorization granting node-wide tracing to the client. Idle: VmRSS a
# few seconds after it serves, no trace running (target <= 30 MB). Stream: a
# node-wide trace (`udp and dst port 9`) read by curl over mutual TLS while a
# flood of K datagrams runs (bench/lib.sh flood_pair), interleaved with pwru
# writing JSON to a file on the same flood: events/s of the agent's stream vs
# pwru's, and the agent's own loss counters (ringbuf_full, rate_limited).
#
#   bench/agent.sh [--quick]
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need_root; need openssl curl iptables python3 ip
AGENT=${AGENT:-$BUILD_DIR/agent/pwru-agent}
[ -x "$AGENT" ] || { echo "SKIPPED: no pwru-agent at $AGENT (build it)"; exit 77; }
[ -x "$PWRU" ] || { echo "SKIPPED: no pwru at $PWRU (build it)"; exit 77; }
AGENT=$(readlink -f "$AGENT") PWRU=$(readlink -f "$PWRU")  # we cd into a work directory
ROUNDS=3 K=100000
[ "${1:-}" = --quick ] && { ROUNDS=1 K=20000; }

NS_A=pwru-bench-aa NS_B=pwru-bench-ab
WORK=$(mktemp -d /tmp/pwru-bench-agent.XXXXXX)
AGENT_PID="" TOOL_PID=""
cleanup() {
  for p in $TOOL_PID $AGENT_PID; do kill -TERM "$p" 2>/dev/null; done
  for p in $TOOL_PID $AGENT_PID; do wait "$p" 2>/dev/null; done
  ip netns del "$NS_A" 2>/dev/null; ip netns del "$NS_B" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Certificates: a CA, the agent's (DNS:localhost, IP:127.0.0.1), the client's (a URI SAN).
cd "$WORK" || exit 1
issue() {  # issue NAME SAN
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null &&
    printf 'subjectAltName=%s\n' "$2" >"$1.ext" &&
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -subj /CN=pwru-bench-ca -days 1 2>/dev/null &&
  issue agent DNS:localhost,IP:127.0.0.1 && issue client URI:spiffe://bench/client ||
  { echo "bench: openssl could not make the certificates" >&2; exit 1; }
echo '{"clients":[{"identity":"spiffe://bench/client","namespaces":["*"],"node":true}]}' >authz.json

flood_pair || { echo "bench: cannot build the veth pair" >&2; exit 1; }

# --node-scope kernel: the flood runs between two netns of no pod (the default
# scope, this node's pods from its CRI, would see none of it).
"$AGENT" --listen 127.0.0.1:0 --tls-cert agent.crt --tls-key agent.key --client-ca ca.crt \
  --authz-config authz.json --cri-socket "$WORK/no-cri.sock" --node-name bench-node --node-scope kernel \
  --max-event-rate 100000000 --ready-file "$WORK/agent.ready" >agent.log 2>&1 &
AGENT_PID=$!
for _ in $(seq 600); do [ -s agent.ready ] && break; kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
[ -s agent.ready ] || { echo "bench: the agent did not start" >&2; cat agent.log >&2; exit 1; }
PORT=$(tr -dc '0-9' <agent.ready)
sleep 3
IDLE_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$AGENT_PID/status")
log "agent on port $PORT, idle RSS $IDLE_KB KB"

FILTER='udp and dst port 9'
for r in $(seq "$ROUNDS"); do
  for mode in agent pwru; do
    out=$WORK/out.$mode
    rm -f "$out" ready
    if [ "$mode" = agent ]; then
      curl -sS -N --cacert ca.crt --cert client.crt --key client.key \
        "https://127.0.0.1:$PORT/v1/trace" -d "{\"node\":true,\"filter\":\"$FILTER\",\"max_duration_s\":120}" >"$out" 2>curl.err &
      TOOL_PID=$!
      for _ in $(seq 600); do grep -q '"type":"start"' "$out" 2>/dev/null && break; kill -0 "$TOOL_PID" 2>/dev/null || break; sleep 0.1; done
      grep -q '"type":"start"' "$out" || { echo "bench: no start record" >&2; cat "$out" curl.err >&2; exit 1; }
    else
      "$PWRU" --ready-file ready --output-json --output-file "$out" "$FILTER" 2>pwru.err &
      TOOL_PID=$!
      for _ in $(seq 600); do [ -e ready ] && break; kill -0 "$TOOL_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    t0=$(now)
    flood "$K"
    # the agent's stream also carries heartbeats and loss records: it never
    # stops growing while the trace runs, its events do
    if [ "$mode" = agent ]; then t2=$(settle "$out" '"type":"event"'); else t2=$(settle "$out"); fi
    [ "$mode" = agent ] && HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$AGENT_PID/status")
    kill -INT "$TOOL_PID"; wait "$TOOL_PID" 2>/dev/null; TOOL_PID=""
    got=$(grep -c '"type":"event"\|"func"' "$out")
    [ "$mode" = agent ] && got=$(grep -c '"type":"event"' "$out")
    if [ "$mode" = agent ]; then
      lost=$(grep '"type":"loss"' "$out" | tail -n 1 | jq '(.ringbuf_full // 0) + (.rate_limited // 0)' 2>/dev/null)
    else
      lost=$(grep -a -o 'Summary: .*' pwru.err | awk '{ for (i = 1; i <= NF; i++) if ($i == "lost") print $(i - 1) }')
    fi
    rate=$(awk -v n="$got" -v a="$t0" -v b="$t2" 'BEGIN { printf "%.0f", n / (b - a) }')
    echo "$rate $got ${lost:-0}" >>"res.$mode"
    log "round $r $mode: $got events, ${lost:-0} lost (reported), $rate/s"
  done
done
med() { column_median "res.$1" "$2"; }
tot() { column_total "res.$1" "$2"; }
L=$(load_note)
IDLE_MB=$(awk -v k="$IDLE_KB" 'BEGIN { printf "%.1f", k / 1024 }')
result agent "pwru-agent idle RSS" "$IDLE_MB MB" "30 MB target" "$(ratio "$IDLE_MB" 30)" "<= 1 meets the target; peak RSS while streaming $(awk -v k="${HWM:-0}" 'BEGIN { printf "%.1f", k / 1024 }') MB"
result agent "agent mTLS stream events/s vs pwru JSON to a file (median of $ROUNDS)" "$(med agent 1)/s" "$(med pwru 1)/s" "$(ratio "$(med agent 1)" "$(med pwru 1)")" \
  "$K packets a round; reported lost: agent $(tot agent 3), pwru $(tot pwru 3); curl reads the stream; $L"
