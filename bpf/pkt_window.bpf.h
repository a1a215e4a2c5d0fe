/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-CPU packet window the pcap filters read: where a packet starts
 * (its MAC or network header), its first PWRU_PKT_WINDOW bytes copied once,
 * and pkt_load_slow() for every load the window does not cover. Also the
 * stub shape every filter entry point has before user space splices the
 * translated filter in (PWRU_PCAP_FILTER_STUB).
 */
#ifndef PWRU_PKT_WINDOW_BPF_H
#define PWRU_PKT_WINDOW_BPF_H

#include "pwru_maps.bpf.h"
#include <bpf/bpf_core_read.h>

#define PWRU_ETH_HLEN  14
#define PWRU_NO_HEADER ((__u16)~0U)

/* Which header the pcap filter starts from. Probes decide per skb; the
 * filter test harness forces one. */
enum pcap_start { PCAP_START_AUTO, PCAP_START_L2, PCAP_START_L3 };

/*
 * Reads `size` (1, 2 or 4) bytes at packet offset `off` as a big-endian
 * number, from the window, else from the linear data. Returns -1 past the
 * packet end (the cBPF program then rejects, as libpcap does) and for bytes
 * in paged fragments (not covered yet: the filter rejects such packets, and
 * counts them so the user is told).
 * Called from the translated filter for loads it cannot do inline.
 *
 * Global, not static: the verifier checks a global function once per
 * program, on its own, and at a call site only matches the arguments to its
 * signature. A static one is walked again at every call, in every state of
 * the caller: with `protochain` loops (a call per load per iteration) that
 * made loading 48 tracepoint programs take seconds.
 */
__noinline long pkt_load_slow(struct pwru_pkt_window *w, __u32 off, __u32 size)
{
	__u8 b[8] = {};
	__u64 end = (__u64)off + size;
	__u64 n = size;

	if (!w || size == 0 || size > 4)
		return -1;
	if (end > w->len)
		return -1;
	if (end <= w->copied && off <= PWRU_PKT_WINDOW - 4) {
		__u32 i = off;

		/* off <= 124 here, but clang may test one register and index with
		 * another: hide the value, then a mask (a no-op) bounds the index */
		asm volatile("" : "+r"(i));
		__builtin_memcpy(b, &w->data[i & (PWRU_PKT_WINDOW - 1)], 4);
	} else if (end <= w->linear) {
		/* As a global function's argument, size reaches the verifier
		 * unbounded, and clang tests a copy of it: hide the value, then
		 * a mask (a no-op, size <= 4 here) bounds the helper's length. */
		asm volatile("" : "+r"(n));
		if (bpf_probe_read_kernel(b, n & 7, (void *)(w->start + off)))
			return -1;
	} else {
		struct pwru_counters *cnt = this_cpu_counters();

		if (cnt)
			cnt->filter_nonlinear++;
		return -1;
	}
	if (size == 1)
		return b[0];
	if (size == 2)
		return ((__u32)b[0] << 8) | b[1];
	return ((__u32)b[0] << 24) | ((__u32)b[1] << 16) | ((__u32)b[2] << 8) | b[3];
}

/*
 * A filter entry point: user space replaces its body with the eBPF translated
 * from libpcap's cBPF right before the program is loaded
 * (tracer/filter/filter_injector.cc finds it by name in the BTF func info). The stub
 * calls pkt_load_slow so that libbpf links it into every program that uses a
 * filter; the empty asm makes off and size opaque to clang, which would
 * otherwise specialise pkt_load_slow for constant arguments (the translated
 * filters pass any offset and size).
 */
#define PWRU_PCAP_FILTER_STUB(name)                           \
	static __noinline int name(struct pwru_pkt_window *w) \
	{                                                     \
		__u32 off = 0, size = 1;                      \
		asm volatile("" : "+r"(off), "+r"(size));     \
		return pkt_load_slow(w, off, size) >= 0;      \
	}

/* Where a packet starts for the filter and the capture, and how much of it
 * there is: from the MAC header when the skb has one in front of its network
 * header (L2, DLT_EN10MB), else from the network header (L3, DLT_RAW). */
struct pkt_bounds {
	unsigned char *start;
	__u32 len;    /* bytes from start to the end of the packet */
	__u32 linear; /* of which in the linear area */
	bool l2;
};

/* How a probe holds its skb, a constant at each call site: an untyped
 * address (kprobes: each field read is a bpf_probe_read_kernel() call), or a
 * pointer the verifier knows to be a struct sk_buff (tp_btf arguments: plain
 * loads, which the JIT makes guarded moves, no call). */
enum skb_access { SKB_UNTYPED, SKB_TYPED };

/* The sk_buff fields packet_bounds() needs. */
struct skb_layout {
	unsigned char *head;
	unsigned char *data;
	__u32 len;
	__u32 tail;
	__u16 mac;
	__u16 net;
};

/* Copies a field of `type` at sk_buff offset `off` out of `buf`, which holds
 * the sk_buff's bytes from offset `lo` (both CO-RE constants: the verifier
 * sees a fixed, aligned stack offset). */
#define SKB_SPAN_FIELD(buf, lo, type, off) (*(type *)((void *)(buf) + ((off) - (lo))))

