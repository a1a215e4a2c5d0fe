#!/usr/bin/env bash
# Runs INSIDE the VM (bench/attach_vm.sh boots it). Attach + detach of every
# skb function that pwru selects, timed in guest time:
#   - kprobe-multi: pwru (and BASELINE, when given) start-to-ready and
#     SIGINT-to-exit, with pwru's own "Attached .. in" / "Detached .. in";
#   - classic kprobes: pwru's default (threaded teardown) against the same
#     binary closing one by one as libbpf users do (PWRU_KPROBE_THREADS=1
#     PWRU_KPROBE_PIN=0 PWRU_KPROBE_ENABLE=1);
#   - bpftrace 0.17 with one kprobe per function of the same list (its BEGIN
#     probe prints once everything is attached).
# Rounds interleave the variants. --quick: the skb_* subset, one round.
# BENCH_ATTACH_PARTS: which of "multi kprobe serial bpftrace" to run (default all).
#
#   guest_attach.sh [--quick] PWRU [BASELINE_PWRU]
set -uo pipefail
. "$(dirname "$0")/lib.sh"
QUICK=0
[ "${1:-}" = --quick ] && { QUICK=1; shift; }
PWRU=$1 BASE=${2:-}
PARTS=" ${BENCH_ATTACH_PARTS:-multi kprobe serial bpftrace} "
part() { [[ "$PARTS" == *" $1 "* ]]; }
# bpftrace refuses more than 512 probes unless told
export BPFTRACE_MAX_PROBES=100000
ROUNDS=3; SUBSET=()
[ "$QUICK" = 1 ] && { ROUNDS=1; SUBSET=(--filter-func 'skb_.*'); }
WORK=$(mktemp -d /tmp/bench-attach.XXXXXX)
CUR=""
trap '[ -n "$CUR" ] && kill -KILL "$CUR" 2>/dev/null; rm -rf "$WORK"' EXIT
FILTER='host 10.254.254.254'

echo "guest: kernel $(uname -r), $(nproc) vCPUs (TCG), $(load_note)"
"$PWRU" --dry-run --backend kprobe-multi "${SUBSET[@]}" >"$WORK/dry" 2>&1 || { cat "$WORK/dry"; exit 1; }
awk '/^functions:/ { on = 1; next } on && /^  / { print $1 }' "$WORK/dry" >"$WORK/funcs"
N=$(wc -l <"$WORK/funcs")
echo "guest: $N skb functions ($(grep -m1 '^functions:' "$WORK/dry"))"

# run_pwru LABEL BIN ARGS...: appends "ready_s exit_s attach_s detach_s" to $WORK/LABEL
run_pwru() {
  local label=$1 d=$WORK/run t0 t1 t2 waited=0
  shift
  mkdir -p "$d"; rm -f "$d/ready"
  t0=$(now)
  "$@" --ready-file "$d/ready" "$FILTER" >/dev/null 2>"$d/err" &
  CUR=$!
  while [ ! -e "$d/ready" ] && kill -0 "$CUR" 2>/dev/null && [ $waited -lt 6000 ]; do sleep 0.05; waited=$((waited + 1)); done
  t1=$(now)
  [ -e "$d/ready" ] || { echo "guest: $label did not get ready"; tail -5 "$d/err"; kill -KILL "$CUR"; CUR=""; return 1; }
  sleep 1
  t1b=$(now)
  kill -INT "$CUR"; wait "$CUR"; CUR=""
  t2=$(now)
  local att det
  att=$(grep -a -m1 -o 'Attached [0-9]* functions in [0-9.]*' "$d/err" | awk '{print $5}')
  det=$(grep -a -m1 -o 'Detached [0-9]* [a-z -]* in [0-9.]*' "$d/err" | awk '{print $NF}')
  echo "$(secs "$t0" "$t1") $(secs "$t1b" "$t2") ${att:-nan} ${det:-nan}" >>"$WORK/$label"
  echo "guest: $label: ready $(secs "$t0" "$t1") s, exit $(secs "$t1b" "$t2") s;" \
    "$(grep -a -m1 -o 'Attached [0-9]* functions in .*' "$d/err"); $(grep -a -m1 -o 'Detached .*' "$d/err")"
}

