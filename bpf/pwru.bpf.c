// SPDX-License-Identifier: Apache-2.0
/*
 * The probe programs. One object holds every backend's programs; user space
 * turns autoload off for the backends it does not use.
 *
 * Section names are our own ("pwru_kprobe", ...): tracer/filter/filter_injector.cc
 * registers libbpf handlers for them so that it can splice the translated
 * pcap filter into each program right before it is loaded.
 */
#include "skb_event.bpf.h"
#include "xdp_event.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The sixth argument register; libbpf 1.1 has no PT_REGS_PARM6. */
#if defined(__TARGET_ARCH_x86)
#define PWRU_PARM6(ctx) ((ctx)->r9)
#else
#define PWRU_PARM6(ctx) 0
#endif

#define PWRU_ARG_1(ctx) PT_REGS_PARM1(ctx)
#define PWRU_ARG_2(ctx) PT_REGS_PARM2(ctx)
#define PWRU_ARG_3(ctx) PT_REGS_PARM3(ctx)
#define PWRU_ARG_4(ctx) PT_REGS_PARM4(ctx)
#define PWRU_ARG_5(ctx) PT_REGS_PARM5(ctx)
#define PWRU_ARG_6(ctx) PWRU_PARM6(ctx)

/* kprobe and kprobe.multi: one program per position of the skb argument.
 * The IP can sit a few bytes past the symbol (ENDBR), hence the range test
 * for kfree_skbmem (0 when unset: never in range).
 * The argument after the skb travels along: it is the drop verdict of
 * kfree_skb_reason(skb, reason) and sk_skb_reason_drop(sk, skb, reason);
 * user space decodes it only for the drop functions of tracer/events/drop_verdict.cc
 * (elsewhere, e.g. 6.12's static skb_release_data, it is no verdict). */
