#!/usr/bin/env bash
# Runs the benchmarks and prints one table of ratios (bench/README.md says what
# each measures and holds the last table).
#
#   bench/run.sh [--quick] [--vm] [--only NAME...]
#
#   --quick   fewer rounds, smaller floods, a subset of functions in the VM
#   --vm      also the VM benches (attach/detach, the cost of a hit against
#             cilium/pwru: minutes to tens of minutes)
#   --only    run only these: attach hitcost nomatch events decode filter agent flood merge
# Environment: BUILD_DIR (build), PWRU (BUILD_DIR/pwru), BASELINE_PWRU (a second
# pwru for a before/after ratio), PEER_PWRU (cilium/pwru's binary, for hitcost).
# Needs root (BPF, network namespaces). Never part of the test suite: it fails
# only when a bench cannot run, never on a number.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

QUICK="" VM=0 ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=--quick ;;
    --vm) VM=1 ;;
    --only) shift; while [ $# -gt 0 ] && [[ "$1" != --* ]]; do ONLY+=("$1"); shift; done; continue ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
wanted() {
  if [ ${#ONLY[@]} -gt 0 ]; then printf '%s\n' "${ONLY[@]}" | grep -qx "$1"; return; fi
  { [ "$1" != attach ] && [ "$1" != hitcost ]; } || [ "$VM" = 1 ]
}

echo "bench: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r); $(load_note)" >&2
log "building pwru and the bench programs in $BUILD_DIR"
cmake -S "$REPO_DIR" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
targets=(pwru pwru-bench-decode pwru-bench-filter)
{ wanted agent || wanted flood; } && targets+=(pwru-agent)
wanted merge && targets+=(pwru-bench-merge)
cmake --build "$BUILD_DIR" -j"$(nproc)" --target "${targets[@]}" >/dev/null || exit 1

RESULTS=$(mktemp /tmp/pwru-bench-results.XXXXXX)
trap 'rm -f "$RESULTS"' EXIT
FAILED=0
run() {  # run NAME COMMAND...
  wanted "$1" || return 0
  local name=$1 rc t0
  shift
  t0=$(now)
  log "---- $name: $*"
  "$@" > >(tee -a "$RESULTS" | grep -v '^RESULT' >&2)
  rc=$?
  log "---- $name: exit $rc after $(secs "$t0" "$(now)") s"
  if [ "$rc" -eq 77 ]; then echo "RESULT	$name	skipped	-	-	-	see the log above" >>"$RESULTS"
  elif [ "$rc" -ne 0 ]; then FAILED=$((FAILED + 1)); echo "RESULT	$name	FAILED (exit $rc)	-	-	-	see the log above" >>"$RESULTS"; fi
}
run nomatch "$BENCH_DIR/nomatch_iperf.sh" $QUICK
run events "$BENCH_DIR/event_path.sh" $QUICK
run decode "$BUILD_DIR/bench/pwru-bench-decode" 20000 $([ -n "$QUICK" ] && echo 5 || echo 20)
run filter "$BUILD_DIR/bench/pwru-bench-filter"
run agent "$BENCH_DIR/agent.sh" $QUICK
run flood "$BENCH_DIR/agent_flood.sh" $QUICK
run merge "$BUILD_DIR/bench/pwru-bench-merge" 10 $([ -n "$QUICK" ] && echo 10000 || echo 100000)
run attach "$BENCH_DIR/attach_vm.sh" $QUICK
run hitcost "$BENCH_DIR/hit_cost_vm.sh" $QUICK
sleep 0.2  # the tee of the last bench

# The table (markdown, ready for bench/README.md).
echo
echo "| bench | what | ours | peer / target | ratio | notes |"
echo "|---|---|---|---|---|---|"
grep '^RESULT' "$RESULTS" | cut -f2- | sed 's/|/\\|/g; s/\t/ | /g; s/^/| /; s/$/ |/'
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r); $(load_note); command: bench/run.sh $QUICK $([ "$VM" = 1 ] && echo --vm)"
[ "$FAILED" -eq 0 ]
