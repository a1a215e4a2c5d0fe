#!/usr/bin/env bash
# Bench 1: attach + detach of every skb function, in the qemu VM (Debian 6.12,
# real kprobes and kprobe.multi; tests/vm/run-in-vm.sh boots it). Runs
# bench/guest_attach.sh inside; see there for what is measured.
#
#   bench/attach_vm.sh [--quick]
#
# BASELINE_PWRU=path: a second pwru binary (e.g. built from an older commit)
# measured in the same VM run, for a before/after ratio. BENCH_ATTACH_PARTS:
# a subset of "multi kprobe serial bpftrace" (guest_attach.sh).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-system-x86_64 bpftrace
[ -x "$PWRU" ] || { echo "SKIPPED: no pwru at $PWRU (build it)"; exit 77; }
QUICK=""
[ "${1:-}" = --quick ] && QUICK=--quick
vm_prepare
cd "$REPO_DIR" || exit 1
"$REPO_DIR/tests/vm/run-in-vm.sh" --timeout "${BENCH_VM_TIMEOUT:-1800}" -- \
  env ${BENCH_ATTACH_PARTS:+BENCH_ATTACH_PARTS="$BENCH_ATTACH_PARTS"} bash "$BENCH_DIR/guest_attach.sh" $QUICK "$(readlink -f "$PWRU")" \
  ${BASELINE_PWRU:+"$(readlink -f "$BASELINE_PWRU")"}