# run_bpftrace LABEL: the same list as classic kprobes, one probe each
run_bpftrace() {
  local label=$1 t0 t1 t1b t2 waited=0
  { sed "s/^/kprobe:/" "$WORK/funcs" | paste -sd, -; echo ' { @hits = count(); }'
    echo 'BEGIN { printf("ready\n"); }'; } >"$WORK/peer.bt"
  t0=$(now)
  bpftrace -B line "$WORK/peer.bt" >"$WORK/bt.out" 2>"$WORK/bt.err" &
  CUR=$!
  while ! grep -q ready "$WORK/bt.out" 2>/dev/null && kill -0 "$CUR" 2>/dev/null && [ $waited -lt 12000 ]; do sleep 0.05; waited=$((waited + 1)); done
  t1=$(now)
  grep -q ready "$WORK/bt.out" || { echo "guest: bpftrace did not get ready"; tail -5 "$WORK/bt.err"; kill -KILL "$CUR"; CUR=""; return 1; }
  sleep 1
  t1b=$(now)
  kill -INT "$CUR"
  # bpftrace 0.17 was seen to ignore a SIGINT: SIGTERM after 120 s, said in the line
  waited=0
  while kill -0 "$CUR" 2>/dev/null && [ $waited -lt 1200 ]; do sleep 0.1; waited=$((waited + 1)); done
  kill -0 "$CUR" 2>/dev/null && { echo "guest: bpftrace ignored SIGINT for 120 s: SIGTERM"; kill -TERM "$CUR"; }
  wait "$CUR"; CUR=""
  t2=$(now)
  echo "$(secs "$t0" "$t1") $(secs "$t1b" "$t2")" >>"$WORK/$label"
  echo "guest: $label: ready $(secs "$t0" "$t1") s, exit $(secs "$t1b" "$t2") s; $(head -n 1 "$WORK/bt.out")"
}

col() { [ -s "$WORK/$1" ] && awk -v c="$2" '{ print $c }' "$WORK/$1" | median || echo nan; }
sum2() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan") print "nan"; else printf "%.3f", a + b }'; }

# kprobe-multi, interleaved with the baseline binary
for r in $(seq $ROUNDS); do
  part multi || break
  run_pwru multi "$PWRU" --backend kprobe-multi "${SUBSET[@]}"
  [ -n "$BASE" ] && run_pwru multi_base "$BASE" --backend kprobe-multi "${SUBSET[@]}"
done
# classic kprobes: default vs one by one, then bpftrace (each is minutes on the full list)
KR=1
for r in $(seq $KR); do
  part kprobe && run_pwru kprobe "$PWRU" --backend kprobe "${SUBSET[@]}"
  part serial && run_pwru kprobe_serial env PWRU_KPROBE_THREADS=1 PWRU_KPROBE_PIN=0 PWRU_KPROBE_ENABLE=1 "$PWRU" --backend kprobe "${SUBSET[@]}"
  part bpftrace && run_bpftrace bpftrace
done

M_ATT=$(col multi 3) M_DET=$(col multi 4) M_READY=$(col multi 1) M_EXIT=$(col multi 2)
K_READY=$(col kprobe 1) K_EXIT=$(col kprobe 2) K_DET=$(col kprobe 4) K_ATT=$(col kprobe 3)
S_DET=$(col kprobe_serial 4) S_ATT=$(col kprobe_serial 3)
B_READY=$(col bpftrace 1) B_EXIT=$(col bpftrace 2)
M_SUM=$(sum2 "$M_ATT" "$M_DET")
result attach "kprobe-multi attach+detach, $N functions (guest s, median of $ROUNDS)" "$M_SUM s" "0.2 s target" "$(ratio "$M_SUM" 0.2)" "attach $M_ATT + detach $M_DET; <= 1 meets the target"
if [ -n "$BASE" ]; then
  BM_ATT=$(col multi_base 3) BM_DET=$(col multi_base 4)
  BM_SUM=$(sum2 "$BM_ATT" "$BM_DET")
  result attach "kprobe-multi attach+detach, this build vs baseline" "$M_SUM s" "$BM_SUM s" "$(ratio "$M_SUM" "$BM_SUM")" "baseline attach $BM_ATT + detach $BM_DET"
fi
result attach "kprobe detach, threaded vs one by one ($N kprobes)" "$K_DET s" "$S_DET s" "$(ratio "$S_DET" "$K_DET")x faster" "target >= 10x; attach $K_ATT s vs $S_ATT s"
result attach "start-to-ready, pwru kprobe-multi vs bpftrace kprobes" "$M_READY s" "$B_READY s" "$(ratio "$B_READY" "$M_READY")x faster" "bpftrace 0.17: one classic kprobe per function, same list"
result attach "SIGINT-to-exit, pwru kprobe-multi vs bpftrace kprobes" "$M_EXIT s" "$B_EXIT s" "$(ratio "$B_EXIT" "$M_EXIT")x faster" ""
result attach "start-to-ready, pwru kprobe vs bpftrace kprobes" "$K_READY s" "$B_READY s" "$(ratio "$B_READY" "$K_READY")x faster" "both classic kprobes"
result attach "SIGINT-to-exit, pwru kprobe vs bpftrace kprobes" "$K_EXIT s" "$B_EXIT s" "$(ratio "$B_EXIT" "$K_EXIT")x faster" ""