#define KPROBE_SKB_AT(sec, prefix, pos, next)                                       \
	SEC(sec) int prefix##_skb_##pos(struct pt_regs *ctx)                        \
	{                                                                           \
		__u64 ip = bpf_get_func_ip(ctx);                                    \
		struct skb_hit hit = {                                              \
			.probe_kind = PWRU_PROBE_KPROBE,                            \
			.func_addr = ip,                                            \
			.arg_after_skb = PWRU_ARG_##next(ctx),                      \
			.frees = ip - CFG.kfree_skbmem_addr < 16,                   \
		};                                                                  \
		return trace_skb(ctx, (struct sk_buff *)PWRU_ARG_##pos(ctx), &hit); \
	}

KPROBE_SKB_AT("pwru_kprobe", kprobe, 1, 2)
KPROBE_SKB_AT("pwru_kprobe", kprobe, 2, 3)
KPROBE_SKB_AT("pwru_kprobe", kprobe, 3, 4)
KPROBE_SKB_AT("pwru_kprobe", kprobe, 4, 5)
KPROBE_SKB_AT("pwru_kprobe", kprobe, 5, 6)

/* kprobe.multi: the same five programs, one link each for the functions
 * whose skb is at that position (most are at 1). Not one program reading a
 * cookie: bpf_get_attach_cookie() on a kprobe.multi link is a bsearch of the
 * link's sorted addresses, an indirect compare per step
 * (bpf_kprobe_multi_cookie() in kernel/trace/bpf_trace.c): eleven calls per
 * hit over 1,600 functions, paid by every hit the filter then rejects. */
KPROBE_SKB_AT("pwru_kprobe_multi", kprobe_multi, 1, 2)
KPROBE_SKB_AT("pwru_kprobe_multi", kprobe_multi, 2, 3)
KPROBE_SKB_AT("pwru_kprobe_multi", kprobe_multi, 3, 4)
KPROBE_SKB_AT("pwru_kprobe_multi", kprobe_multi, 4, 5)
KPROBE_SKB_AT("pwru_kprobe_multi", kprobe_multi, 5, 6)

/* --filter-non-skb-funcs: a function without an skb argument is attributed
 * to the last selected skb seen on the same kernel stack, if any
 * (--filter-track-skb-by-stackid, which that option implies). */
SEC("pwru_kprobe")
int kprobe_non_skb(struct pt_regs *ctx)
{
	__u64 stack = current_stack_base();
	__u64 *skb = bpf_map_lookup_elem(&stack_skb, &stack);
	__u64 ip;

	if (!skb || !*skb)
		return 0;
	ip = bpf_get_func_ip(ctx);
	struct skb_hit hit = {
		.probe_kind = PWRU_PROBE_KPROBE,
		.func_addr = ip,
		.frees = ip - CFG.kfree_skbmem_addr < 16,
	};
	return trace_skb(ctx, (struct sk_buff *)*skb, &hit);
}

/*
 * --filter-track-skb follows clones and copies (pwru does it with fexit on
 * skb_clone and skb_copy; fexit is not on every kernel that has kprobes):
 * a kprobe at the entry stashes the old skb, a kretprobe on the same function
 * reads the new one from the return value and tracks it when the old one is
 * tracked. Stashed whether tracked or not: the old skb may match the filter
 * in this very call, at a probe that runs after this one.
 */
static __always_inline struct clone_key clone_key_here(void)
{
	struct clone_key k = {.pid_tgid = bpf_get_current_pid_tgid(),
			      .stack = current_stack_base()};

	return k;
}

SEC("pwru_kprobe")
int kprobe_skb_clone_entry(struct pt_regs *ctx)
{
	struct clone_key k;
	__u64 old = PT_REGS_PARM1(ctx);

	if (!ready || !CFG.track_skb || !old)
		return 0;
	k = clone_key_here();
	bpf_map_update_elem(&clone_parents, &k, &old, BPF_ANY);
	return 0;
}

SEC("pwru_kprobe")
int kretprobe_skb_clone(struct pt_regs *ctx)
{
	struct clone_key k;
	__u64 *stashed, old, new = PT_REGS_RC(ctx);
	__u8 one = 1;

	if (!CFG.track_skb)
		return 0;
	k = clone_key_here();
	stashed = bpf_map_lookup_elem(&clone_parents, &k);
	if (!stashed)
		return 0;
	old = *stashed;
	bpf_map_delete_elem(&clone_parents, &k);
	if (new &&bpf_map_lookup_elem(&tracked_skbs, &old))
		bpf_map_update_elem(&tracked_skbs, &new, &one, BPF_ANY);
	return 0;
}

/* --filter-track-skb through veth's XDP path (pwru v1.0.7 follows it at
 * veth_convert_skb_to_xdp_buff, which kernels may inline): veth_xdp_rcv_skb(rq,
 * skb, ...) returns the skb that goes on, the old one or the copy it made for
 * the XDP program. Its own stash map: the clones made inside must not take it. */
SEC("pwru_kprobe")
int kprobe_veth_rcv_entry(struct pt_regs *ctx)
{
	struct clone_key k;
	__u64 old = PT_REGS_PARM2(ctx);

	if (!ready || !CFG.track_skb || !old || !bpf_map_lookup_elem(&tracked_skbs, &old))
		return 0;
	k = clone_key_here();
	bpf_map_update_elem(&veth_parents, &k, &old, BPF_ANY);
	return 0;
}

SEC("pwru_kprobe")
int kretprobe_veth_rcv(struct pt_regs *ctx)
{
	struct clone_key k;
	__u64 new = PT_REGS_RC(ctx);
	__u8 one = 1;

	if (!CFG.track_skb)
		return 0;
	k = clone_key_here();
	if (!bpf_map_lookup_elem(&veth_parents, &k))
		return 0;
	bpf_map_delete_elem(&veth_parents, &k);
	if (new)
		bpf_map_update_elem(&tracked_skbs, &new, &one, BPF_ANY);
	return 0;
}

/* --output-bpfmap (pwru v1.0.11): a BPF map operation called on the stack of
 * a selected skb (found as kprobe_non_skb finds it) is an event of that skb
 * with the map, key and value. bpf_map's operations take (map, key[, value]);
 * a lookup's value is its return value, read at the kretprobe with what its
 * entry stashed. */
static __always_inline int trace_bpfmap(struct pt_regs *ctx, __u64 ip, __u8 op, __u64 map,
					__u64 key, __u64 value)
{
	__u64 stack = current_stack_base();
	__u64 *skb = bpf_map_lookup_elem(&stack_skb, &stack);

	if (!skb || !*skb)
		return 0;
	struct skb_hit hit = {
		.probe_kind = PWRU_PROBE_KPROBE,
		.func_addr = ip,
		.bpfmap_op = op,
		.bpfmap = map,
		.bpfmap_key = key,
		.bpfmap_value = value,
	};
	return trace_skb(ctx, (struct sk_buff *)*skb, &hit);
}

SEC("pwru_kprobe")
int kprobe_bpfmap_update(struct pt_regs *ctx)
{
	return trace_bpfmap(ctx, bpf_get_func_ip(ctx), PWRU_BPFMAP_UPDATE, PT_REGS_PARM1(ctx),
			    PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx));
}

