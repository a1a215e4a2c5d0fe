// SPDX-License-Identifier: Apache-2.0
/*
 * Tiny programs for feature probing (tracer/kernel/features.cc): each is loaded and
 * attached once to learn whether a backend really works on this kernel, not
 * just whether the verifier accepts it.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Global data (.rodata and .bss, as pwru.bpf.c has): loading this object
 * makes libbpf probe its global-data, mmap-able-array and prog-bind-map
 * support now, at start. libbpf caches each probe's answer for the whole
 * process, failures included: probed first at a client's trace while the
 * agent was at its open-file limit (EMFILE), "no global data" was cached and
 * every later trace failed to load with EINVAL.
 */
const volatile __u32 probe_rodata = 0;
__u32 probe_bss;

SEC("kprobe")
int probe_kprobe(struct pt_regs *ctx)
{
	probe_bss = probe_rodata;
	return 0;
}

SEC("kprobe.multi")
int probe_kprobe_multi(struct pt_regs *ctx)
{
	return 0;
}

SEC("tp_btf")
int probe_tp_btf(__u64 *ctx)
{
	return 0;
}
