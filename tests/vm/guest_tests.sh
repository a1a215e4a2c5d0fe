#!/usr/bin/env bash
# shellcheck disable=SC2317  # the case_* functions are called by name
# The vm layer's cases; runs INSIDE the guest (tests/vm/vm_tests.sh boots it through
# tests/vm/run-in-vm.sh), as root, on a kernel with kprobes and kprobe.multi.
#
#   tests/vm/guest_tests.sh PATH_TO_PWRU
#
# Cases:
#   dry_run_auto        --dry-run chooses kprobe-multi and lists thousands of functions
#   drop_kprobe_multi   the seed scenario (veth, iptables DROP in a netns, one TCP SYN)
#                       with the auto backend, which must be kprobe-multi
#   drop_kprobe         the same with --backend kprobe (classic, one kprobe per function);
#                       then attach/detach times over a subset, one by one as libbpf
#                       would (PWRU_KPROBE_THREADS=1 PWRU_KPROBE_PIN=0 PWRU_KPROBE_ENABLE=1)
#                       against the default
#   track_skb_dnat      --filter-track-skb follows a SYN past an iptables DNAT that
#                       rewrites the destination the pcap filter matched on
#   track_skb_clone     --filter-track-skb follows a clone: a packet socket's copy of a
#                       SYN made after a DNAT, which the filter alone would not select;
#                       with kprobe-multi (auto), then --backend kprobe on that path's functions
#   mtu_meta            the talk's MTU case: a route claims MTU 1500 over a veth of
#                       MTU 900; a 1428-byte UDP datagram with DF dies with LEN > MTU
#   multi_split         a kprobe-multi batch with functions that exist but cannot be
#                       probed (PWRU_NO_TRACEFS_FILTER=1) is split; only they are skipped
#   output_stack        --output-stack frames are symbolized (name+0xoff)
#   trace_tc            --filter-trace-tc / --filter-trace-xdp: a tc and an XDP program of
#                       our own on a veth in a netns; both appear as "(tc)" / "(xdp)" lines
#   track_xdp           --filter-track-skb --filter-trace-xdp: the skb of a frame that matched
#                       in XDP is followed although its mark fails --filter-mark
#   non_skb_funcs       --filter-non-skb-funcs nft_do_chain with the iptables DROP: its line
#                       carries the dropped SYN's skb
#   no_drops            TCP (connect, bytes both ways, close), UDP both ways, ICMP echo and
#                       reply: 0 dropped in the summary, no reason on any event line
#   real_drops          a closed port, an iptables DROP, a too-big DF datagram, no route:
#                       exactly those drops, with the kernel's reason and place (--output-caller)
# Each prints `PASS name` or `FAIL name: why`; the last line is
# `vm: N passed, M failed`. Exit status 0 only when nothing failed.
#
# Environment: VM_READY_TIMEOUT (s, 240), VM_STOP_TIMEOUT (s, 240), VM_CASES (names to
# run, space-separated; default all).
set -uo pipefail

PWRU=${1:-}
READY_TIMEOUT=${VM_READY_TIMEOUT:-240}
STOP_TIMEOUT=${VM_STOP_TIMEOUT:-240}
CASES=${VM_CASES:-dry_run_auto drop_kprobe_multi no_drops real_drops track_skb_dnat mtu_meta multi_split output_stack trace_tc tc_only bpf_helpers track_xdp xdp_members track_veth_xdp non_skb_funcs track_skb_clone drop_kprobe}

PASSED=0
FAILED=0
pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1: $2"; FAILED=$((FAILED + 1)); }
note() { echo "  $*"; }
now() { echo "${EPOCHREALTIME/,/.}"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
finish() {
  echo "vm: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
  exit
}

if [ -z "$PWRU" ] || [ ! -x "$PWRU" ]; then
  fail setup "no pwru binary at '${PWRU}'"
  finish
fi
WORK=$(mktemp -d /tmp/pwru-vm-tests.XXXXXX)
CUR_PID=""
CUR_NS=""
CUR_VETH=""
cleanup_case() {
  if [ -n "$CUR_PID" ]; then
    kill -KILL -- "-$CUR_PID" 2>/dev/null || kill -KILL "$CUR_PID" 2>/dev/null
    wait "$CUR_PID" 2>/dev/null
    CUR_PID=""
  fi
  if [ -n "$CUR_NS" ]; then ip netns del "$CUR_NS" 2>/dev/null; CUR_NS=""; fi
  if [ -n "$CUR_VETH" ]; then ip link del "$CUR_VETH" 2>/dev/null; CUR_VETH=""; fi
}
trap 'cleanup_case; rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "vm: kernel $(uname -r), $(nproc) CPUs, pwru $PWRU"
echo "vm: available_filter_functions $(wc -l </sys/kernel/tracing/available_filter_functions 2>/dev/null || echo ?)," \
  "kprobe blacklist $(wc -l </sys/kernel/debug/kprobes/blacklist 2>/dev/null || echo ?)"

show() {  # show FILE LABEL [LINES]: the file's last lines, indented
  [ -s "$1" ] || { note "($2: empty)"; return; }
  note "---- $2 (last ${3:-40} lines) ----"
  tail -n "${3:-40}" "$1" | sed 's/^/  | /'
}

# ---------------------------------------------------------------------------
case_dry_run_auto() {
  local name=dry_run_auto out=$WORK/dry.out err=$WORK/dry.err t0 t1 rc=0 backend n
  t0=$(now)
  timeout 300 "$PWRU" --dry-run >"$out" 2>"$err" || rc=$?
  t1=$(now)
  backend=$(sed -n 's/^backend: //p' "$out" | head -n 1)
  n=$(sed -n 's/^functions: \([0-9]*\).*/\1/p' "$out" | head -n 1)
  note "dry run: $(secs "$t0" "$t1") s, exit $rc"
  note "backend: ${backend:-?}"
  note "$(grep -m1 '^functions: ' "$out" || echo 'functions: ?')"
  if [ "$rc" -ne 0 ]; then show "$err" "pwru stderr"; fail "$name" "pwru --dry-run exited with $rc"; return; fi
  case "$backend" in
    kprobe-multi*) ;;
    *) show "$err" "pwru stderr"; fail "$name" "expected 'backend: kprobe-multi', got '${backend:-nothing}'"; return ;;
  esac
  if [ -z "$n" ] || [ "$n" -lt 1000 ]; then
    fail "$name" "expected thousands of functions, got '${n:-none}'"; return
  fi
  # For comparison: what the classic kprobe backend would attach.
  if timeout 300 "$PWRU" --dry-run --backend kprobe >"$WORK/dry-kprobe.out" 2>/dev/null; then
    note "with --backend kprobe: $(grep -m1 '^functions: ' "$WORK/dry-kprobe.out" || echo '?')"
  fi
  pass "$name"
}

# When the kernel rejected the programs, the end of the verifier log says why:
# run once more with --debug and show it.
debug_rejection() {
  local dir=$1 rc=0
  shift
  grep -q 'rejected the probe programs' "$dir/pwru.err" || return 0
  timeout 60 "$PWRU" "$@" --debug --output-tuple 'tcp and dst port 8080' \
    >/dev/null 2>"$dir/debug.err" </dev/null || rc=$?
  if [ "$rc" -ge 128 ] && [ "$rc" -ne 124 ]; then
    note "pwru --debug itself died with signal $((rc - 128))"
  fi
  if grep -q 'END PROG LOAD LOG' "$dir/debug.err"; then
    note "---- end of the verifier log (pwru --debug) ----"
    grep -B 12 -m 1 -- '-- END PROG LOAD LOG --' "$dir/debug.err" | sed 's/^/  | /'
  else
    show "$dir/debug.err" "pwru --debug stderr" 15
  fi
}

# ---------------------------------------------------------------------------
# Shared steps.

# make_pair X: netns pwru-vm-nsX with vnX (10.99.X.2/24) <-> vhX (10.99.X.1/24) in
# the root netns. Sets NS, VH, VN, A (root side), B (netns side).
make_pair() {
  local x=$1
  NS=pwru-vm-ns$x VH=vh$x VN=vn$x A=10.99.$x.1 B=10.99.$x.2
  CUR_NS=$NS
  ip netns add "$NS" || return 1
  ip link add "$VH" type veth peer name "$VN" netns "$NS" || return 1
  CUR_VETH=$VH
  ip addr add "$A/24" dev "$VH" && ip link set "$VH" up &&
    ip -n "$NS" addr add "$B/24" dev "$VN" && ip -n "$NS" link set "$VN" up &&
    ip -n "$NS" link set lo up
}