SEC("pwru_kprobe")
int kprobe_bpfmap_delete(struct pt_regs *ctx)
{
	return trace_bpfmap(ctx, bpf_get_func_ip(ctx), PWRU_BPFMAP_DELETE, PT_REGS_PARM1(ctx),
			    PT_REGS_PARM2(ctx), 0);
}

struct bpfmap_lookup {
	__u64 ip;
	__u64 map;
	__u64 key;
};

/* A lookup between its entry and its return, per task and stack (as
 * clone_parents). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct clone_key);
	__type(value, struct bpfmap_lookup);
} bpfmap_lookups SEC(".maps");

SEC("pwru_kprobe")
int kprobe_bpfmap_lookup(struct pt_regs *ctx)
{
	struct clone_key k = clone_key_here();
	struct bpfmap_lookup l = {
		.ip = bpf_get_func_ip(ctx),
		.map = PT_REGS_PARM1(ctx),
		.key = PT_REGS_PARM2(ctx),
	};

	/* every lookup of every BPF program comes here: stash only those on
	 * the stack of a selected skb */
	if (!ready || !bpf_map_lookup_elem(&stack_skb, &k.stack))
		return 0;
	bpf_map_update_elem(&bpfmap_lookups, &k, &l, BPF_ANY);
	return 0;
}

SEC("pwru_kprobe")
int kretprobe_bpfmap_lookup(struct pt_regs *ctx)
{
	struct clone_key k = clone_key_here();
	struct bpfmap_lookup *l = bpf_map_lookup_elem(&bpfmap_lookups, &k);
	struct bpfmap_lookup copy;

	if (!l)
		return 0;
	copy = *l;
	bpf_map_delete_elem(&bpfmap_lookups, &k);
	return trace_bpfmap(ctx, copy.ip, PWRU_BPFMAP_LOOKUP, copy.map, copy.key, PT_REGS_RC(ctx));
}

/*
 * Tracepoints (tp_btf): slot N is bound to one tracepoint by user space
 * (bpf_program__set_attach_target) and CFG.tp[N] says where its arguments
 * are. The verifier accepts ctx[] reads only at constant offsets, and clang
 * merges a plain switch of ctx[i] into one computed-offset load; the asm
 * keeps one fixed-offset load per case. CFG is constant to the verifier, so
 * it walks only the case in use.
 */
#define CTX_LOAD(ctx, n)                                                                   \
	({                                                                                 \
		__u64 __v;                                                                 \
		asm volatile("%0 = *(u64 *)(%1 + %2)" : "=r"(__v) : "r"(ctx), "i"((n)*8)); \
		__v;                                                                       \
	})

static __always_inline __u64 tp_arg(__u64 *ctx, __u8 i)
{
	switch (i) {
	case 0: return CTX_LOAD(ctx, 0);
	case 1: return CTX_LOAD(ctx, 1);
	case 2: return CTX_LOAD(ctx, 2);
	case 3: return CTX_LOAD(ctx, 3);
	case 4: return CTX_LOAD(ctx, 4);
	case 5: return CTX_LOAD(ctx, 5);
	default: return 0;
	}
}

static __always_inline int trace_tp(__u64 *ctx, const __u32 slot)
{
	/* keep the volatile: without it clang folds the zero initializer */
	const volatile struct pwru_tp_slot *s = &CFG.tp[slot];
	struct skb_hit hit = {
		.probe_kind = PWRU_PROBE_TRACEPOINT,
		.probe_id = slot,
		.frees = s->frees_skb,
	};

	if (s->reason_arg != PWRU_NO_ARG) {
		hit.drop_reason = (__u32)tp_arg(ctx, s->reason_arg);
		hit.flags |= PWRU_EV_HAS_REASON;
	}
	if (s->location_arg != PWRU_NO_ARG) {
		hit.drop_location = tp_arg(ctx, s->location_arg);
		hit.flags |= PWRU_EV_HAS_LOCATION;
	}
	return trace_skb(ctx, (struct sk_buff *)tp_arg(ctx, s->skb_arg), &hit);
}

#define TP_SLOT(n)                                     \
	SEC("pwru_tp_btf") int tp_slot_##n(__u64 *ctx) \
	{                                              \
		return trace_tp(ctx, n);               \
	}

/* Each TP_SLOT(n) defines a function; clang-format, which cannot see that,
 * would indent everything after the list. */
