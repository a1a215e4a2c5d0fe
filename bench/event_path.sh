#!/usr/bin/env bash
# Bench 3a: the event path under a flood of matching packets.
#
# K UDP datagrams flood from one network namespace to another over a veth
# pair (10.78.0.1 -> 10.78.0.2:9, dropped by iptables in the receiver: every
# packet takes the same path, so each one makes the same number of events).
# Interleaved rounds: pwru text to a file, pwru JSON to a file, tcpdump
# writing the same packets to a pcap file. Rate = delivered / (flood start ->
# output stops growing). Loss is checked exactly: events printed + events
# pwru reports lost must equal K x (events per packet, measured on a slow
# run of 50 packets); anything else is unreported loss.
#
#   bench/event_path.sh [--quick]
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need_root; need tcpdump iptables python3 ip
[ -x "$PWRU" ] || { echo "SKIPPED: no pwru at $PWRU (build it)"; exit 77; }
ROUNDS=3 K=200000
[ "${1:-}" = --quick ] && { ROUNDS=1 K=50000; }

NS_A=pwru-bench-fa NS_B=pwru-bench-fb
WORK=$(mktemp -d /tmp/pwru-bench-flood.XXXXXX)
TOOL_PID=""
cleanup() {
  [ -n "$TOOL_PID" ] && { kill -KILL "$TOOL_PID" 2>/dev/null; wait "$TOOL_PID" 2>/dev/null; }
  ip netns del "$NS_A" 2>/dev/null; ip netns del "$NS_B" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
flood_pair || { echo "bench: cannot build the veth pair" >&2; exit 1; }

FILTER='udp and dst port 9'
start_pwru() {  # start_pwru OUT [--output-json]
  rm -f "$WORK/ready"
  "$PWRU" --ready-file "$WORK/ready" --output-file "$1" "${@:2}" "$FILTER" 2>"$WORK/pwru.err" &
  TOOL_PID=$!
  for _ in $(seq 600); do [ -e "$WORK/ready" ] && return 0; kill -0 "$TOOL_PID" 2>/dev/null || break; sleep 0.1; done
  cat "$WORK/pwru.err" >&2; return 1
}
stop_tool() { kill -INT "$TOOL_PID"; wait "$TOOL_PID" 2>/dev/null; TOOL_PID=""; }
events_in() { if [ "$2" = json ]; then grep -c '"func"' "$1"; else echo $(($(wc -l <"$1") - 1)); fi; }
summary_field() {  # printed | lost (ring buffer full + recursion misses)
  local line
  line=$(grep -a -o 'Summary: .*' "$WORK/pwru.err" | tail -n 1)
  case "$1" in
    printed) sed -n 's/.*Summary: \([0-9]*\) events printed.*/\1/p' <<<"$line" ;;
    lost) awk '{ for (i = 1; i <= NF; i++) { if ($i == "lost") l = $(i - 1); if ($i == "missed") m = $(i - 1) } } END { print l + m }' <<<"$line" ;;
  esac
}

# Events per packet, on a slow run.
start_pwru "$WORK/cal.txt" || exit 1
flood 50; sleep 1
stop_tool
E=$(awk -v n="$(events_in "$WORK/cal.txt" text)" 'BEGIN { printf "%g", n / 50 }')
log "events per packet: $E ($(cut -c 150- "$WORK/cal.txt" | awk '{ print $NF }' | sort | uniq -c | tr -s ' ' | tr '\n' ';'))"

for r in $(seq "$ROUNDS"); do
  for mode in text json tcpdump; do
    out=$WORK/out.$mode
    rm -f "$out"
    if [ "$mode" = tcpdump ]; then
      ip netns exec "$NS_B" tcpdump -i fvb -n -w "$out" "$FILTER" 2>"$WORK/td.err" &
      TOOL_PID=$!
      for _ in $(seq 100); do grep -q listening "$WORK/td.err" && break; sleep 0.1; done
    else
      start_pwru "$out" $([ "$mode" = json ] && echo --output-json) || exit 1
    fi
    t0=$(now)
    flood "$K"
    t2=$(settle "$out")
    stop_tool
    if [ "$mode" = tcpdump ]; then
      got=$(sed -n 's/^\([0-9]*\) packets captured.*/\1/p' "$WORK/td.err")
      lost=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$WORK/td.err")
      expect=$K
    else
      got=$(events_in "$out" "$mode")
      lost=$(summary_field lost)
      printed=$(summary_field printed)
      expect=$(awk -v k="$K" -v e="$E" 'BEGIN { printf "%d", k * e }')
      [ "$printed" = "$got" ] || log "round $r $mode: the file has $got events, the summary says $printed printed"
    fi
    rate=$(awk -v n="$got" -v a="$t0" -v b="$t2" 'BEGIN { printf "%.0f", n / (b - a) }')
    unreported=$((expect - got - lost))
    echo "$rate $got $lost $unreported $expect" >>"$WORK/res.$mode"
    log "round $r $mode: $got delivered, $lost reported lost, $unreported unreported (expected $expect), $rate/s"
  done
done
med() { column_median "$WORK/res.$1" "$2"; }
tot() { column_total "$WORK/res.$1" "$2"; }
L=$(load_note)
for mode in text json; do
  result events "pwru $mode events/s delivered vs tcpdump packets/s written (median of $ROUNDS)" "$(med "$mode" 1)/s" "$(med tcpdump 1)/s" "$(ratio "$(med "$mode" 1)" "$(med tcpdump 1)")" \
    "$K packets x $E events; lost (reported) $(tot "$mode" 3), unreported $(tot "$mode" 4); $L"
done
result events "tcpdump packets captured / dropped by kernel" "$(tot tcpdump 2)" "$(tot tcpdump 3) dropped" "n/a" "unaccounted $(tot tcpdump 4)"