/*
 * Every probe reads these on every hit, and most hits are then rejected by
 * the filter. On tp_btf the skb is typed: plain loads, no helper call (this
 * halved a rejected hit's cost on the host's tracepoints, bench/README.md).
 * On the kprobe backends each read is a bpf_probe_read_kernel() call:
 * network_header, mac_header, tail, end, head and data sit together at the
 * end of sk_buff's header group (6.12 and 6.18 here, and the layout is much
 * older), so one read covers them and len is a second, instead of six calls.
 * Under the VM's emulation that saving was lost in the noise (one round,
 * 1,839 vs 1,830 ns): it is kept as fewer calls, not as a measured gain.
 * Where a kernel lays the fields out otherwise (the span is longer than the
 * buffer), one read per field; the verifier, which knows the offsets, drops
 * the branch not taken.
 */
static __always_inline void read_skb_layout(struct sk_buff *skb, enum skb_access access,
					    struct skb_layout *l)
{
	const __u64 off_net = bpf_core_field_offset(struct sk_buff, network_header);
	const __u64 off_mac = bpf_core_field_offset(struct sk_buff, mac_header);
	const __u64 off_tail = bpf_core_field_offset(struct sk_buff, tail);
	const __u64 off_head = bpf_core_field_offset(struct sk_buff, head);
	const __u64 off_data = bpf_core_field_offset(struct sk_buff, data);
	const __u64 lo = (off_net < off_mac ? off_net : off_mac) & ~7ULL;
	const __u64 hi = off_data + sizeof(void *);
	__u64 span[6];

	if (access == SKB_TYPED) {
		l->head = skb->head;
		l->data = skb->data;
		l->len = skb->len;
		l->tail = skb->tail;
		l->mac = skb->mac_header;
		l->net = skb->network_header;
		return;
	}
	l->len = BPF_CORE_READ(skb, len);
	if (off_tail > lo && off_head > lo && hi > lo && hi - lo <= sizeof(span) &&
	    !(off_head & 7) && !(off_data & 7) && !(off_tail & 3)) {
		if (bpf_probe_read_kernel(span, hi - lo, (void *)skb + lo)) {
			__builtin_memset(l, 0, sizeof(*l));
			return;
		}
		l->net = SKB_SPAN_FIELD(span, lo, __u16, off_net);
		l->mac = SKB_SPAN_FIELD(span, lo, __u16, off_mac);
		l->tail = SKB_SPAN_FIELD(span, lo, __u32, off_tail);
		l->head = SKB_SPAN_FIELD(span, lo, unsigned char *, off_head);
		l->data = SKB_SPAN_FIELD(span, lo, unsigned char *, off_data);
		return;
	}
	l->head = BPF_CORE_READ(skb, head);
	l->data = BPF_CORE_READ(skb, data);
	l->mac = BPF_CORE_READ(skb, mac_header);
	l->net = BPF_CORE_READ(skb, network_header);
	l->tail = BPF_CORE_READ(skb, tail);
}

static __always_inline void packet_bounds(struct sk_buff *skb, enum pcap_start mode,
					  enum skb_access access, struct pkt_bounds *b)
{
	struct skb_layout l;
	__s64 start_off, len, linear;

	read_skb_layout(skb, access, &l);
	if (mode == PCAP_START_AUTO)
		b->l2 = l.mac != PWRU_NO_HEADER && l.net != PWRU_NO_HEADER &&
			l.net >= l.mac + PWRU_ETH_HLEN;
	else
		b->l2 = mode == PCAP_START_L2;

	if (b->l2)
		start_off = l.mac;
	else if (l.net != PWRU_NO_HEADER)
		start_off = l.net;
	else
		start_off = l.data - l.head;

	len = (__s64)l.len + (l.data - l.head) - start_off;
	linear = (__s64)l.tail - start_off;
	if (len < 0)
		len = 0;
	if (linear < 0)
		linear = 0;
	if (linear > len)
		linear = len;
	b->start = l.head + start_off;
	b->len = (__u32)len;
	b->linear = (__u32)linear;
}

/* Copies up to `max` (a constant) linear bytes from the packet start; returns
 * how many. 64-bit lengths: a u32's zero-extension would lose the bound the
 * verifier needs for the helper's size. */
static __always_inline __u64 copy_packet_head(const struct pkt_bounds *b, void *dst,
					      const __u64 max)
{
	__u64 n = b->linear;

	if (n > max)
		n = max;
	if (bpf_probe_read_kernel(dst, n, b->start))
		return 0;
	return n;
}

/* The per-CPU window, filled from the packet start that `mode` chooses. */
static __always_inline struct pwru_pkt_window *
fill_window(struct sk_buff *skb, enum pcap_start mode, enum skb_access access, struct pkt_bounds *b)
{
	struct pwru_pkt_window *w;
	__u32 zero = 0;

	w = bpf_map_lookup_elem(&pkt_windows, &zero);
	if (!w)
		return NULL;
	packet_bounds(skb, mode, access, b);
	w->copied = (__u32)copy_packet_head(b, w->data, PWRU_PKT_WINDOW);
	w->len = b->len;
	w->linear = b->linear;
	w->start = (__u64)b->start;
	w->skb = (__u64)skb;
	return w;
}

#endif /* PWRU_PKT_WINDOW_BPF_H */
