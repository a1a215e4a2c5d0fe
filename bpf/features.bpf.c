// SPDX-License-Identifier: Apache-2.0
/*
 * Tiny programs for feature probing (tracer/features.cc): each is loaded and
 * attached once to learn whether a backend really works on this kernel, not
 * just whether the verifier accepts it.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("kprobe")
int probe_kprobe(struct pt_regs *ctx)
{
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
