#!/usr/bin/env bash
# Bench 2: per-packet cost when the filter does not match.
#
# iperf3 (TCP) across a veth pair between two network namespaces, interleaved
# rounds of three modes: no tracer; pwru (auto backend: tracepoints on this
# kernel) with a pcap filter that matches nothing; bpftrace 0.17 attached to the
# same kernel tracepoints with a predicate on the skb that matches nothing.
# Throughput varies 2x between runs here (reference/measuring.md), so every
# round runs the three modes back to back in a rotating order, and the ratios
# are of medians. The kernel's per-program accounting (bpf_stats run_time_ns /
# run_cnt, steadier) gives the cost of one hit for pwru and bpftrace.
#
#   bench/nomatch_iperf.sh [--quick]
#
# BASELINE_PWRU=path: a second pwru binary (e.g. built from an older commit)
# measured in the same rounds, for a before/after ratio of the cost per hit.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need_root; need iperf3 bpftrace bpftool jq ip

ROUNDS=10 SECS=4
[ "${1:-}" = --quick ] && { ROUNDS=3 SECS=2; }
[ -x "$PWRU" ] || { echo "SKIPPED: no pwru at $PWRU (build it)"; exit 77; }
BASELINE=${BASELINE_PWRU:-}
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || { echo "bench: BASELINE_PWRU=$BASELINE is not an executable" >&2; exit 1; }

