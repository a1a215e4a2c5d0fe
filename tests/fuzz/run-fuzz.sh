#!/usr/bin/env bash
# The fuzz layer: tests/fuzz/run-fuzz.sh BINARY CORPUS SECONDS
#   1. replays every file of CORPUS through BINARY (found bugs stay fixed);
#   2. runs afl-fuzz on BINARY from CORPUS for SECONDS and fails on any crash,
#      hang or broken invariant, printing the input that caused it.
# Exit 77 (ctest: skipped) with the reason when afl++ is not installed.
set -euo pipefail

bin=${1:-} corpus=${2:?corpus folder} secs=${3:-60}
if [ -z "$bin" ] || ! command -v afl-fuzz >/dev/null; then
  echo "SKIPPED: afl++ is not installed, so the fuzz target was not built; scripts/install-deps.sh test installs it"
  exit 77
fi
[ -x "$bin" ] || { echo "run-fuzz: $bin is not built; build the pwru-request-fuzz target" >&2; exit 1; }

out=$(mktemp -d /var/tmp/pwru-fuzz.XXXXXX)
trap 'rm -rf "$out"' EXIT
export ASAN_OPTIONS=abort_on_error=1:symbolize=0:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1

n=0
for f in "$corpus"/*; do
  if ! "$bin" "$f" >"$out/replay.log" 2>&1; then
    echo "FAIL: corpus input $f"
    tail -20 "$out/replay.log"
    exit 1
  fi
  n=$((n + 1))
done
echo "replayed $n corpus inputs"

# No UI, no CPU pinning or governor checks (CI machines), crashes reported
# even where core_pattern pipes them away.
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_FORKSRV_INIT_TMOUT=20000 AFL_QUIET=1
rc=0
timeout $((secs + 120)) afl-fuzz -V "$secs" -m none -t 2000 -i "$corpus" -o "$out/afl" -- "$bin" \
  >"$out/afl.log" 2>&1 || rc=$?
stats="$out/afl/default/fuzzer_stats"
if [ ! -f "$stats" ]; then
  echo "FAIL: afl-fuzz did not run (exit $rc)"
  tail -30 "$out/afl.log"
  exit 1
fi
get() { awk -v k="$1" '$1 == k { print $3 }' "$stats"; }
echo "afl-fuzz: $(get execs_done) executions in ${secs} s, $(get corpus_count) paths, $(get saved_crashes) crashes, $(get saved_hangs) hangs"
bad=0
for kind in crashes hangs; do
  for f in "$out/afl/default/$kind"/id:*; do
    [ -e "$f" ] || continue
    bad=1
    echo "FAIL: $kind input $(basename "$f") (hex):"
    od -An -tx1 "$f" | head -8
    "$bin" "$f" 2>&1 | tail -10 || true
  done
done
[ "$(get execs_done)" -gt 1000 ] || { echo "FAIL: only $(get execs_done) executions: the fuzzer did not really run"; bad=1; }
exit $bad
