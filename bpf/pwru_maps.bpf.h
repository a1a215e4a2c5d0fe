/* SPDX-License-Identifier: Apache-2.0 */
/* Maps and configuration of pwru.bpf.c, kept in one place so the filter and
 * event code can refer to them. */
#ifndef PWRU_MAPS_BPF_H
#define PWRU_MAPS_BPF_H

#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "pwru_abi.h"

/* Set by user space before load; frozen, so the verifier prunes every
 * branch of a disabled feature. */
const volatile struct pwru_config CFG = {};

/* Set by user space once every link is attached: no event is emitted while
 * attaching (a half-attached trajectory would mislead). */
volatile __u32 ready = 0;

/* Events. Sized by user space (bpf_map__set_max_entries) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} events SEC(".maps");

/* Per-CPU counters, index 0: loss is counted, never silent. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pwru_counters);
} counters SEC(".maps");

/* Per-CPU scratch: the packet window the pcap filter reads. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pwru_pkt_window);
} pkt_windows SEC(".maps");

/* --filter-track-skb: skbs that matched once and are followed from then on,
 * whatever NAT or decapsulation does to their headers. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PWRU_TRACKED_SKBS);
	__type(key, __u64);
	__type(value, __u8);
} tracked_skbs SEC(".maps");

/* pwru-agent's node scope (CFG.scope_node): the netns inodes that make up
 * this node, the agent's own and its pods'. A map, not CFG: pods come and go
 * while a trace runs, and the agent refreshes the set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PWRU_NODE_NETNS_MAX);
	__type(key, __u32);
	__type(value, __u8);
} node_netns SEC(".maps");

/* --filter-track-skb-by-stackid (pwru's semantics: calls in the call context
 * of a selected skb belong to it). The context is the kernel stack the call
 * runs on; pwru walks frame pointers to the outermost frame for the same
 * answer, which kernels built without frame pointers (ORC) do not allow.
 * stack_skb: stack base -> the last selected skb seen on it;
 * skb_stack: the reverse, to forget the entry when the skb moves or goes. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PWRU_TRACKED_SKBS);
	__type(key, __u64);
	__type(value, __u64);
} stack_skb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PWRU_TRACKED_SKBS);
	__type(key, __u64);
	__type(value, __u64);
} skb_stack SEC(".maps");

/* --filter-track-skb with --filter-trace-xdp (pwru's way): buffers
 * (data_hard_start, which becomes skb->head after XDP_PASS) of frames that
 * matched in XDP, and skb heads that matched, for an XDP program that runs
 * on them later. xdp_matched: fentry's verdict for fexit on this CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PWRU_TRACKED_SKBS);
	__type(key, __u64);
	__type(value, __u8);
} xdp_heads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8);
} xdp_matched SEC(".maps");

/* --filter-track-skb on the kprobe backends: the skb being cloned or copied,
 * stashed at the entry of skb_clone / skb_copy / ... for their return probe,
 * which sees only the new skb. Keyed by the calling task and the stack it runs
 * on: every idle task has pid 0, and a softirq on the interrupt stack must not
 * take the stash of the task it interrupted. */
struct clone_key {
	__u64 pid_tgid;
	__u64 stack;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct clone_key);
	__type(value, __u64);
} clone_parents SEC(".maps");

/* --filter-track-skb through veth's XDP path: the tracked skb veth_xdp_rcv_skb
 * was called with, for its return probe (same key as clone_parents, its own
 * map: clones made inside must not take this stash). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct clone_key);
	__type(value, __u64);
} veth_parents SEC(".maps");

/* The kernel stack this program runs on, which is the traced code's (BPF
 * programs run on the kernel stack): the task's stack when our own stack
 * address lies in it (read back as a number: the verifier forbids pointer
 * arithmetic on it), else this CPU's interrupt stack, named by the CPU
 * (softirqs run there; its address is only page aligned, so it cannot be
 * found by rounding). A CPU number never equals a kernel address. */
static __always_inline __u64 current_stack_base(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 stack = (__u64)BPF_CORE_READ(task, stack);
	__u64 here = 0;
	void *p = &here;

	bpf_probe_read_kernel(&here, sizeof(here), &p);
	if (stack && here - stack < PWRU_KSTACK_SIZE)
		return stack;
	return (__u64)bpf_get_smp_processor_id() + 1;
}

static __always_inline struct pwru_counters *this_cpu_counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&counters, &zero);
}

#endif /* PWRU_MAPS_BPF_H */
