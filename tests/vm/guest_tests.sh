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
#   drop_kprobe         the same with --backend kprobe (classic, one kprobe per function)
#   trace_tc            --filter-trace-tc / --filter-trace-xdp: a tc and an XDP program of
#                       our own on a veth in a netns; both appear as "(tc)" / "(xdp)" lines
#   track_xdp           --filter-track-skb --filter-trace-xdp: the skb of a frame that matched
#                       in XDP is followed although its mark fails --filter-mark
#   non_skb_funcs       --filter-non-skb-funcs nft_do_chain with the iptables DROP: its line
#                       carries the dropped SYN's skb
# Each prints `PASS name` or `FAIL name: why`; the last line is
# `vm: N passed, M failed`. Exit status 0 only when nothing failed.
#
# Environment: VM_READY_TIMEOUT (s, 240), VM_STOP_TIMEOUT (s, 240), VM_CASES (names to
# run, space-separated; default all).
set -uo pipefail

PWRU=${1:-}
READY_TIMEOUT=${VM_READY_TIMEOUT:-240}
STOP_TIMEOUT=${VM_STOP_TIMEOUT:-240}
CASES=${VM_CASES:-dry_run_auto drop_kprobe_multi drop_kprobe trace_tc track_xdp non_skb_funcs}

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
# The seed scenario: root netns 10.99.X.1 (veth vhX) <-> netns (10.99.X.2, vnX),
# `iptables -A INPUT -p tcp --dport 8080 -j DROP` in the netns, one SYN from the root.
drop_case() {
  local name=$1 x=$2 expect_label=$3
  shift 3
  local backend_args=("$@")
  local ns=pwru-vm-ns$x vh=vh$x vn=vn$x a=10.99.$x.1 b=10.99.$x.2
  local dir=$WORK/$name
  local out=$dir/pwru.out err=$dir/pwru.err ready=$dir/ready
  mkdir -p "$dir"

  # Network.
  CUR_NS=$ns
  if ! ip netns add "$ns" ||
    ! ip link add "$vh" type veth peer name "$vn" netns "$ns" ||
    ! { CUR_VETH=$vh; ip addr add "$a/24" dev "$vh"; } ||
    ! ip link set "$vh" up ||
    ! ip -n "$ns" addr add "$b/24" dev "$vn" ||
    ! ip -n "$ns" link set "$vn" up ||
    ! ip -n "$ns" link set lo up; then
    fail "$name" "could not build the veth/netns pair"; return
  fi
  if ! ip netns exec "$ns" iptables -w 5 -A INPUT -p tcp --dport 8080 -j DROP 2>"$dir/ipt.err"; then
    show "$dir/ipt.err" "iptables stderr"; fail "$name" "iptables -A INPUT ... -j DROP failed in $ns"; return
  fi

  # pwru in the background: its own process group, SIGINT not ignored (set -m).
  local t0 t_ready t_int t_exit rc=0 waited
  t0=$(now)
  set -m
  "$PWRU" "${backend_args[@]}" --ready-file "$ready" --output-tuple 'tcp and dst port 8080' >"$out" 2>"$err" &
  CUR_PID=$!
  set +m
  waited=0
  while [ ! -e "$ready" ] && kill -0 "$CUR_PID" 2>/dev/null; do
    sleep 0.1
    waited=$((waited + 1))
    if [ "$waited" -ge $((READY_TIMEOUT * 10)) ]; then break; fi
  done
  t_ready=$(now)
  if [ ! -e "$ready" ]; then
    if kill -0 "$CUR_PID" 2>/dev/null; then
      show "$err" "pwru stderr"; fail "$name" "pwru was not ready after ${READY_TIMEOUT}s"
    else
      wait "$CUR_PID"; rc=$?; CUR_PID=""
      show "$err" "pwru stderr"
      debug_rejection "$dir" "${backend_args[@]}"
      fail "$name" "pwru exited with status $rc before it was ready"
    fi
    return
  fi
  note "attach: $(secs "$t0" "$t_ready") s from start to the ready file"
  note "$(grep -m1 -o 'Attaching .*' "$err" || echo 'no Attaching line')"
  note "progress: $(tr '\r' '\n' <"$err" | grep -E '^[0-9]+ / [0-9]+ \[' | tail -n 1 || true)"
  note "$(grep -m1 -o 'Attached (ignored [0-9]*)' "$err" || echo 'no "Attached (ignored N)" line')"

  # One SYN, dropped by the rule: the attempt ends in a timeout.
  local trc=0
  timeout 3 bash -c "exec 3<>/dev/tcp/$b/8080" 2>/dev/null || trc=$?
  [ "$trc" -eq 124 ] || note "warning: the connection attempt ended with $trc, not a timeout (124)"
  sleep 1

  # Stop with SIGINT, bounded wait.
  t_int=$(now)
  kill -INT "$CUR_PID" 2>/dev/null
  waited=0
  while kill -0 "$CUR_PID" 2>/dev/null && [ "$waited" -lt $((STOP_TIMEOUT * 10)) ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  t_exit=$(now)
  local stopped=1
  if kill -0 "$CUR_PID" 2>/dev/null; then
    stopped=0
    kill -KILL -- "-$CUR_PID" 2>/dev/null || kill -KILL "$CUR_PID" 2>/dev/null
  fi
  wait "$CUR_PID" 2>/dev/null; rc=$?
  CUR_PID=""
  if [ "$stopped" -eq 1 ]; then
    note "detach: $(secs "$t_int" "$t_exit") s from SIGINT to exit (status $rc)"
  else
    note "detach: did not exit within ${STOP_TIMEOUT}s of SIGINT (killed)"
  fi
  note "events: $(($(wc -l <"$out") - 1)) lines (header excluded)"

  # Verdict.
  local why=""
  if ! grep -q "Attaching kprobes (via $expect_label)" "$err"; then
    why="stderr has no 'Attaching kprobes (via $expect_label)'"
  elif [ "$stopped" -eq 0 ]; then
    why="pwru did not exit within ${STOP_TIMEOUT}s of SIGINT"
  elif [ "$rc" -ne 0 ]; then
    why="pwru exited with status $rc after SIGINT"
  else
    local flow="$b:8080(tcp)"
    local lines
    lines=$(grep -F -- "$flow" "$out")
    if ! grep -qE ' (ip_output|ip_local_out)$' <<<"$lines"; then
      why="no ip_output / ip_local_out line for $flow"
    elif ! grep -qE ' nf_hook_slow$' <<<"$lines"; then
      why="no nf_hook_slow line for $flow"
    elif ! grep -qF 'sk_skb_reason_drop(SKB_DROP_REASON_NETFILTER_DROP)' <<<"$lines"; then
      why="no sk_skb_reason_drop(SKB_DROP_REASON_NETFILTER_DROP) line for $flow"
    fi
  fi
  if [ -n "$why" ]; then
    show "$err" "pwru stderr"
    show "$out" "pwru stdout" 60
    fail "$name" "$why"
  else
    note "drop line: $(grep -F -- "$b:8080(tcp)" "$out" | grep -m1 -F 'sk_skb_reason_drop(' | sed 's/  */ /g')"
    pass "$name"
  fi
}

case_drop_kprobe_multi() { drop_case drop_kprobe_multi 1 kprobe-multi; }
case_drop_kprobe() { drop_case drop_kprobe 2 kprobe --backend kprobe; }

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

# ---------------------------------------------------------------------------
# --filter-trace-tc / --filter-trace-xdp: root 10.99.9.1 (vh9) <-> netns 10.99.9.2 (vn9),
# tests/bpf_progs/trace_targets.bpf.c built here with clang, its tc program on vn9's
# ingress (clsact) and its XDP program on vn9; one SYN to 10.99.9.2:8080 passes both.
case_trace_tc() {
  local name=trace_tc ns=pwru-vm-tc vh=vh9 vn=vn9 a=10.99.9.1 b=10.99.9.2
  local dir=$WORK/trace_tc src obj rc=0
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../bpf_progs" && pwd)/trace_targets.bpf.c
  obj=$dir/trace_targets.bpf.o
  mkdir -p "$dir"
  if ! clang -g -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$src" -o "$obj" 2>"$dir/clang.err"; then
    show "$dir/clang.err" "clang stderr"; fail "$name" "could not build $src"; return
  fi
  if ! bg_netns_pair "$ns" "$vh" "$vn" "$a" "$b"; then
    fail "$name" "could not build the veth/netns pair"; return
  fi
  if ! ip netns exec "$ns" tc qdisc add dev "$vn" clsact 2>"$dir/tc.err" ||
    ! ip netns exec "$ns" tc filter add dev "$vn" ingress bpf da obj "$obj" sec tc 2>>"$dir/tc.err"; then
    show "$dir/tc.err" "tc stderr"; fail "$name" "could not attach the tc program to $vn"; return
  fi
  if ! ip -n "$ns" link set dev "$vn" xdp obj "$obj" sec xdp 2>"$dir/xdp.err"; then
    show "$dir/xdp.err" "ip link ... xdp stderr"; fail "$name" "could not attach the XDP program to $vn"; return
  fi
  note "$(bpftool prog show 2>/dev/null | grep -E 'pwru_test_(tc|xdp)' | sed 's/  */ /g' | tr '\n' ';')"

  if ! bg_pwru_start "$dir" --filter-trace-tc --filter-trace-xdp --output-tuple 'tcp and dst port 8080'; then
    show "$dir/pwru.err" "pwru stderr"; fail "$name" "pwru did not become ready"; return
  fi
  note "$(grep -E 'tc programs|xdp programs|needs fentry' "$dir/pwru.err" | sed 's/^[0-9/]* [0-9:]* //' | tr '\n' ';')"
  # One SYN (no listener: a RST answers it).
  timeout 3 bash -c "exec 3<>/dev/tcp/$b/8080" 2>/dev/null
  sleep 1
  bg_pwru_stop || rc=$?

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
  local dir=$WORK/track_xdp src obj rc=0
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../bpf_progs" && pwd)/trace_targets.bpf.c
  obj=$dir/trace_targets.bpf.o
  mkdir -p "$dir"
  if ! clang -g -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$src" -o "$obj" 2>"$dir/clang.err"; then
    show "$dir/clang.err" "clang stderr"; fail "$name" "could not build $src"; return
  fi
  if ! bg_netns_pair "$ns" "$vh" "$vn" "$a" "$b"; then
    fail "$name" "could not build the veth/netns pair"; return
  fi
  if ! ip -n "$ns" link set dev "$vn" xdp obj "$obj" sec xdp 2>"$dir/xdp.err"; then
    show "$dir/xdp.err" "ip link ... xdp stderr"; fail "$name" "could not attach the XDP program to $vn"; return
  fi
  if ! bg_pwru_start "$dir" --filter-trace-xdp --filter-track-skb --filter-mark 0x99 --output-tuple \
    'tcp and dst port 8080'; then
    show "$dir/pwru.err" "pwru stderr"; fail "$name" "pwru did not become ready"; return
  fi
  timeout 3 bash -c "exec 3<>/dev/tcp/$b/8080" 2>/dev/null
  sleep 1
  bg_pwru_stop || rc=$?

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
  if ! bg_pwru_start "$dir" --filter-non-skb-funcs nft_do_chain --output-tuple 'tcp and dst port 8080'; then
    show "$dir/pwru.err" "pwru stderr"; fail "$name" "pwru did not become ready"; return
  fi
  note "$(grep -m1 -o 'Attached [0-9]* non-skb functions.*' "$dir/pwru.err" || echo 'no non-skb attach line')"
  timeout 3 bash -c "exec 3<>/dev/tcp/$b/8080" 2>/dev/null
  sleep 1
  bg_pwru_stop || rc=$?

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

for c in $CASES; do
  echo "---- $c"
  if ! declare -F "case_$c" >/dev/null; then fail "$c" "no such case"; continue; fi
  t=$(now)
  "case_$c"
  cleanup_case
  note "($c took $(secs "$t" "$(now)") s)"
done
finish