NS_A=pwru-bench-a NS_B=pwru-bench-b
WORK=$(mktemp -d /tmp/pwru-bench-iperf.XXXXXX)
TRACER_PID="" SERVER_PID=""
OLD_STATS=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
cleanup() {
  [ -n "$TRACER_PID" ] && { kill -INT "$TRACER_PID" 2>/dev/null; sleep 1; kill -KILL "$TRACER_PID" 2>/dev/null; wait "$TRACER_PID" 2>/dev/null; }
  [ -n "$SERVER_PID" ] && { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; }
  ip netns del "$NS_A" 2>/dev/null; ip netns del "$NS_B" 2>/dev/null
  sysctl -qw kernel.bpf_stats_enabled="$OLD_STATS" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS_A" && ip netns add "$NS_B" &&
  ip link add bva netns "$NS_A" type veth peer name bvb netns "$NS_B" &&
  ip -n "$NS_A" addr add 10.77.0.1/24 dev bva && ip -n "$NS_B" addr add 10.77.0.2/24 dev bvb &&
  ip -n "$NS_A" link set bva up && ip -n "$NS_B" link set bvb up &&
  ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up || { echo "bench: cannot build the veth pair" >&2; exit 1; }
ip netns exec "$NS_B" iperf3 -s -B 10.77.0.2 >/dev/null 2>&1 &
SERVER_PID=$!
sleep 0.5

# bpftrace: the tracepoints pwru attaches, each with its skb field, doing what
# pwru's `host 10.254.254.254` does on an IPv4 packet: read the IP header's
# addresses from skb->head + network_header and compare both (no packet here
# has that address). IPv6 and non-IP packets are not checked: a little less
# work than pwru's filter.
FILTER='host 10.254.254.254'
"$PWRU" --dry-run "$FILTER" >"$WORK/dry" 2>&1 || { cat "$WORK/dry" >&2; exit 1; }
BACKEND=$(sed -n 's/^backend: \([a-z-]*\).*/\1/p' "$WORK/dry")
probes=() ; n_tp=0
for tp in $(awk '/^tracepoints:/ { on = 1; next } on && /^  [a-z_0-9]+ skb=/ { print $1 }' "$WORK/dry"); do
  n_tp=$((n_tp + 1))
  f=$(ls /sys/kernel/tracing/events/*/"$tp"/format 2>/dev/null | head -n 1)
  [ -n "$f" ] || continue
  field=$(grep -o 'field:[^;]* \(skbaddr\|skb\);' "$f" | head -n 1 | sed 's/.* \([a-z]*\);/\1/')
  [ -n "$field" ] || continue
  cat=$(basename "$(dirname "$(dirname "$f")")")
  probes+=("tracepoint:$cat:$tp { \$s = (struct sk_buff *)args->$field; \$ip = (struct iphdr *)(\$s->head + \$s->network_header); if (\$ip->saddr == 0xfefefe0a || \$ip->daddr == 0xfefefe0a) { @hits = count(); } }")
done
printf '%s\n' "${probes[@]}" >"$WORK/peer.bt"
echo 'BEGIN { printf("ready\n"); }' >>"$WORK/peer.bt"
log "pwru backend $BACKEND, $n_tp tracepoints; bpftrace attaches ${#probes[@]} of them (those with an skb field)"

# start_tracer MODE: starts it and waits until it is attached
start_tracer() {
  rm -f "$WORK/ready"
  bpftool prog show -j 2>/dev/null | jq '[.[].id]' >"$WORK/ids.before"
  case "$1" in
    none) return 0 ;;
    pwru) "$PWRU" --ready-file "$WORK/ready" "$FILTER" >"$WORK/pwru.out" 2>"$WORK/pwru.err" & ;;
    baseline) "$BASELINE" --ready-file "$WORK/ready" "$FILTER" >"$WORK/baseline.out" 2>"$WORK/baseline.err" & ;;
    bpftrace) bpftrace -B line "$WORK/peer.bt" >"$WORK/ready.out" 2>"$WORK/bt.err" & ;;
  esac
  TRACER_PID=$!
  for _ in $(seq 600); do
    if [ "$1" != bpftrace ] && [ -e "$WORK/ready" ]; then prog_ids "$1" '^tp_slot_'; return 0; fi
    if [ "$1" = bpftrace ] && grep -q ready "$WORK/ready.out" 2>/dev/null; then prog_ids bpftrace '.'; return 0; fi
    kill -0 "$TRACER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: $1 did not start" >&2; cat "$WORK"/*.err >&2; return 1
}
# SIGINT, then SIGTERM after 30 s (bpftrace 0.17 was seen to ignore a SIGINT here)
stop_tracer() {
  [ -n "$TRACER_PID" ] || return 0
  kill -INT "$TRACER_PID"
  for _ in $(seq 300); do kill -0 "$TRACER_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$TRACER_PID" 2>/dev/null; then
    log "the tracer did not exit within 30 s of SIGINT: SIGTERM"
    kill -TERM "$TRACER_PID"
  fi
  wait "$TRACER_PID" 2>/dev/null; TRACER_PID=""
}
# The tracer's programs: loaded after it started (ids not in $WORK/ids.before) and
# named as its programs are (pwru: tp_slot_N; bpftrace names them after the
# tracepoint: any new one). This
# bpftool shows no owning pids.
prog_ids() {
  bpftool prog show -j 2>/dev/null | jq -r --arg re "$2" --slurpfile old "$WORK/ids.before" '
    .[] | select((.id as $i | $old[0] | index($i)) == null) | select(.name | test($re)) | .id' >"$WORK/ids.$1"
}
# prog_stats MODE: "run_time_ns run_cnt" summed over that tracer's programs
prog_stats() { bpf_prog_stats <(jq -s . "$WORK/ids.$1"); }

sysctl -qw kernel.bpf_stats_enabled=1
modes=(none pwru bpftrace)
[ -n "$BASELINE" ] && modes+=(baseline)
for r in $(seq "$ROUNDS"); do
  for i in $(seq 0 $((${#modes[@]} - 1))); do
    m=${modes[$(((r + i) % ${#modes[@]}))]}
    start_tracer "$m" || exit 1
    before="0 0"; [ "$m" != none ] && before=$(prog_stats "$m")
    bps=$(ip netns exec "$NS_A" iperf3 -c 10.77.0.2 -t "$SECS" -J 2>/dev/null | jq '.end.sum_received.bits_per_second // empty')
    [ "$m" != none ] && { after=$(prog_stats "$m"); echo "$before $after" >>"$WORK/stats.$m"; }
    stop_tracer
    [ -n "$bps" ] && echo "$bps" >>"$WORK/bps.$m"
    log "round $r $m: $(awk -v b="${bps:-0}" 'BEGIN { printf "%.2f", b / 1e9 }') Gbit/s"
  done
done

med() { median <"$WORK/bps.$1"; }
ns_per_hit() { awk '{ dt += $3 - $1; dc += $4 - $2 } END { if (dc > 0) printf "%.1f", dt / dc; else print "n/a" }' "$WORK/stats.$1"; }
hits() { awk '{ dc += $4 - $2 } END { printf "%d", dc }' "$WORK/stats.$1"; }
NONE=$(med none) PW=$(med pwru) BT=$(med bpftrace)
L=$(load_note)
gb() { awk -v b="$1" 'BEGIN { printf "%.2f Gbit/s", b / 1e9 }'; }
result nomatch "iperf3 throughput, pwru vs no tracer (median of $ROUNDS)" "$(gb "$PW")" "$(gb "$NONE")" "$(ratio "$PW" "$NONE")" "target >= 0.95; $BACKEND backend; $L"
result nomatch "iperf3 throughput, bpftrace vs no tracer" "$(gb "$BT")" "$(gb "$NONE")" "$(ratio "$BT" "$NONE")" "same tracepoints, IPv4 host check on the IP header"
result nomatch "iperf3 throughput, pwru vs bpftrace" "$(gb "$PW")" "$(gb "$BT")" "$(ratio "$PW" "$BT")" "> 1: pwru cheaper"
PNS=$(ns_per_hit pwru) BNS=$(ns_per_hit bpftrace)
result nomatch "ns per hit (bpf_stats), pwru vs bpftrace" "$PNS ns" "$BNS ns" "$(ratio "$PNS" "$BNS")" "< 1: pwru cheaper; hits $(hits pwru) vs $(hits bpftrace)"
if [ -n "$BASELINE" ]; then
  ONS=$(ns_per_hit baseline)
  result nomatch "ns per hit (bpf_stats), pwru vs BASELINE_PWRU" "$PNS ns" "$ONS ns" "$(ratio "$PNS" "$ONS")" "< 1: this build cheaper; hits $(hits pwru) vs $(hits baseline)"
  result nomatch "iperf3 throughput, pwru vs BASELINE_PWRU" "$(gb "$PW")" "$(gb "$(med baseline)")" "$(ratio "$PW" "$(med baseline)")" "> 1: this build faster"
fi
