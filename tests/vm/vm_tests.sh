#!/usr/bin/env bash
# The vm test layer (CTest label `vm`): boots ONE qemu VM on Debian's 6.12 kernel
# (kprobes, kprobe.multi) through tests/vm/run-in-vm.sh and runs every case of
# tests/vm/guest_tests.sh in it with our pwru.
#
#   tests/vm/vm_tests.sh PATH_TO_PWRU
#
# Prints `SKIPPED: reason` and exits 0 only when qemu or the kernel cannot be had
# (tools not installed, the Debian mirror unreachable); any other problem fails.
# Environment: VM_TIMEOUT (s, whole VM run, default 840), and what run-in-vm.sh and
# guest_tests.sh read (PWRU_VM_CACHE, VM_CASES, VM_READY_TIMEOUT, VM_STOP_TIMEOUT...).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
if [ $# -ne 1 ]; then
  echo "usage: $0 PATH_TO_PWRU" >&2
  exit 2
fi
pwru=$(readlink -f "$1")
if [ ! -x "$pwru" ]; then
  echo "vm_tests: no pwru binary at '$1' (build it first)" >&2
  exit 1
fi
now() { echo "${EPOCHREALTIME/,/.}"; }
t0=$(now)

# Kernel and initramfs first, so that "cannot be had" is told apart from a failure.
"$here/run-in-vm.sh" --prepare
rc=$?
if [ "$rc" -eq 77 ]; then
  # run-in-vm.sh has printed "SKIPPED: <reason>".
  echo "vm_tests: the vm layer was skipped (nothing ran)"
  exit 0
elif [ "$rc" -ne 0 ]; then
  echo "vm_tests: preparing the VM failed (exit $rc)" >&2
  exit 1
fi

log=$(mktemp "${TMPDIR:-/tmp}/pwru-vm-tests.XXXXXX")
trap 'rm -f "$log"' EXIT
# The guest reads the checkout (guest_tests.sh, tests/bpf_progs) and pwru's build dir:
# shared explicitly, for when they lie under a directory the guest has its own of (/tmp).
"$here/run-in-vm.sh" --timeout "${VM_TIMEOUT:-840}" --share "$here/../.." --share "$pwru" -- \
  env ${VM_CASES:+VM_CASES="$VM_CASES"} ${VM_READY_TIMEOUT:+VM_READY_TIMEOUT="$VM_READY_TIMEOUT"} \
  ${VM_STOP_TIMEOUT:+VM_STOP_TIMEOUT="$VM_STOP_TIMEOUT"} \
  bash "$here/guest_tests.sh" "$pwru" | tee "$log"
rc=${PIPESTATUS[0]}

summary=$(grep -E '^vm: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
echo "vm_tests: vm layer took $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s (run-in-vm exit $rc)" >&2
if [ -z "$summary" ]; then
  echo "vm_tests: FAIL: the guest tests did not report (run-in-vm exit $rc)" >&2
  echo "vm: 0 passed, 1 failed"
  exit 1
fi
if [ "$rc" -ne 0 ] || ! grep -q ' 0 failed$' <<<"$summary"; then
  exit 1
fi
exit 0