/* clang-format off */
TP_SLOT(0) TP_SLOT(1) TP_SLOT(2) TP_SLOT(3) TP_SLOT(4) TP_SLOT(5) TP_SLOT(6) TP_SLOT(7)
TP_SLOT(8) TP_SLOT(9) TP_SLOT(10) TP_SLOT(11) TP_SLOT(12) TP_SLOT(13) TP_SLOT(14) TP_SLOT(15)
TP_SLOT(16) TP_SLOT(17) TP_SLOT(18) TP_SLOT(19) TP_SLOT(20) TP_SLOT(21) TP_SLOT(22) TP_SLOT(23)
TP_SLOT(24) TP_SLOT(25) TP_SLOT(26) TP_SLOT(27) TP_SLOT(28) TP_SLOT(29) TP_SLOT(30) TP_SLOT(31)
TP_SLOT(32) TP_SLOT(33) TP_SLOT(34) TP_SLOT(35) TP_SLOT(36) TP_SLOT(37) TP_SLOT(38) TP_SLOT(39)
TP_SLOT(40) TP_SLOT(41) TP_SLOT(42) TP_SLOT(43) TP_SLOT(44) TP_SLOT(45) TP_SLOT(46) TP_SLOT(47)

/*
 * --filter-trace-tc / --filter-trace-xdp: fentry on a loaded tc or XDP BPF
 * program. User space loads one copy of this object per traced program
 * (bpf_program__set_attach_target needs the target at load time), with the
 * maps of the main copy, and sets traced_prog to the program's index in its
 * list, which names the program in the output. The first argument is what
 * the program gets: a struct sk_buff (its __sk_buff) or a struct xdp_buff.
 */
const volatile __u32 traced_prog = 0;
/* clang-format on */

SEC("pwru_fentry")
int fentry_tc(__u64 *ctx)
{
	struct skb_hit hit = {
		.probe_kind = PWRU_PROBE_TC,
		.probe_id = traced_prog,
		.func_addr = bpf_get_func_ip(ctx),
	};
	return trace_skb(ctx, (struct sk_buff *)CTX_LOAD(ctx, 0), &hit);
}

SEC("pwru_fentry")
int fentry_xdp(__u64 *ctx)
{
	return trace_xdp(ctx, (struct xdp_buff *)CTX_LOAD(ctx, 0), traced_prog,
			 bpf_get_func_ip(ctx));
}

/* --filter-track-skb with --filter-trace-xdp: hands a matched frame's buffer
 * on to the skb path (loaded and attached with fentry_xdp). */
SEC("pwru_fexit")
int fexit_xdp(__u64 *ctx)
{
	return xdp_done((struct xdp_buff *)CTX_LOAD(ctx, 0));
}

/*
 * The filter test harness (pwru-filtercheck): BPF_PROG_TEST_RUN hands it a
 * real sk_buff built from a test packet, and it runs exactly the code the
 * probes run: the window fill and the injected filter.
 * Returns 1 (match) or 0.
 */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

volatile __u32 filtercheck_l3 = 0;

SEC("pwru_tc")
int filtercheck(struct __sk_buff *ctx)
{
	struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);

	if (filtercheck_l3)
		return filter_pcap(skb, PCAP_START_L3, SKB_UNTYPED);
	return filter_pcap(skb, PCAP_START_L2, SKB_UNTYPED);
}

/*
 * The harness's route for the packets BPF_PROG_TEST_RUN builds no skb from:
 * above about 3.5 KB (GSO, BIG TCP, jumbograms: the test skb's linear area
 * is one page) and shorter than the header their ethertype announces. User
 * space writes the packet into filtercheck_packet, whose values lie end to
 * end in kernel memory (an array map's are one area), and its length into
 * filtercheck_len; the window is filled from there as fill_window() fills it
 * from an skb whose bytes are all linear, and the same spliced filter runs.
 * The test run's own frame is ignored.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* the harness makes it PWRU_FILTERCHECK_CHUNKS */
	__type(key, __u32);
	__type(value, struct pwru_filtercheck_chunk);
} filtercheck_packet SEC(".maps");

volatile __u32 filtercheck_len = 0;

SEC("pwru_tc")
int filtercheck_buffer(struct __sk_buff *ctx)
{
	struct pwru_pkt_window *w;
	__u32 zero = 0;
	void *pkt;
	__u64 len = filtercheck_len, n;

	pkt = bpf_map_lookup_elem(&filtercheck_packet, &zero);
	w = bpf_map_lookup_elem(&pkt_windows, &zero);
	if (!pkt || !w)
		return 0;
	n = len < PWRU_PKT_WINDOW ? len : PWRU_PKT_WINDOW;
	w->copied = bpf_probe_read_kernel(w->data, n, pkt) ? 0 : (__u32)n;
	w->len = (__u32)len;
	w->linear = (__u32)len;
	w->start = (__u64)pkt;
	w->skb = 0;
	return filter_window(w, !filtercheck_l3);
}
