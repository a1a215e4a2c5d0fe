#!/usr/bin/env bash
# Bench 1b: the cost of one hit on kprobe-multi, in the qemu VM (Debian 6.12;
# tests/vm/run-in-vm.sh boots it), against cilium/pwru measured in the same VM
# run. Runs bench/guest_hit_cost.sh inside; see there for what is measured.
#
#   PEER_PWRU=/path/to/cilium-pwru [BASELINE_PWRU=/path/to/older-pwru] bench/hit_cost_vm.sh [--quick]
#
# PEER_PWRU: cilium/pwru's binary (../shared/reference/measuring.md says how
# to build v1.0.9 offline; never commit it). Without it only BASELINE_PWRU
# (or nothing) is compared. Both must live outside /tmp (the guest's /tmp is
# its own).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-system-x86_64
[ -x "$PWRU" ] || { echo "SKIPPED: no pwru at $PWRU (build it)"; exit 77; }
PEER=${PEER_PWRU:-} BASE=${BASELINE_PWRU:-}
for b in "$PEER" "$BASE"; do
  [ -z "$b" ] && continue
  [ -x "$b" ] || { echo "bench: $b is not an executable" >&2; exit 1; }
  case $(readlink -f "$b") in /tmp/*) echo "bench: $b is under /tmp, which the guest does not see: copy it elsewhere" >&2; exit 1 ;; esac
done
[ -n "$PEER" ] || log "PEER_PWRU is not set: no cilium/pwru row (measuring.md says how to build it)"
QUICK=""
[ "${1:-}" = --quick ] && QUICK=--quick
vm_prepare
cd "$REPO_DIR" || exit 1
shares=()
for b in "$PEER" "$BASE"; do [ -n "$b" ] && shares+=(--share "$(dirname "$(readlink -f "$b")")"); done
peer_arg=- base_arg=-
[ -n "$PEER" ] && peer_arg=$(readlink -f "$PEER")
[ -n "$BASE" ] && base_arg=$(readlink -f "$BASE")
"$REPO_DIR/tests/vm/run-in-vm.sh" --timeout "${BENCH_VM_TIMEOUT:-1800}" "${shares[@]}" -- \
  bash "$BENCH_DIR/guest_hit_cost.sh" $QUICK "$(readlink -f "$PWRU")" "$peer_arg" "$base_arg"