# pwru_start DIR COMMAND...: COMMAND (pwru, or env ... pwru) in the background,
# its own process group, SIGINT not ignored; waits for its ready file. Output in
# DIR/pwru.out and DIR/pwru.err. Sets CUR_PID, T_START, T_READY; returns 1 with
# WHY set when it was not ready.
pwru_start() {
  local dir=$1
  shift
  mkdir -p "$dir"
  rm -f "$dir/ready"
  T_START=$(now)
  set -m
  "$@" --ready-file "$dir/ready" >"$dir/pwru.out" 2>"$dir/pwru.err" &
  CUR_PID=$!
  set +m
  local waited=0
  while [ ! -e "$dir/ready" ] && kill -0 "$CUR_PID" 2>/dev/null && [ "$waited" -lt $((READY_TIMEOUT * 10)) ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  T_READY=$(now)
  [ -e "$dir/ready" ] && return 0
  if kill -0 "$CUR_PID" 2>/dev/null; then
    WHY="pwru was not ready after ${READY_TIMEOUT}s"
  else
    wait "$CUR_PID"
    WHY="pwru exited with status $? before it was ready"
    CUR_PID=""
  fi
  show "$dir/pwru.err" "pwru stderr"
  return 1
}

# pwru_stop: SIGINT, bounded wait. Sets STOP_RC, T_STOP (SIGINT to exit, s),
# STOPPED (0 when it had to be killed).
pwru_stop() {
  local t_int waited=0
  t_int=$(now)
  kill -INT "$CUR_PID" 2>/dev/null
  while kill -0 "$CUR_PID" 2>/dev/null && [ "$waited" -lt $((STOP_TIMEOUT * 10)) ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  T_STOP=$(secs "$t_int" "$(now)")
  STOPPED=1
  if kill -0 "$CUR_PID" 2>/dev/null; then
    STOPPED=0
    kill -KILL -- "-$CUR_PID" 2>/dev/null || kill -KILL "$CUR_PID" 2>/dev/null
  fi
  wait "$CUR_PID" 2>/dev/null
  STOP_RC=$?
  CUR_PID=""
}

# stop_verdict: "" when pwru stopped cleanly, else why not.
stop_verdict() {
  if [ "$STOPPED" -eq 0 ]; then echo "pwru did not exit within ${STOP_TIMEOUT}s of SIGINT"
  elif [ "$STOP_RC" -ne 0 ]; then echo "pwru exited with status $STOP_RC after SIGINT"
  fi
}

# The attach/detach lines of a run, for the case output.
note_timings() {
  local err=$1
  note "ready: $(secs "$T_START" "$T_READY") s from start; exit: $T_STOP s from SIGINT"
  grep -a -m1 -o 'Attached [0-9]* functions in .*' "$err" | sed 's/^/  /' || true
  grep -a -m1 -o 'Detached .*' "$err" | sed 's/^/  /' || true
}

# One TCP SYN from the root netns to $1:$2; a DROP makes it time out.
send_syn() {
  local trc=0
  timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null || trc=$?
  [ "$trc" -eq 124 ] || note "the connection attempt to $1:$2 ended with $trc, not a timeout (124)"
}

# ---------------------------------------------------------------------------
# The seed scenario: root netns 10.99.X.1 (veth vhX) <-> netns (10.99.X.2, vnX),
# `iptables -A INPUT -p tcp --dport 8080 -j DROP` in the netns, one SYN from the root.
drop_case() {
  local name=$1 x=$2 expect_label=$3
  shift 3
  local backend_args=("$@")
  local dir=$WORK/$name
  mkdir -p "$dir"
  if ! make_pair "$x"; then fail "$name" "could not build the veth/netns pair"; return; fi
  if ! ip netns exec "$NS" iptables -w 5 -A INPUT -p tcp --dport 8080 -j DROP 2>"$dir/ipt.err"; then
    show "$dir/ipt.err" "iptables stderr"; fail "$name" "iptables -A INPUT ... -j DROP failed in $NS"; return
  fi
  local WHY=""
  if ! pwru_start "$dir" "$PWRU" "${backend_args[@]}" --output-tuple 'tcp and dst port 8080'; then
    debug_rejection "$dir" "${backend_args[@]}"
    fail "$name" "$WHY"; return
  fi
  note "$(grep -a -m1 -o 'Attaching .*' "$dir/pwru.err" || echo 'no Attaching line')"
  note "progress: $(tr '\r' '\n' <"$dir/pwru.err" | grep -E '^[0-9]+ / [0-9]+ \[' | tail -n 1 || true)"
  note "$(grep -a -m1 -o 'Attached (ignored [0-9]*)' "$dir/pwru.err" || echo 'no "Attached (ignored N)" line')"
  send_syn "$B" 8080
  sleep 1
  pwru_stop
  note_timings "$dir/pwru.err"
  note "events: $(($(wc -l <"$dir/pwru.out") - 1)) lines (header excluded)"

  local why lines flow="$B:8080(tcp)"
  why=$(stop_verdict)
  lines=$(grep -F -- "$flow" "$dir/pwru.out")
  if [ -n "$why" ]; then :
  elif ! grep -q "Attaching kprobes (via $expect_label)" "$dir/pwru.err"; then
    why="stderr has no 'Attaching kprobes (via $expect_label)'"
  elif ! grep -qE ' (ip_output|ip_local_out)$' <<<"$lines"; then
    why="no ip_output / ip_local_out line for $flow"
  elif ! grep -qE ' nf_hook_slow$' <<<"$lines"; then
    why="no nf_hook_slow line for $flow"
  elif ! grep -qF 'sk_skb_reason_drop(SKB_DROP_REASON_NETFILTER_DROP)' <<<"$lines"; then
    why="no sk_skb_reason_drop(SKB_DROP_REASON_NETFILTER_DROP) line for $flow"
  fi
  if [ -n "$why" ]; then
    show "$dir/pwru.err" "pwru stderr"
    show "$dir/pwru.out" "pwru stdout" 60
    fail "$name" "$why"; return 1
  fi
  note "drop line: $(grep -F 'sk_skb_reason_drop(' <<<"$lines" | head -n 1 | sed 's/  */ /g')"
  pass "$name"
}

case_drop_kprobe_multi() { drop_case drop_kprobe_multi 1 kprobe-multi; }

# Classic kprobes: the seed trajectory over every function, then attach and
# teardown measured over a subset twice in this same VM: one by one the way
# libbpf goes (events enabled on CPU 0, caller unpinned) and with our default.
KPROBE_SUBSET_RE='skb_.*'
case_drop_kprobe() {
  drop_case drop_kprobe 2 kprobe --backend kprobe || return
  local name=drop_kprobe_teardown dir=$WORK/teardown mode t_serial="" t_default="" a_serial="" a_default=""
  for mode in serial default; do
    local WHY=""
    local -a envs=(env)
    [ "$mode" = serial ] && envs=(env PWRU_KPROBE_THREADS=1 PWRU_KPROBE_PIN=0 PWRU_KPROBE_ENABLE=1)
    if ! pwru_start "$dir/$mode" "${envs[@]}" "$PWRU" --backend kprobe --filter-func "$KPROBE_SUBSET_RE" 'tcp and port 9'; then
      fail "$name" "$mode: $WHY"; return
    fi
    sleep 1
    pwru_stop
    local why
    why=$(stop_verdict)
    if [ -n "$why" ]; then show "$dir/$mode/pwru.err" "pwru stderr"; fail "$name" "$mode: $why"; return; fi
    local att det
    att=$(grep -a -m1 -o 'Attached [0-9]* functions in [0-9.]* s' "$dir/$mode/pwru.err" | awk '{print $5}')
    det=$(grep -a -m1 -o 'Detached [0-9]* kprobes in [0-9.]* s' "$dir/$mode/pwru.err" | awk '{print $5}')
    note "$mode: $(grep -a -m1 -o 'Attached [0-9]* functions in .*' "$dir/$mode/pwru.err")"
    note "$mode: $(grep -a -m1 -o 'Detached .*' "$dir/$mode/pwru.err")"
    if [ -z "$att" ] || [ -z "$det" ]; then
      show "$dir/$mode/pwru.err" "pwru stderr"; fail "$name" "$mode: no 'Attached N functions in' / 'Detached N kprobes in' line"; return
    fi
    if [ "$mode" = serial ]; then t_serial=$det a_serial=$att; else t_default=$det a_default=$att; fi
  done
  note "$(awk -v s="$t_serial" -v d="$t_default" -v as="$a_serial" -v ad="$a_default" 'BEGIN {
    printf "subset: detach %.2f s one by one vs %.2f s default (ratio %.2f); attach %.2f s vs %.2f s (ratio %.2f)",
      s, d, (d > 0 ? s / d : 0), as, ad, (ad > 0 ? as / ad : 0) }')"
  # --filter-kprobe-batch (pwru v1.0.6): that many kprobes in flight, attaching and detaching
  local WHY=""
  if ! pwru_start "$dir/batch" env "$PWRU" --backend kprobe --filter-kprobe-batch 4 --filter-func "$KPROBE_SUBSET_RE" \
    'tcp and port 9'; then
    fail "$name" "--filter-kprobe-batch 4: $WHY"; return
  fi
  sleep 1
  pwru_stop
  local why
  why=$(stop_verdict)
  if [ -z "$why" ] && ! grep -aqE 'Attached [0-9]+ functions in [0-9.]+ s \(4 threads\)' "$dir/batch/pwru.err"; then
    why="--filter-kprobe-batch 4: the attach did not run 4 at once"
  elif [ -z "$why" ] && ! grep -aqE 'Detached [0-9]+ kprobes in [0-9.]+ s.*\(4 threads' "$dir/batch/pwru.err"; then
    why="--filter-kprobe-batch 4: the detach did not run 4 at once"
  fi
  if [ -n "$why" ]; then show "$dir/batch/pwru.err" "pwru stderr"; fail "$name" "$why"; return; fi
  note "batch 4: $(grep -a -m1 -o 'Attached [0-9]* functions in .*' "$dir/batch/pwru.err"); $(grep -a -m1 -o 'Detached .*' "$dir/batch/pwru.err")"
  pass "$name"
}


# ---------------------------------------------------------------------------
# --filter-track-skb across a DNAT: the filter names the original destination;
# in the netns a DNAT rewrites it to 10.99.3.3:9090, where a DROP ends it. The
# same skb must go on being traced, now showing the new address.
case_track_skb_dnat() {
  local name=track_skb_dnat dir=$WORK/track_skb_dnat new=10.99.3.3
  mkdir -p "$dir"
  if ! make_pair 3 || ! ip -n "$NS" addr add "$new/24" dev "$VN"; then
    fail "$name" "could not build the veth/netns pair"; return
  fi
  if ! ip netns exec "$NS" iptables -w 5 -t nat -A PREROUTING -p tcp -d "$B" --dport 8080 \
      -j DNAT --to-destination "$new:9090" 2>"$dir/ipt.err" ||
    ! ip netns exec "$NS" iptables -w 5 -A INPUT -p tcp --dport 9090 -j DROP 2>>"$dir/ipt.err"; then
    show "$dir/ipt.err" "iptables stderr"; fail "$name" "iptables DNAT/DROP rules failed in $NS"; return
  fi
  local WHY=""
  if ! pwru_start "$dir" "$PWRU" --filter-track-skb --output-tuple "tcp and dst host $B and dst port 8080"; then
    fail "$name" "$WHY"; return
  fi
  send_syn "$B" 8080
  sleep 1
  pwru_stop
  note_timings "$dir/pwru.err"
  local out=$dir/pwru.out why before after same
  why=$(stop_verdict)
  # SKB addresses seen with the original and with the rewritten destination
  # (files, not <(...): the guest's devtmpfs has no /dev/fd).
  grep -F -- "->$B:8080(tcp)" "$out" | awk '{print $1}' | sort -u >"$dir/skb.before"
  grep -F -- "->$new:9090(tcp)" "$out" | awk '{print $1}' | sort -u >"$dir/skb.after"
  comm -12 "$dir/skb.before" "$dir/skb.after" >"$dir/skb.both"
  before=$(cat "$dir/skb.before")
  after=$(cat "$dir/skb.after")
  same=$(grep -c . "$dir/skb.both" || true)
  note "skbs: $(grep -c . <<<"$before") with $B:8080, $(grep -c . <<<"$after") with $new:9090, $same with both"
  if [ -n "$why" ]; then :
  elif [ -z "$before" ]; then why="no event with the original destination $B:8080"
  elif [ -z "$after" ]; then why="no event after the DNAT (destination $new:9090): the skb was not tracked"
  elif [ "$same" -lt 1 ]; then why="no skb seen both before and after the DNAT"
  # (No `grep | grep -q` under pipefail: -q quits early and the first grep dies of SIGPIPE.)
  elif ! grep -F -- "->$new:9090(tcp)" "$out" | grep -F 'sk_skb_reason_drop(SKB_DROP_REASON_NETFILTER_DROP)' >/dev/null; then
    why="the tracked skb's drop (NETFILTER_DROP at $new:9090) is missing"
  fi
  if [ -n "$why" ]; then
    show "$dir/pwru.err" "pwru stderr"; show "$out" "pwru stdout" 60; fail "$name" "$why"; return
  fi
  local skb
  skb=$(head -n 1 "$dir/skb.both")
  note "skb $skb: $(grep -F -- "$skb" "$out" | grep -F -- "->$B:8080(tcp)" | tail -n 1 | awk '{print $NF, $(NF-1)}')"
  note "      then: $(grep -F -- "$skb" "$out" | grep -F -- "->$new:9090(tcp)" | head -n 1 | awk '{print $NF, $(NF-1)}')"
  pass "$name"
}

# ---------------------------------------------------------------------------
# The talk's MTU case: a route claims MTU 1500 (locked) over a veth pair of MTU
# 900, so the socket builds a 1428-byte datagram with DF; veth's peer refuses
# it. With --output-meta the last events show LEN > MTU where it dies.
case_mtu_meta() {
  local name=mtu_meta dir=$WORK/mtu_meta
  mkdir -p "$dir"
  if ! make_pair 4 || ! ip link set "$VH" mtu 900 || ! ip -n "$NS" link set "$VN" mtu 900 ||
    ! ip route replace 10.99.4.0/24 dev "$VH" src "$A" mtu lock 1500; then
    fail "$name" "could not build the veth pair with MTU 900 and the route with MTU 1500"; return
  fi
  local WHY=""
  if ! pwru_start "$dir" "$PWRU" --output-meta --output-tuple 'udp and dst port 4444'; then
    fail "$name" "$WHY"; return
  fi
  # IP_MTU_DISCOVER (10) = IP_PMTUDISC_DO (2): DF set, no local fragmentation.
  local src="import socket,time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2)
for _ in range(2):
    s.sendto(b'x' * 1400, ('$B', 4444)); time.sleep(0.5)"
  timeout 10 python3 -c "$src" 2>"$dir/send.err" || note "sender: $(head -n 1 "$dir/send.err")"
  sleep 1
  pwru_stop
  note_timings "$dir/pwru.err"
  local out=$dir/pwru.out why flow drop mtu len
  why=$(stop_verdict)
  flow=$(grep -F -- "->$B:4444(udp)" "$out")
  # Columns from the right: ... MTU LEN TUPLE FUNC.
  drop=$(grep -E ' (sk_skb_reason_drop|kfree_skb)[(]' <<<"$flow" | tail -n 1)
  read -r mtu len <<<"$(awk '{print $(NF-3), $(NF-2)}' <<<"$drop")"
  if [ -n "$why" ]; then :
  elif [ -z "$flow" ]; then why="no event for the datagram to $B:4444"
  elif [ -z "$drop" ]; then why="the datagram's drop is not in the trajectory"
  elif [ "${mtu:-0}" != 900 ] || [ "${len:-0}" -le 900 ]; then
    why="expected MTU 900 and LEN > 900 at the drop, got MTU '${mtu:-}' LEN '${len:-}'"
  fi
  if [ -n "$why" ]; then
    show "$dir/pwru.err" "pwru stderr"; show "$out" "pwru stdout" 60; fail "$name" "$why"; return
  fi
  note "the datagram's last events up to its drop:"
  grep -F -- "$(awk '{print $1}' <<<"$drop")" "$out" | grep -F -- "->$B:4444(udp)" |
    grep -B 4 -m 1 -E ' (sk_skb_reason_drop|kfree_skb)[(]' |
    awk '{printf "  | iface=%s mtu=%s len=%s %s\n", $(NF-5), $(NF-3), $(NF-2), $NF}'
  pass "$name"
}

# ---------------------------------------------------------------------------
# A kprobe-multi batch that fails is split until the culprits are isolated.
# Culprits: functions with an skb argument in BTF and an address in kallsyms
# that ftrace cannot attach to (absent from available_filter_functions).
# PWRU_NO_TRACEFS_FILTER=1 keeps them in the plan, so the kernel refuses the
# batch and only the split finds them.
case_multi_split() {
  local name=multi_split dir=$WORK/multi_split
  mkdir -p "$dir"
  if ! PWRU_NO_TRACEFS_FILTER=1 timeout 300 "$PWRU" --dry-run --backend kprobe-multi >"$dir/plan" 2>"$dir/plan.err"; then
    show "$dir/plan.err" "pwru --dry-run stderr"; fail "$name" "pwru --dry-run failed"; return
  fi
  awk '/^  / {print $1}' "$dir/plan" | sort -u >"$dir/btf"
  sed 's/[[:space:]].*//' /sys/kernel/tracing/available_filter_functions | sort -u >"$dir/ftrace"
  awk '$2 ~ /^[tTwW]$/ {print $3}' /proc/kallsyms | sort -u >"$dir/kallsyms"
  comm -23 "$dir/btf" "$dir/ftrace" | comm -12 - "$dir/kallsyms" | head -n 3 >"$dir/culprits"
  comm -12 "$dir/btf" "$dir/ftrace" | head -n 60 >"$dir/good"
  local nc ng
  nc=$(grep -c . "$dir/culprits")
  ng=$(grep -c . "$dir/good")
  note "BTF skb functions $(grep -c . "$dir/btf"); in kallsyms but not traceable: $(comm -23 "$dir/btf" "$dir/ftrace" | comm -12 - "$dir/kallsyms" | grep -c .)"
  note "culprits: $(tr '\n' ' ' <"$dir/culprits")"
  if [ "$nc" -eq 0 ]; then fail "$name" "no function is in BTF and kallsyms but not traceable: nothing to split on"; return; fi
  local re
  re="($(cat "$dir/culprits" "$dir/good" | paste -sd '|'))"
  local WHY=""
  if ! pwru_start "$dir" env PWRU_NO_TRACEFS_FILTER=1 "$PWRU" --backend kprobe-multi --filter-func "$re" 'tcp and port 9'; then
    fail "$name" "$WHY"; return
  fi
  pwru_stop
  local err=$dir/pwru.err why summary attached skipped splits c
  why=$(stop_verdict)
  summary=$(grep -a -m1 -o 'Attached [0-9]* functions in .*' "$err")
  note "$summary"
  attached=$(sed -n 's/^Attached \([0-9]*\) functions.*/\1/p' <<<"$summary")
  skipped=$(sed -n 's/.*skipped \([0-9]*\)$/\1/p' <<<"$summary")
  splits=$(sed -n 's/.*, \([0-9]*\) failed batches split.*/\1/p' <<<"$summary")
  if [ -n "$why" ]; then :
  elif [ -z "$summary" ]; then why="no 'Attached N functions' line"
  elif [ "$attached" != "$ng" ] || [ "$skipped" != "$nc" ]; then
    why="expected $ng attached and $nc skipped, got ${attached:-?} and ${skipped:-?}"
  elif [ -z "$splits" ] || [ "$splits" -lt 1 ]; then why="no failed batch was split"
  else
    while read -r c; do
      grep -aq "skipped $c: " "$err" || { why="culprit $c is not reported as skipped"; break; }
    done <"$dir/culprits"
  fi
  if [ -n "$why" ]; then show "$err" "pwru stderr"; fail "$name" "$why"; return; fi
  grep -a 'skipped [^0-9]' "$err" | sed 's/^.*skipped /  skipped: /'
  pass "$name"
}

# ---------------------------------------------------------------------------
# --output-stack: each event's kernel stack, symbolized with offsets.
case_output_stack() {
  local name=output_stack dir=$WORK/output_stack
  mkdir -p "$dir"
  if ! make_pair 5; then fail "$name" "could not build the veth/netns pair"; return; fi
  if ! ip netns exec "$NS" iptables -w 5 -A INPUT -p tcp --dport 8080 -j DROP 2>"$dir/ipt.err"; then
    show "$dir/ipt.err" "iptables stderr"; fail "$name" "iptables -A INPUT ... -j DROP failed in $NS"; return
  fi
  local WHY=""
  if ! pwru_start "$dir" "$PWRU" --output-stack --output-tuple 'tcp and dst port 8080'; then
    fail "$name" "$WHY"; return
  fi
  send_syn "$B" 8080
  sleep 1
  pwru_stop
  note_timings "$dir/pwru.err"
  local out=$dir/pwru.out why frames known
  why=$(stop_verdict)
  frames=$(grep -cE '^[[:space:]]*[A-Za-z_][A-Za-z0-9_.]*\+0x[0-9a-f]+' "$out" || true)
  known=$(grep -oE '(^|[[:space:]])(ip_finish_output2|__dev_queue_xmit|ip_output|ip_local_out|__ip_queue_xmit|__tcp_transmit_skb|tcp_connect)\+0x[0-9a-f]+' "$out" |
    sed 's/^[[:space:]]*//; s/+.*//' | sort -u | paste -sd ' ')
  note "symbolized frames: $frames; known callers among them: ${known:-none}"
  if [ -n "$why" ]; then :
  elif [ "$frames" -lt 5 ]; then why="fewer than 5 symbolized stack frames (name+0xoff)"
  elif [ -z "$known" ]; then why="none of ip_finish_output2, __dev_queue_xmit, ip_output, ... in the stacks"
  fi
  if [ -n "$why" ]; then show "$dir/pwru.err" "pwru stderr"; show "$out" "pwru stdout" 60; fail "$name" "$why"; return; fi
  note "one stack:"
  grep -m1 -A6 -E ' (ip_finish_output2|__dev_queue_xmit)$' "$out" | sed 's/^/  | /'
  pass "$name"
}

# ---------------------------------------------------------------------------
# Helpers of the trace_tc and non_skb_funcs cases: pwru in the background (its own
# process group) with --ready-file, and its bounded stop. Output in DIR/pwru.out,
# DIR/pwru.err.
bg_pwru_start() {  # bg_pwru_start DIR PWRU_ARGS...: 0 once ready
  local dir=$1 waited=0
  shift
  set -m
  "$PWRU" --ready-file "$dir/ready" "$@" >"$dir/pwru.out" 2>"$dir/pwru.err" &
  CUR_PID=$!
  set +m
  while [ ! -e "$dir/ready" ] && kill -0 "$CUR_PID" 2>/dev/null && [ "$waited" -lt $((READY_TIMEOUT * 10)) ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  [ -e "$dir/ready" ]
}

bg_pwru_stop() {  # SIGINT, bounded wait; returns pwru's exit status (255: killed)
  local waited=0 rc=0
  kill -INT "$CUR_PID" 2>/dev/null
  while kill -0 "$CUR_PID" 2>/dev/null && [ "$waited" -lt $((STOP_TIMEOUT * 10)) ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$CUR_PID" 2>/dev/null; then
    kill -KILL -- "-$CUR_PID" 2>/dev/null || kill -KILL "$CUR_PID" 2>/dev/null
    wait "$CUR_PID" 2>/dev/null
    CUR_PID=""
    return 255
  fi
  wait "$CUR_PID"; rc=$?
  CUR_PID=""
  return "$rc"
}

bg_netns_pair() {  # bg_netns_pair NS VH VN A B: root A (VH) <-> NS B (VN)
  local ns=$1 vh=$2 vn=$3 a=$4 b=$5
  CUR_NS=$ns
  ip netns add "$ns" &&
    ip link add "$vh" type veth peer name "$vn" netns "$ns" &&
    { CUR_VETH=$vh; ip addr add "$a/24" dev "$vh"; } &&
    ip link set "$vh" up &&
    ip -n "$ns" addr add "$b/24" dev "$vn" &&
    ip -n "$ns" link set "$vn" up &&
    ip -n "$ns" link set lo up
}

trace_one_syn() {  # trace_one_syn NAME DIR DST PWRU_ARGS...: pwru (in DIR) around one SYN to DST:8080;
  # returns pwru's exit status (255: killed after SIGINT), or 254 when it never became ready (FAIL said so)
  local name=$1 dir=$2 dst=$3 rc=0
  shift 3
  rm -f "$dir/ready"
  if ! bg_pwru_start "$dir" "$@"; then
    show "$dir/pwru.err" "pwru stderr"; fail "$name" "pwru did not become ready"; return 254
  fi
  timeout 3 bash -c "exec 3<>/dev/tcp/$dst/8080" 2>/dev/null
  sleep 1
  bg_pwru_stop || rc=$?
  return "$rc"
}

target_pair() {  # target_pair NAME DIR NS VH VN A B HOOK...: the veth/netns pair with our test
  # programs (tests/bpf_progs/trace_targets.bpf.c) on VN: HOOK tc (clsact ingress) and/or xdp.
  # On failure: FAIL NAME with the reason, and 1.
  local name=$1 dir=$2 ns=$3 vh=$4 vn=$5 a=$6 b=$7 src obj hook
  shift 7
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../bpf_progs" && pwd)/trace_targets.bpf.c
  obj=$dir/trace_targets.bpf.o
  mkdir -p "$dir"
  if ! clang -g -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$src" -o "$obj" 2>"$dir/clang.err"; then
    show "$dir/clang.err" "clang stderr"; fail "$name" "could not build $src"; return 1
  fi
  if ! bg_netns_pair "$ns" "$vh" "$vn" "$a" "$b"; then
    fail "$name" "could not build the veth/netns pair"; return 1
  fi
  for hook in "$@"; do
    if [ "$hook" = tc ]; then
      if ! ip netns exec "$ns" tc qdisc add dev "$vn" clsact 2>"$dir/tc.err" ||
        ! ip netns exec "$ns" tc filter add dev "$vn" ingress bpf da obj "$obj" sec tc 2>>"$dir/tc.err"; then
        show "$dir/tc.err" "tc stderr"; fail "$name" "could not attach the tc program to $vn"; return 1
      fi
    elif ! ip -n "$ns" link set dev "$vn" xdp obj "$obj" sec xdp 2>"$dir/xdp.err"; then
      show "$dir/xdp.err" "ip link ... xdp stderr"; fail "$name" "could not attach the XDP program to $vn"; return 1
    fi
  done
}

# ---------------------------------------------------------------------------
# --filter-track-skb follows clones (kprobe + kretprobe on skb_clone & co.). The SYN
# leaves netns pwru-vm-ns12 (10.99.12.2, vn12) for 10.99.12.1:8080, which the filter
# names; the netns's nat OUTPUT rewrites it to 10.99.12.3:9090 (the root side's second
# address: no listener, a RST answers). A packet socket bound to vn12 makes
# dev_queue_xmit_nit clone the SYN at transmit, after the DNAT: the clone never
# carries 10.99.12.1:8080, so only the clone tracking can put it in the trajectory.
# (neigh_probe's clone of the SYN waiting for ARP, handed to arp_solicit, is another
# such skb; the case notes every one and requires the packet socket's.)
# Run with the auto backend (kprobe-multi), then with --backend kprobe over the
# functions of that path only (in 10.99.13.0/24: classic kprobes on every function
# would take minutes to attach and detach under emulation).
CLONE_FUNCS_RE='(skb_clone|packet_rcv|tpacket_rcv|dev_queue_xmit_nit|ip_local_out|__ip_local_out|nf_hook_slow|ip_output|ip_finish_output2|__dev_queue_xmit|dev_hard_start_xmit|veth_xmit|consume_skb|kfree_skbmem|skb_release_head_state)'
case_track_skb_clone() {
  clone_case track_skb_clone 12 || return
  cleanup_case
  clone_case track_skb_clone_kprobe 13 --backend kprobe --filter-func "$CLONE_FUNCS_RE"
}

clone_case() {
  local name=$1 x=$2
  shift 2
  local dir=$WORK/$name new=10.99.$x.3 tap_pid="" waited=0
  mkdir -p "$dir"
  if ! make_pair "$x" || ! ip addr add "$new/24" dev "$VH"; then
    fail "$name" "could not build the veth/netns pair"; return 1
  fi
  if ! ip netns exec "$NS" iptables -w 5 -t nat -A OUTPUT -p tcp -d "$A" --dport 8080 \
      -j DNAT --to-destination "$new:9090" 2>"$dir/ipt.err"; then
    show "$dir/ipt.err" "iptables stderr"; fail "$name" "iptables DNAT rule failed in $NS"; return 1
  fi
  # The tap: reads (and discards) what vn12 sends and receives for at most 60 s.
  ip netns exec "$NS" timeout 60 /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
s.bind((sys.argv[1], 0))
open(sys.argv[2], "w").close()
s.settimeout(0.5)
while True:
    try:
        s.recv(65535)
    except socket.timeout:
        pass' "$VN" "$dir/tap.ready" 2>"$dir/tap.err" &
  tap_pid=$!
  while [ ! -e "$dir/tap.ready" ] && kill -0 "$tap_pid" 2>/dev/null && [ "$waited" -lt 100 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if [ ! -e "$dir/tap.ready" ]; then
    show "$dir/tap.err" "packet socket stderr"; kill "$tap_pid" 2>/dev/null; wait "$tap_pid" 2>/dev/null
    fail "$name" "the packet socket on $VN did not come up"; return 1
  fi
  local WHY=""
  if ! pwru_start "$dir" "$PWRU" "$@" --filter-track-skb --output-tuple "tcp and dst host $A and dst port 8080"; then
    kill "$tap_pid" 2>/dev/null; wait "$tap_pid" 2>/dev/null
    fail "$name" "$WHY"; return 1
  fi
  local trc=0
  ip netns exec "$NS" timeout 3 bash -c "exec 3<>/dev/tcp/$A/8080" 2>/dev/null || trc=$?
  note "connection attempt from $NS to $A:8080 (DNAT to $new:9090) ended with $trc (1: refused by the RST)"
  sleep 1
  pwru_stop
  kill "$tap_pid" 2>/dev/null; wait "$tap_pid" 2>/dev/null
  note_timings "$dir/pwru.err"
  note "$(grep -a -m1 -o 'Following clones and copies.*' "$dir/pwru.err" || echo 'no "Following clones" line')"
  local out=$dir/pwru.out why cloned clones tapped="" c
  why=$(stop_verdict)
  # skbs seen with the original destination, with the rewritten one, and the
  # ones only ever seen rewritten: clones made after the DNAT (files, not <(...):
  # the guest's devtmpfs has no /dev/fd).
  grep -F -- "->$A:8080(tcp)" "$out" | awk '{print $1}' | sort -u >"$dir/skb.orig"
  grep -F -- "->$new:9090(tcp)" "$out" | awk '{print $1}' | sort -u >"$dir/skb.new"
  comm -13 "$dir/skb.orig" "$dir/skb.new" >"$dir/skb.clones"
  clones=$(grep -c . "$dir/skb.clones" || true)
  # skb_clone called on a tracked skb of the SYN (its event carries the old skb).
  cloned=$(awk '$NF == "skb_clone" {print $1}' "$out" | sort -u | comm -12 - "$dir/skb.new" | head -n 1)
  while read -r c; do
    if awk -v s="$c" '$1 == s && $NF ~ /^t?packet_rcv$/' "$out" | grep -q .; then tapped=$c; break; fi
  done <"$dir/skb.clones"
  note "skbs: $(grep -c . "$dir/skb.orig") with $A:8080, $(grep -c . "$dir/skb.new") with $new:9090, $clones only with $new:9090"
  if [ -n "$why" ]; then :
  elif ! grep -qs . "$dir/skb.orig"; then why="no event for the SYN to $A:8080"
  elif [ -z "$cloned" ]; then why="no skb_clone event of the SYN's skb after the DNAT"
  elif [ "$clones" -eq 0 ]; then why="no skb seen only with $new:9090: the clone was not followed"
  elif [ -z "$tapped" ]; then why="no clone reached the packet socket (packet_rcv / tpacket_rcv)"
  fi
  if [ -n "$why" ]; then
    show "$dir/pwru.err" "pwru stderr"; show "$out" "pwru stdout" 80; fail "$name" "$why"; return 1
  fi
  note "skb_clone($cloned) -> $tapped (the packet socket's clone)"
  while read -r c; do
    note "only with $new:9090: $c: $(awk -v s="$c" '$1 == s {print $NF}' "$out" | head -n 12 | tr '\n' ' ')"
  done <"$dir/skb.clones"
  pass "$name"
}

# ---------------------------------------------------------------------------
# --filter-trace-tc / --filter-trace-xdp: root 10.99.9.1 (vh9) <-> netns 10.99.9.2 (vn9),
# tests/bpf_progs/trace_targets.bpf.c built here with clang, its tc program on vn9's
# ingress (clsact) and its XDP program on vn9; one SYN to 10.99.9.2:8080 passes both.
case_trace_tc() {
  local name=trace_tc ns=pwru-vm-tc vh=vh9 vn=vn9 a=10.99.9.1 b=10.99.9.2
  local dir=$WORK/trace_tc rc=0
  target_pair "$name" "$dir" "$ns" "$vh" "$vn" "$a" "$b" tc xdp || return
  note "$(bpftool prog show 2>/dev/null | grep -E 'pwru_test_(tc|xdp)' | sed 's/  */ /g' | tr '\n' ';')"

  trace_one_syn "$name" "$dir" "$b" --filter-trace-tc --filter-trace-xdp --output-tuple 'tcp and dst port 8080' || rc=$?
  [ "$rc" -eq 254 ] && return
  note "$(grep -E 'tc programs|xdp programs|needs fentry' "$dir/pwru.err" | sed 's/^[0-9/]* [0-9:]* //' | tr '\n' ';')"

  local out=$dir/pwru.out flow="$b:8080(tcp)" lines why=""
  lines=$(grep -F -- "$flow" "$out")
  if [ "$rc" -ne 0 ]; then
    why="pwru exited with status $rc (255: did not exit after SIGINT)"
  elif ! grep -qE '_pwru_test_tc\(tc\)$' <<<"$lines"; then
    why="no bpf_prog_<tag>_pwru_test_tc(tc) line for $flow"
  elif ! grep -qE '_pwru_test_xdp\(xdp\)$' <<<"$lines"; then
    why="no bpf_prog_<tag>_pwru_test_xdp(xdp) line for $flow"
  elif ! grep -qF "$vn:" <<<"$(grep -E '\((tc|xdp)\)$' <<<"$lines")"; then
    why="the (tc)/(xdp) lines do not name interface $vn"
  elif grep -E '\((tc|xdp)\)$' "$out" | grep -qvF -- "$flow"; then
    why="a (tc)/(xdp) line of another packet passed the filter"
  fi
  if [ -n "$why" ]; then
    show "$dir/pwru.err" "pwru stderr"; show "$out" "pwru stdout" 60; fail "$name" "$why"; return
  fi
  note "tc line: $(grep -m1 -E '\(tc\)$' <<<"$lines" | sed 's/  */ /g')"
  note "xdp line: $(grep -m1 -E '\(xdp\)$' <<<"$lines" | sed 's/  */ /g')"
  pass "$name"
}

# ---------------------------------------------------------------------------
# --filter-track-skb with --filter-trace-xdp (pwru's fexit on XDP programs): a frame that
# matched in XDP selects the skb built on its buffer. --filter-mark 0x99 makes the proof:
# XDP frames have no mark (pwru filters them on netns, interface and pcap only), the SYN's
# skb has mark 0, so its lines after XDP come only from the hand-over.
# Root 10.99.11.1 (vh11) <-> netns 10.99.11.2 (vn11) with our XDP program on vn11.
case_track_xdp() {
  local name=track_xdp ns=pwru-vm-xdp vh=vh11 vn=vn11 a=10.99.11.1 b=10.99.11.2
  local dir=$WORK/track_xdp rc=0
  target_pair "$name" "$dir" "$ns" "$vh" "$vn" "$a" "$b" xdp || return
  trace_one_syn "$name" "$dir" "$b" --filter-trace-xdp --filter-track-skb --filter-mark 0x99 --output-tuple \
    'tcp and dst port 8080' || rc=$?
  [ "$rc" -eq 254 ] && return

  local out=$dir/pwru.out flow="$b:8080(tcp)" lines first_xdp after why=""
  lines=$(grep -F -- "$flow" "$out")
  first_xdp=$(grep -n -m1 -E '\(xdp\)$' <<<"$lines" | cut -d: -f1)
  if [ "$rc" -ne 0 ]; then
    why="pwru exited with status $rc (255: did not exit after SIGINT)"
  elif [ -z "$first_xdp" ]; then
    why="no (xdp) line for $flow"
  else
    after=$(tail -n +"$((first_xdp + 1))" <<<"$lines" | grep -vE '\(xdp\)$' | grep -F " $vn:")
    [ -n "$after" ] || why="no skb line on $vn after the (xdp) line: the frame's skb was not followed"
  fi
  if [ -z "$why" ] && grep -vE '\(xdp\)$' <<<"$lines" | grep -qF " $vh:"; then
    why="a line on $vh (before XDP, mark 0) passed --filter-mark 0x99"
  fi
  if [ -n "$why" ]; then
    show "$dir/pwru.err" "pwru stderr"; show "$out" "pwru stdout" 60; fail "$name" "$why"; return
  fi
  note "after the (xdp) line: $(awk '{print $NF}' <<<"$after" | head -n 8 | tr '\n' ' ')"
  pass "$name"
}

# ---------------------------------------------------------------------------
# --filter-track-skb through veth's XDP path (pwru v1.0.7): with an XDP program on a veth,
# veth_convert_skb_to_xdp_buff gives the program a copy of a locally sent skb (too little
# headroom for XDP), taken from veth's page pool: skb->pp_recycle is 1 on the copy only. The
# expression selects pp_recycle 0, so the copy's lines (pp_recycle=0x1) come only from
# following the tracked skb through the conversion.
# Root 10.99.14.1 (vh14) <-> netns 10.99.14.2 (vn14) with our XDP program on vn14.
case_track_veth_xdp() {
  local name=track_veth_xdp ns=pwru-vm-vethxdp vh=vh14 vn=vn14 a=10.99.14.1 b=10.99.14.2
  local dir=$WORK/track_veth_xdp rc=0
  target_pair "$name" "$dir" "$ns" "$vh" "$vn" "$a" "$b" xdp || return
  trace_one_syn "$name" "$dir" "$b" --filter-track-skb --filter-skb-expr 'skb->pp_recycle == 0' \
    --output-skb-metadata 'skb->pp_recycle' 'tcp and dst port 8080' || rc=$?
  [ "$rc" -eq 254 ] && return
  local out=$dir/pwru.out flow="$b:8080(tcp)" why="" copies
  copies=$(grep -F -- "$flow" "$out" | grep -F 'pp_recycle=0x1')
  if [ "$rc" -ne 0 ]; then
    why="pwru exited with status $rc (255: did not exit after SIGINT)"
  elif ! grep -q "through veth's XDP path" "$dir/pwru.err"; then
    why="pwru did not probe veth_convert_skb_to_xdp_buff"
  elif ! grep -F -- "$flow" "$out" | grep -qF 'pp_recycle=0x0'; then
    why="no line of the original skb (pp_recycle=0x0)"
  elif [ -z "$copies" ]; then
    why="no line of the copy veth made for XDP (pp_recycle=0x1): not followed through the conversion"
  fi
  if [ -n "$why" ]; then
    show "$dir/pwru.err" "pwru stderr"; show "$out" "pwru stdout" 60; fail "$name" "$why"; return
  fi
  note "the copy: $(awk '{print $1, $(NF-1)}' <<<"$copies" | head -n 6 | tr '\n' ';')"
  pass "$name"
}

# ---------------------------------------------------------------------------
# --filter-track-bpf-helpers and --output-bpfmap (pwru v1.0.8 / v1.0.11): our tc classifier
# on vn15's ingress calls bpf_skb_load_bytes and looks up and updates its hash map
# pwru_test_lens keyed by skb->len. Both calls run on the SYN's stack, so they are its
# events: the helper's line, and the map operations with pwru's map/key/value block.
# Root 10.99.15.1 (vh15) <-> netns 10.99.15.2 (vn15).
case_bpf_helpers() {
  local name=bpf_helpers ns=pwru-vm-helpers vh=vh15 vn=vn15 a=10.99.15.1 b=10.99.15.2
  local dir=$WORK/bpf_helpers rc=0
  target_pair "$name" "$dir" "$ns" "$vh" "$vn" "$a" "$b" tc || return
  trace_one_syn "$name" "$dir" "$b" --filter-track-bpf-helpers --output-bpfmap 'tcp and dst port 8080' || rc=$?
  [ "$rc" -eq 254 ] && return
  local out=$dir/pwru.out flow="$b:8080(tcp)" why=""
  if [ "$rc" -ne 0 ]; then
    why="pwru exited with status $rc (255: did not exit after SIGINT)"
  elif ! grep -q 'kernel functions called by' "$dir/pwru.err"; then
    why="no --filter-track-bpf-helpers summary"
  elif ! grep -F -- "$flow" "$out" | grep -qE ' bpf_skb_load_bytes$'; then
    why="no bpf_skb_load_bytes line for $flow (the helper the tc program calls)"
  elif ! grep -q '^map_name: pwru_test_lens$' "$out"; then
    why="no --output-bpfmap block for the tc program's map"
  elif ! grep -A2 '^map_name: pwru_test_lens$' "$out" | grep -q '^key(4):$'; then
    why="the map block has no key(4)"
  elif ! grep -B1 '^map_id: ' "$out" | grep -F -- "$flow" | grep -qE '_(update|lookup)_elem$'; then
    why="the map block does not follow a map operation's line of $flow"
  fi
  if [ -n "$why" ]; then
    show "$dir/pwru.err" "pwru stderr"; show "$out" "pwru stdout" 60; fail "$name" "$why"; return
  fi
  note "$(grep -m1 'kernel functions called by' "$dir/pwru.err" | sed 's/^[0-9/]* [0-9:]* //')"
  note "map: $(grep -m1 -A4 '^map_id: ' "$out" | tr '\n' ';')"
  pass "$name"
}

# ---------------------------------------------------------------------------
# pwru #394: --filter-trace-tc with a --filter-func no skb function matches traces the tc
# programs alone (ours refused it before: "no skb function or tracepoint matches").
# Root 10.99.13.1 (vh13) <-> netns 10.99.13.2 (vn13) with our tc program on vn13's ingress.
case_tc_only() {
  local name=tc_only ns=pwru-vm-tconly vh=vh13 vn=vn13 a=10.99.13.1 b=10.99.13.2
  local dir=$WORK/tc_only rc=0
  target_pair "$name" "$dir" "$ns" "$vh" "$vn" "$a" "$b" tc || return
  trace_one_syn "$name" "$dir" "$b" --filter-func '^pwru_no_such_function$' --filter-trace-tc 'tcp and dst port 8080' || rc=$?
  [ "$rc" -eq 254 ] && return
  local out=$dir/pwru.out flow="$b:8080(tcp)" why=""
  if [ "$rc" -ne 0 ]; then
    why="pwru exited with status $rc (255: did not exit after SIGINT)"
  elif ! grep -F -- "$flow" "$out" | grep -qE '_pwru_test_tc\(tc\)$'; then
    why="no (tc) line for $flow"
  elif grep -F -- "$flow" "$out" | grep -qvE '\(tc\)$'; then
    why="a line of a kernel function, though none matches --filter-func"
  elif ! grep -q 'tracing 1 tc / XDP programs only' "$dir/pwru.err"; then
    why="no notice that only tc / XDP programs are traced"
  fi
  if [ -n "$why" ]; then
    show "$dir/pwru.err" "pwru stderr"; show "$out" "pwru stdout" 40; fail "$name" "$why"; return
  fi
  note "tc line: $(grep -m1 -F -- "$flow" "$out" | sed 's/  */ /g')"
  pass "$name"
}

# ---------------------------------------------------------------------------
# --output-xdp-metadata / --filter-xdp-expr and --output-skb-metadata (pwru v1.0.10 / v1.0.11)
# on --filter-trace-xdp: the (xdp) lines print the xdp_buff's members (the receive queue's
# device is the veth the XDP program sits on), the skb lines the skb's; an expression no
# frame meets (queue 7: a veth has one) takes the (xdp) lines away and leaves the skb ones.
# Root 10.99.12.1 (vh12) <-> netns 10.99.12.2 (vn12) with our XDP program on vn12.
case_xdp_members() {
  local name=xdp_members ns=pwru-vm-xdpm vh=vh12 vn=vn12 a=10.99.12.1 b=10.99.12.2
  local dir=$WORK/xdp_members rc=0 ifindex
  target_pair "$name" "$dir" "$ns" "$vh" "$vn" "$a" "$b" xdp || return
  ifindex=$(ip -n "$ns" -o link show dev "$vn" | cut -d: -f1)
  local flow="$b:8080(tcp)" out=$dir/pwru.out why="" xdp_lines skb_lines
  for expr in 'xdp->rxq->queue_index == 0' 'xdp->rxq->queue_index == 7'; do
    rc=0
    trace_one_syn "$name" "$dir" "$b" --filter-trace-xdp --output-xdp-metadata 'xdp->rxq->dev->ifindex' \
      --output-xdp-metadata 'xdp->rxq->queue_index' --output-skb-metadata 'skb->len' --filter-xdp-expr "$expr" \
      'tcp and dst port 8080' || rc=$?
    [ "$rc" -eq 254 ] && return
    xdp_lines=$(grep -F -- "$flow" "$out" | grep -F '(xdp)')
    skb_lines=$(grep -F -- "$flow" "$out" | grep -vF '(xdp)')
    if [ "$rc" -ne 0 ]; then
      why="pwru exited with status $rc ($expr; 255: did not exit after SIGINT)"
    elif [ -z "$skb_lines" ] || grep -qv ' len=[0-9]' <<<"$skb_lines"; then
      why="skb lines without len= ($expr)"
    elif [ "$expr" = 'xdp->rxq->queue_index == 0' ]; then
      if [ -z "$xdp_lines" ]; then
        why="no (xdp) line for $flow with '$expr'"
      elif grep -qvE "\(xdp\) ifindex=$ifindex queue_index=0\$" <<<"$xdp_lines"; then
        why="(xdp) lines without ifindex=$ifindex queue_index=0"
      fi
    elif [ -n "$xdp_lines" ]; then
      why="(xdp) lines passed '$expr'"
    fi
    [ -z "$why" ] || break
    [ -n "$xdp_lines" ] && note "xdp line: $(head -n1 <<<"$xdp_lines" | sed 's/  */ /g')"
  done
  if [ -n "$why" ]; then
    show "$dir/pwru.err" "pwru stderr"; show "$out" "pwru stdout" 60; fail "$name" "$why"; return
  fi
  note "skb line: $(head -n1 <<<"$skb_lines" | sed 's/  */ /g')"
  pass "$name"
}

# ---------------------------------------------------------------------------
# --filter-non-skb-funcs nft_do_chain (no skb argument: it gets the nft_pktinfo) with the
# seed's iptables DROP (iptables-nft): root 10.99.10.1 (vh10) <-> netns 10.99.10.2 (vn10).
# nft_do_chain runs in the SYN's call context right after nf_hook_slow(skb), so its line
# must carry the SYN's skb, the one that is then dropped.
case_non_skb_funcs() {
  local name=non_skb_funcs ns=pwru-vm-nonskb vh=vh10 vn=vn10 a=10.99.10.1 b=10.99.10.2
  local dir=$WORK/non_skb_funcs rc=0
  mkdir -p "$dir"
  if ! bg_netns_pair "$ns" "$vh" "$vn" "$a" "$b"; then
    fail "$name" "could not build the veth/netns pair"; return
  fi
  if ! ip netns exec "$ns" iptables -w 5 -A INPUT -p tcp --dport 8080 -j DROP 2>"$dir/ipt.err"; then
    show "$dir/ipt.err" "iptables stderr"; fail "$name" "iptables -A INPUT ... -j DROP failed in $ns"; return
  fi
  trace_one_syn "$name" "$dir" "$b" --filter-non-skb-funcs nft_do_chain --output-tuple 'tcp and dst port 8080' || rc=$?
  [ "$rc" -eq 254 ] && return
  note "$(grep -m1 -o 'Attached [0-9]* non-skb functions.*' "$dir/pwru.err" || echo 'no non-skb attach line')"

  local out=$dir/pwru.out flow="$b:8080(tcp)" lines drop_skb why=""
  lines=$(grep -F -- "$flow" "$out")
  drop_skb=$(grep -m1 -F 'sk_skb_reason_drop(SKB_DROP_REASON_NETFILTER_DROP)' <<<"$lines" | awk '{print $1}')
  if [ "$rc" -ne 0 ]; then
    why="pwru exited with status $rc (255: did not exit after SIGINT)"
  elif ! grep -q 'Attached 1 non-skb functions' "$dir/pwru.err"; then
    why="nft_do_chain was not attached"
  elif [ -z "$drop_skb" ]; then
    why="no sk_skb_reason_drop(SKB_DROP_REASON_NETFILTER_DROP) line for $flow"
  elif ! grep -E ' nft_do_chain$' <<<"$lines" | grep -q "^$drop_skb "; then
    why="no nft_do_chain line with the dropped skb $drop_skb"
  fi
  if [ -n "$why" ]; then
    show "$dir/pwru.err" "pwru stderr"; show "$out" "pwru stdout" 60; fail "$name" "$why"; return
  fi
  note "in the dropped skb's trajectory: $(awk -v s="$drop_skb" '$1 == s { print $NF }' "$out" |
    grep -m1 -B1 -A1 -x 'nft_do_chain' | tr '\n' ' ')"
  pass "$name"
}

# ---------------------------------------------------------------------------
# What is a drop (tracer/events/drop_verdict.h) on the kprobe backends. Helpers for the
# two cases: the exit summary's counts and drop lines, and event lines that show
# a reason in their FUNC column.
TRAFFIC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../support" && pwd)/traffic.py
summary_dropped() {  # summary_dropped ERRFILE: M of "Trajectories: N packets, M dropped"
  sed -n 's/^Trajectories: [0-9]* packets, \([0-9]*\) dropped.*/\1/p' "$1" | tail -n 1
}
summary_drop_lines() {  # summary_drop_lines ERRFILE: the "  dropped in ..." lines, trimmed
  sed -n '/^Trajectories: /,$p' "$1" | sed -n 's/^  \(dropped in .*\)$/\1/p'
}
reason_lines() {  # reason_lines OUTFILE: event lines with a drop reason
  grep -E '^0x' "$1" | grep -E '\(SKB_' || true
}

# Nothing dropped: root 10.99.14.1 (vh14) <-> netns 10.99.14.2; a full TCP exchange
# (connect, 5 bytes each way, both close), UDP each way, an ICMP echo and its reply
# (tests/support/traffic.py). The summary must say 0 dropped and no line may carry a
# reason, although skb_release_data (a reason parameter in 6.12's BTF, fed
# SKB_DROP_REASON_NOT_SPECIFIED by every __kfree_skb) runs for the freed packets.
case_no_drops() {
  local name=no_drops dir=$WORK/no_drops
  mkdir -p "$dir"
  if ! make_pair 14; then fail "$name" "could not build the veth/netns pair"; return; fi
  local WHY=""
  if ! pwru_start "$dir" "$PWRU" --output-tuple "ip and host $B"; then fail "$name" "$WHY"; return; fi
  timeout 60 python3 "$TRAFFIC" exchange - "/run/netns/$NS" "$B" 5555 >"$dir/traffic.out" 2>&1
  local trc=$?
  sleep 1
  pwru_stop
  note_timings "$dir/pwru.err"
  local out=$dir/pwru.out err=$dir/pwru.err why dropped reasons
  why=$(stop_verdict)
  dropped=$(summary_dropped "$err")
  reasons=$(reason_lines "$out")
  note "traffic: $(tr '\n' ' ' <"$dir/traffic.out")"
  note "summary: $(grep -m1 '^Trajectories: ' "$err" || echo 'none')"
  if [ -n "$why" ]; then :
  elif [ "$trc" -ne 0 ]; then why="traffic.py exchange failed (exit $trc): $(tr '\n' ' ' <"$dir/traffic.out")"
  elif ! grep -qF -- "->$B:5555(tcp)" "$out" || ! grep -qF -- "$B:5555->$A:" "$out"; then why="no TCP lines both ways"
  elif ! grep -qF -- "->$B:5555(udp)" "$out"; then why="no UDP line to $B:5555"
  elif ! grep -qF -- "(icmp)" "$out"; then why="no ICMP line"
  elif ! grep -qE ' skb_release_data$' "$out"; then why="no skb_release_data line (the frees were not traced)"
  elif [ -z "$dropped" ]; then why="no 'Trajectories: N packets, M dropped' summary"
  elif [ "$dropped" -ne 0 ]; then why="the summary says $dropped dropped, expected 0"
  elif [ -n "$(summary_drop_lines "$err")" ]; then why="the summary has drop lines"
  elif [ -n "$reasons" ]; then why="$(grep -c . <<<"$reasons") event line(s) show a drop reason, e.g. $(head -n 1 <<<"$reasons" | awk '{print $NF}')"
  fi
  if [ -n "$why" ]; then
    show "$err" "pwru stderr"; show "$out" "pwru stdout" 60; fail "$name" "$why"; return
  fi
  note "events: $(grep -c '^0x' "$out"), none with a reason; skb_release_data lines: $(grep -cE ' skb_release_data$' "$out")"
  pass "$name"
}

# Real drops, one pwru run (one attach under emulation), --output-caller so that the
# summary names the kernel's place: root 10.99.15.1 (vh15) <-> netns 10.99.15.2, which
# forwards (192.0.2.0/24 behind a veth of MTU 1000; no route to 198.51.100.0/24).
#   a SYN to closed port 81          NO_SOCKET        tcp_v4_rcv
#   SYNs to 8080, iptables DROP      NETFILTER_DROP   nf_hook_slow (nft_do_chain where
#                                                     nf_tables drops itself, as on 6.18)
#   1428-byte DF UDP to 192.0.2.7    PKT_TOO_BIG      ip_forward
#   UDP to 198.51.100.7 (no route)   IP_INNOROUTES    ip_error
# Exactly these, each once per packet, and every reason on an event line is one of them.
case_real_drops() {
  local name=real_drops dir=$WORK/real_drops
  mkdir -p "$dir"
  if ! make_pair 15 ||
    ! ip netns exec "$NS" sysctl -qw net.ipv4.ip_forward=1 ||
    ! ip -n "$NS" link add d0 mtu 1000 type veth peer name d1 mtu 1000 ||
    ! ip -n "$NS" link set d0 up || ! ip -n "$NS" link set d1 up ||
    ! ip -n "$NS" route add 192.0.2.0/24 dev d0 ||
    ! ip route add 192.0.2.0/24 via "$B" || ! ip route add 198.51.100.0/24 via "$B"; then
    fail "$name" "could not build the forwarding netns"; return
  fi
  if ! ip netns exec "$NS" iptables -w 5 -A INPUT -p tcp --dport 8080 -j DROP 2>"$dir/ipt.err"; then
    show "$dir/ipt.err" "iptables stderr"; fail "$name" "iptables -A INPUT ... -j DROP failed in $NS"; return
  fi
  local WHY="" ino
  ino=$(stat -L -c %i "/run/netns/$NS")
  if ! pwru_start "$dir" "$PWRU" --output-caller --output-tuple \
      "(tcp and dst host $B and (dst port 81 or dst port 8080)) or (udp and (dst port 4444 or dst port 4445))"; then
    fail "$name" "$WHY"; return
  fi
  local trc=0
  timeout 3 bash -c "exec 3<>/dev/tcp/$B/81" 2>/dev/null || trc=$?
  note "connection to the closed port $B:81 ended with $trc (1: refused)"
  send_syn "$B" 8080
  # Bounded generously: python starts slowly under TCG with 1600 probes attached.
  local src
  for src in "192.0.2.7 4444 1400 df" "198.51.100.7 4445 64"; do
    trc=0
    # shellcheck disable=SC2086  # the arguments are split on purpose
    timeout 60 python3 "$TRAFFIC" udp - $src >"$dir/traffic.out" 2>&1 || trc=$?
    [ "$trc" -eq 0 ] || note "sender to $src: exit $trc: $(tr '\n' ' ' <"$dir/traffic.out")"
  done
  sleep 1
  pwru_stop
  note_timings "$dir/pwru.err"
  local out=$dir/pwru.out err=$dir/pwru.err why dropped lines reasons syns
  why=$(stop_verdict)
  dropped=$(summary_dropped "$err")
  lines=$(summary_drop_lines "$err")
  reasons=$(reason_lines "$out")
  syns=$(grep -cE "^dropped in nf(_hook_slow|t_do_chain) at $VN:" <<<"$lines" || true)
  note "summary: $(grep -m1 '^Trajectories: ' "$err" || echo 'none')"
  while read -r l; do [ -n "$l" ] && note "$l"; done <<<"$lines"
  local want
  if [ -n "$why" ]; then :
  elif [ -z "$dropped" ]; then why="no 'Trajectories: N packets, M dropped' summary"
  fi
  for want in "tcp_v4_rcv:SKB_DROP_REASON_NO_SOCKET" "ip_forward:SKB_DROP_REASON_PKT_TOO_BIG" \
    "ip_error:SKB_DROP_REASON_IP_INNOROUTES"; do
    [ -n "$why" ] && break
    local n
    n=$(grep -cE "^dropped in ${want%%:*} at $VN:[0-9]+ in netns $ino: ${want#*:}\$" <<<"$lines" || true)
    [ "$n" -eq 1 ] || why="expected one 'dropped in ${want%%:*} ... in netns $ino: ${want#*:}', got $n"
  done
  if [ -n "$why" ]; then :
  elif [ "$syns" -lt 1 ] || [ "$(grep -cE "^dropped in nf(_hook_slow|t_do_chain) at $VN:[0-9]+ in netns $ino: SKB_DROP_REASON_NETFILTER_DROP\$" <<<"$lines")" -ne "$syns" ]; then
    why="expected the SYNs to 8080 dropped in nf_hook_slow / nft_do_chain with NETFILTER_DROP, got $syns"
  elif [ "$dropped" -ne $((syns + 3)) ] || [ "$(grep -c . <<<"$lines")" -ne "$dropped" ]; then
    why="expected exactly $((syns + 3)) drops ($syns SYNs + 3), the summary says $dropped with $(grep -c . <<<"$lines") lines"
  elif [ "$(grep -c . <<<"$reasons")" -ne "$dropped" ]; then
    why="expected $dropped event lines with a reason (one verdict per packet), got $(grep -c . <<<"$reasons")"
  elif grep -vE ' sk_skb_reason_drop\(SKB_DROP_REASON_(NO_SOCKET|NETFILTER_DROP|PKT_TOO_BIG|IP_INNOROUTES)\) ' <<<"$reasons" | grep -q .; then
    why="an event line shows another reason or function: $(grep -vE ' sk_skb_reason_drop\(SKB_DROP_REASON_(NO_SOCKET|NETFILTER_DROP|PKT_TOO_BIG|IP_INNOROUTES)\) ' <<<"$reasons" | head -n 1)"
  fi
  if [ -n "$why" ]; then
    show "$err" "pwru stderr"; show "$out" "pwru stdout" 80; fail "$name" "$why"; return
  fi
  pass "$name"
}

for c in $CASES; do
  echo "---- $c"
  if ! declare -F "case_$c" >/dev/null; then fail "$c" "no such case"; continue; fi
  t=$(now)
  "case_$c"
  cleanup_case
  note "($c took $(secs "$t" "$(now)") s)"
done
finish
