#!/usr/bin/env bash
# Runs INSIDE the VM (bench/hit_cost_vm.sh boots it). The cost of one hit on
# the kprobe-multi backend, ours against cilium/pwru (PEER) and, when given,
# an older build of ours (BASELINE), in the same VM run: the kernel's
# bpf_stats summed over every program each tool loaded, while one UDP flood
# crosses a veth pair (dropped by iptables in the receiver), with a filter
# that matches none of it ('tcp and port 9999') and one that matches all of
# it ('udp and port 9', text to a file). Also: start to ready, SIGINT to exit,
# functions attached, and the full cost bpf_stats does not see (the kprobe
# dispatch): how long the flood takes to send, against no tracer.
# Rounds interleave the tools. --quick: one round, a shorter flood.
#
#   guest_hit_cost.sh [--quick] PWRU PEER_PWRU|- BASELINE_PWRU|-
set -uo pipefail
. "$(dirname "$0")/lib.sh"
QUICK=0
[ "${1:-}" = --quick ] && { QUICK=1; shift; }
OURS=$1 PEER=${2:--} BASE=${3:--}
ROUNDS=3 PACKETS=30000
[ "$QUICK" = 1 ] && { ROUNDS=1 PACKETS=10000; }
NS_A=hit-a NS_B=hit-b
WORK=$(mktemp -d /var/tmp/bench-hit.XXXXXX)
CUR=""
cleanup() {
  [ -n "$CUR" ] && kill -KILL "$CUR" 2>/dev/null
  ip netns del "$NS_A" 2>/dev/null; ip netns del "$NS_B" 2>/dev/null
  sysctl -qw kernel.bpf_stats_enabled=0
  rm -rf "$WORK"
}
trap cleanup EXIT
echo "guest: kernel $(uname -r), $(nproc) vCPUs (TCG), $(load_note)"
flood_pair || { echo "guest: cannot build the veth pair"; exit 1; }
sysctl -qw kernel.bpf_stats_enabled=1

tools=(none ours)
[ "$PEER" != - ] && tools+=(peer)
[ "$BASE" != - ] && tools+=(baseline)
bin_of() { case $1 in ours) echo "$OURS" ;; peer) echo "$PEER" ;; baseline) echo "$BASE" ;; esac; }
[ "$PEER" != - ] && echo "guest: peer $("$PEER" --version 2>&1 | head -n 1)"

prog_ids() { bpftool prog show -j 2>/dev/null | jq '[.[].id]'; }
# Functions ftrace calls out of (a kprobe-multi link's are among them): the
# same count for both tools, whatever each one logs (cilium/pwru's progress
# bar counts its links).
traced_functions() { wc -l </sys/kernel/tracing/enabled_functions 2>/dev/null || echo 0; }

# run TOOL MODE: appends "ready_s exit_s send_s ns_per_hit attached" to $WORK/TOOL.MODE
run() {
  local tool=$1 mode=$2 bin filter args t0 t1 t2 t3 waited=0 st0 st1 send
  bin=$(bin_of "$tool")
  if [ "$tool" = none ]; then
    t0=$(now); flood "$PACKETS"; t1=$(now)
    echo "0 0 $(secs "$t0" "$t1") 0 0" >>"$WORK/none.$mode"
    return 0
  fi
  filter='tcp and port 9999' args=()
  [ "$mode" = match ] && { filter='udp and port 9'; args=(--output-file "$WORK/out.$tool"); }
  prog_ids >"$WORK/ids.before"
  local traced_before
  traced_before=$(traced_functions)
  t0=$(now)
  "$bin" --backend kprobe-multi "${args[@]}" "$filter" >/dev/null 2>"$WORK/err" &
  CUR=$!
  while ! grep -aq 'Listening for events' "$WORK/err" && kill -0 "$CUR" 2>/dev/null && [ $waited -lt 6000 ]; do
    sleep 0.05; waited=$((waited + 1))
  done
  t1=$(now)
  grep -aq 'Listening for events' "$WORK/err" || { echo "guest: $tool did not get ready"; tail -5 "$WORK/err"; kill -KILL "$CUR"; CUR=""; return 1; }
  prog_ids | jq --slurpfile old "$WORK/ids.before" '[.[] | select(. as $i | $old[0] | index($i) | not)]' >"$WORK/ids.$tool"
  local attached=$(($(traced_functions) - traced_before))
  st0=$(bpf_prog_stats "$WORK/ids.$tool")
  t2=$(now); flood "$PACKETS"; send=$(secs "$t2" "$(now)")
  st1=$(bpf_prog_stats "$WORK/ids.$tool")
  t3=$(now)
  kill -INT "$CUR"; wait "$CUR"; CUR=""
  local exit_s ns
  exit_s=$(secs "$t3" "$(now)")
  ns=$(echo "$st0 $st1" | awk '{ dc = $4 - $2; if (dc > 0) printf "%.1f", ($3 - $1) / dc; else print "nan" }')
  echo "$(secs "$t0" "$t1") $exit_s $send $ns $attached" >>"$WORK/$tool.$mode"
  echo "guest: $tool $mode: ready $(secs "$t0" "$t1") s, exit $exit_s s, flood $send s, $ns ns/hit, $attached functions"
}

for r in $(seq "$ROUNDS"); do
  for mode in nomatch match; do
    for i in $(seq 0 $((${#tools[@]} - 1))); do
      run "${tools[$(((r + i) % ${#tools[@]}))]}" "$mode" || exit 1
    done
  done
done

med() { [ -s "$WORK/$1.$2" ] && column_median "$WORK/$1.$2" "$3" || echo nan; }
for peer in peer baseline; do
  [[ " ${tools[*]} " == *" $peer "* ]] || continue
  name=$([ "$peer" = peer ] && echo "cilium/pwru" || echo "BASELINE_PWRU")
  for mode in nomatch match; do
    o=$(med ours "$mode" 4) p=$(med "$peer" "$mode" 4)
    result hitcost "ns per hit (bpf_stats), $mode filter, ours vs $name (median of $ROUNDS)" "$o ns" "$p ns" "$(ratio "$o" "$p")" "target <= 0.5; kprobe-multi, $PACKETS UDP packets across a veth"
  done
  o=$(med ours nomatch 1) p=$(med "$peer" nomatch 1)
  result hitcost "start to ready, ours vs $name" "$o s" "$p s" "$(ratio "$o" "$p")" "kprobe-multi"
  o=$(med ours nomatch 2) p=$(med "$peer" nomatch 2)
  result hitcost "SIGINT to exit, ours vs $name" "$o s" "$p s" "$(ratio "$o" "$p")" "kprobe-multi"
  o=$(med ours nomatch 5) p=$(med "$peer" nomatch 5)
  result hitcost "functions attached, ours vs $name" "$o" "$p" "$(ratio "$o" "$p")" "kprobe-multi"
done
n=$(med none nomatch 3)
for tool in "${tools[@]}"; do
  [ "$tool" = none ] && continue
  s=$(med "$tool" nomatch 3)
  result hitcost "flood send time with a non-matching filter, $tool vs no tracer" "$s s" "$n s" "$(ratio "$s" "$n")" "the full cost per packet, kprobe dispatch included; 1 = free"
done
