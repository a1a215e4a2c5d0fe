/* SPDX-License-Identifier: Apache-2.0 */
/* Filling one event from an skb: metadata, the IP/L4 tuple, process. */
#ifndef PWRU_SKB_EVENT_BPF_H
#define PWRU_SKB_EVENT_BPF_H

#include "skb_filter.bpf.h"
#include <bpf/bpf_endian.h>

#define PWRU_IPPROTO_TCP  6
#define PWRU_IPPROTO_UDP  17
#define PWRU_IPPROTO_SCTP 132

struct pwru_iphdr {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__be16 check;
	__u8 saddr[4];
	__u8 daddr[4];
};

struct pwru_ipv6hdr {
	__be32 ver_class_flow;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

static __always_inline void set_meta(struct sk_buff *skb, struct pwru_meta *m)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);

	m->netns = skb_netns(skb);
	m->mark = BPF_CORE_READ(skb, mark);
	m->len = BPF_CORE_READ(skb, len);
	m->protocol = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	if (CFG.output_skb_cb)
		bpf_probe_read_kernel(m->cb, sizeof(m->cb),
				      (void *)skb + bpf_core_field_offset(struct sk_buff, cb) +
					      bpf_core_field_offset(struct qdisc_skb_cb, data));
	if (dev) {
		m->ifindex = BPF_CORE_READ(dev, ifindex);
		m->mtu = BPF_CORE_READ(dev, mtu);
		bpf_probe_read_kernel_str(m->ifname, sizeof(m->ifname), dev->name);
	}
}

/* The tuple from the IP header at `ip` (kernel memory). False when there
 * is no IPv4 / IPv6 header there. */
static __always_inline bool tuple_at(unsigned char *ip, struct pwru_tuple *t)
{
	__u8 ver_ihl = 0;
	__u64 l4;
	__u8 l4_hdr[14];
	__u32 ip_payload; /* bytes after the IP header (IPv6: its payload length) */

	if (bpf_probe_read_kernel(&ver_ihl, 1, ip))
		return false;

	if ((ver_ihl >> 4) == 4) {
		struct pwru_iphdr ip4;

		if (bpf_probe_read_kernel(&ip4, sizeof(ip4), ip))
			return false;
		t->l3 = 4;
		t->l4_proto = ip4.protocol;
		t->ip_id = bpf_ntohs(ip4.id);
		__builtin_memcpy(t->saddr, ip4.saddr, 4);
		__builtin_memcpy(t->daddr, ip4.daddr, 4);
		ip_payload = bpf_ntohs(ip4.tot_len);
		ip_payload =
			ip_payload > (ver_ihl & 0xf) * 4 ? ip_payload - (ver_ihl & 0xf) * 4 : 0;
		t->payload_len = ip_payload;
		/* a non-first fragment has no L4 header */
		if (bpf_ntohs(ip4.frag_off) & 0x1fff)
			return true;
		l4 = (__u64)ip + (ver_ihl & 0xf) * 4;
	} else if ((ver_ihl >> 4) == 6) {
		struct pwru_ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), ip))
			return false;
		t->l3 = 6;
		t->l4_proto = ip6.nexthdr;
		ip_payload = bpf_ntohs(ip6.payload_len);
		t->payload_len = ip_payload;
		__builtin_memcpy(t->saddr, ip6.saddr, 16);
		__builtin_memcpy(t->daddr, ip6.daddr, 16);
		l4 = (__u64)ip + sizeof(ip6);
	} else {
		return false;
	}

	if (t->l4_proto == PWRU_IPPROTO_TCP || t->l4_proto == PWRU_IPPROTO_UDP ||
	    t->l4_proto == PWRU_IPPROTO_SCTP) {
		if (!bpf_probe_read_kernel(l4_hdr, sizeof(l4_hdr), (void *)l4)) {
			__u32 l4_len = 0;

			t->sport = ((__u16)l4_hdr[0] << 8) | l4_hdr[1];
			t->dport = ((__u16)l4_hdr[2] << 8) | l4_hdr[3];
			if (t->l4_proto == PWRU_IPPROTO_TCP) {
				t->tcp_flags = l4_hdr[13];
				t->tcp_seq = ((__u32)l4_hdr[4] << 24) | ((__u32)l4_hdr[5] << 16) |
					     ((__u32)l4_hdr[6] << 8) | l4_hdr[7];
				t->tcp_ack = ((__u32)l4_hdr[8] << 24) | ((__u32)l4_hdr[9] << 16) |
					     ((__u32)l4_hdr[10] << 8) | l4_hdr[11];
				l4_len = (l4_hdr[12] >> 4) * 4;
			} else if (t->l4_proto == PWRU_IPPROTO_UDP) {
				l4_len = 8;
			}
			/* the L4 payload: what NAT leaves alone */
			t->payload_len = ip_payload > l4_len ? ip_payload - l4_len : 0;
		}
	}
	return true;
}

/* The event's tuple from the IP header at l3 (the XDP path calls this on
 * the frame's data). */
static __always_inline void set_tuple_at(unsigned char *l3, struct pwru_event *ev)
{
	if (tuple_at(l3, &ev->tuple))
		ev->flags |= PWRU_EV_HAS_TUPLE;
}

/* The tuple from the network header (the transport header is often not set
 * yet on the output path, so L4 is found from the IP header). */
static __always_inline void set_tuple(struct sk_buff *skb, struct pwru_event *ev)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 net = BPF_CORE_READ(skb, network_header);

	if (net == PWRU_NO_HEADER)
		return;
	if (tuple_at(head + net, &ev->tuple))
		ev->flags |= PWRU_EV_HAS_TUPLE;
}

/* --output-tunnel: the inner tuple of a VXLAN / Geneve packet, found from
 * the outer network header as the tunnel filters find it. */
static __always_inline void set_tunnel_tuple(struct sk_buff *skb, struct pwru_event *ev)
{
	struct pwru_pkt_window *w;
	struct pkt_bounds b;
	long inner;
	__u64 ip;

	w = fill_window(skb, PCAP_START_L3, SKB_UNTYPED, &b);
	if (!w)
		return;
	inner = tunnel_inner_offset(w, 0);
	if (inner < 0)
		return;
	window_advance(w, (__u64)inner);
	ip = inner_network_offset(w);
	/* the inner IP header must be in the linear data (read in place) */
	if (ip >= w->linear)
		return;
	if (tuple_at((unsigned char *)w->start + ip, &ev->tunnel_tuple))
		ev->flags |= PWRU_EV_HAS_TUNNEL;
}

/* --output-skb / --output-skb-shared-info: the structs as text, written
 * straight into the ring-buffer record after the event. */
/* The object at ptr (BTF type type_id) as text in buf; the length written. */
static __always_inline __u32 btf_dump(char *buf, const __u32 size, void *ptr, __u32 type_id)
{
	struct btf_ptr p = {.ptr = ptr, .type_id = type_id};
	long n = bpf_snprintf_btf(buf, size, &p, sizeof(p), 0);

	if (n < 0)
		return 0;
	return n >= size ? size - 1 : (__u32)n; /* n counts what did not fit too */
}

static __always_inline void dump_skb(struct sk_buff *skb, struct pwru_dumps *d)
{
	d->skb_len = 0;
	d->shinfo_len = 0;
	if (CFG.output_skb)
		d->skb_len = btf_dump(d->text, CFG.skb_dump_size, skb,
				      bpf_core_type_id_kernel(struct sk_buff));
	if (CFG.output_shinfo)
		d->shinfo_len = btf_dump(d->text + CFG.skb_dump_size, CFG.shinfo_dump_size,
					 BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, end),
					 bpf_core_type_id_kernel(struct skb_shared_info));
}

/* Where the optional parts go in a record: the event, its field values, the
 * BPF map operation, the dumps, the packet (record_size()). */
static __always_inline struct pwru_bpfmap *record_bpfmap(struct pwru_event *ev)
{
	__u64 off = records_have_fields() ? sizeof(struct pwru_field_values) : 0;

	return (struct pwru_bpfmap *)((void *)(ev + 1) + off);
}

static __always_inline struct pwru_stack *record_stack(struct pwru_event *ev)
{
	__u64 off = CFG.output_bpfmap ? sizeof(struct pwru_bpfmap) : 0;

	return (struct pwru_stack *)((void *)record_bpfmap(ev) + off);
}

static __always_inline struct pwru_dumps *record_dumps(struct pwru_event *ev)
{
	__u64 off = CFG.output_stack ? sizeof(struct pwru_stack) : 0;

	return (struct pwru_dumps *)((void *)record_stack(ev) + off);
}

/* --output-stack / --output-caller: the stack into the record. */
static __always_inline void set_stack(void *ctx, struct pwru_event *ev)
{
	struct pwru_stack *st = record_stack(ev);
	long n = bpf_get_stack(ctx, st->ips, sizeof(st->ips), 0);

	ev->stack_frames = n > 0 ? (__s32)(n / sizeof(__u64)) : -1;
}

/* One ring-buffer record: the event, then the optional parts in this order.
 * A constant for the verifier (CFG is frozen). */
static __always_inline __u64 record_size(void)
{
	__u64 size = sizeof(struct pwru_event);

	if (records_have_fields())
		size += sizeof(struct pwru_field_values);
	if (CFG.output_bpfmap)
		size += sizeof(struct pwru_bpfmap);
	if (CFG.output_stack)
		size += sizeof(struct pwru_stack);
	if (CFG.output_skb || CFG.output_shinfo)
		size += sizeof(struct pwru_dumps) + CFG.skb_dump_size + CFG.shinfo_dump_size;
	if (CFG.output_pcap)
		size += sizeof(struct pwru_packet);
	return size;
}

/* --output-pcap: the packet's linear bytes, from where the filter starts. */
static __always_inline void capture_packet(struct sk_buff *skb, struct pwru_packet *p)
{
	struct pkt_bounds b;

	packet_bounds(skb, PCAP_START_AUTO, SKB_UNTYPED, &b);
	p->cap_len = (__u32)copy_packet_head(&b, p->data, PWRU_PCAP_SNAP);
	p->orig_len = b.len;
	p->l2 = b.l2;
}

/* --filter-track-skb-by-stackid: the stack map's bookkeeping. */
static __always_inline bool stack_has_skb(__u64 stack)
{
	__u64 *skb = bpf_map_lookup_elem(&stack_skb, &stack);

	return skb && *skb;
}

/* A selected skb was seen on this stack: later calls there belong to it. */
static __always_inline void remember_stack(__u64 skb, __u64 stack)
{
	__u64 *old = bpf_map_lookup_elem(&skb_stack, &skb);

	if (old && *old != stack) {
		__u64 prev = *old;
		__u64 *owner = bpf_map_lookup_elem(&stack_skb, &prev);

		if (owner && *owner == skb)
			bpf_map_delete_elem(&stack_skb, &prev);
	}
	bpf_map_update_elem(&stack_skb, &stack, &skb, BPF_ANY);
	bpf_map_update_elem(&skb_stack, &skb, &stack, BPF_ANY);
}

/* The skb is freed: its stack names it no more. */
static __always_inline void forget_stack(__u64 skb)
{
	__u64 *st = bpf_map_lookup_elem(&skb_stack, &skb);

	if (st) {
		__u64 stack = *st;
		__u64 *owner = bpf_map_lookup_elem(&stack_skb, &stack);

		if (owner && *owner == skb)
			bpf_map_delete_elem(&stack_skb, &stack);
	}
	bpf_map_delete_elem(&skb_stack, &skb);
}

enum skb_selection { SKB_NOT_SELECTED, SKB_SELECTED, SKB_SELECTED_BY_STACK };

/* The filters, or --filter-track-skb's memory of an earlier match, or
 * (--filter-track-skb-by-stackid) a selected skb earlier on this stack. */
static __always_inline enum skb_selection skb_selected(struct sk_buff *skb, __u64 stack,
						       enum skb_access access)
{
	__u64 key = (__u64)skb;
	__u8 one = 1;

	/* pwru-agent's node scope: outside this node nothing is ours, not even
	 * an skb tracked here before (another node's agent reports it there) */
	if (CFG.scope_node && !in_node_scope(skb))
		return SKB_NOT_SELECTED;
	if (CFG.track_skb && bpf_map_lookup_elem(&tracked_skbs, &key))
		return SKB_SELECTED;
	if (CFG.track_xdp) {
		/* built on the buffer of a frame that matched in XDP */
		__u64 head = (__u64)BPF_CORE_READ(skb, head);

		if (bpf_map_lookup_elem(&xdp_heads, &head)) {
			bpf_map_delete_elem(&xdp_heads, &head);
			bpf_map_update_elem(&tracked_skbs, &key, &one, BPF_ANY);
			return SKB_SELECTED;
		}
	}
	if (CFG.track_by_stackid && stack_has_skb(stack))
		return SKB_SELECTED_BY_STACK;
	if (!filter_meta(skb) || !filter_pcap(skb, PCAP_START_AUTO, access))
		return SKB_NOT_SELECTED;
	if (CFG.track_skb)
		bpf_map_update_elem(&tracked_skbs, &key, &one, BPF_ANY);
	if (CFG.track_xdp) {
		__u64 head = (__u64)BPF_CORE_READ(skb, head);

		bpf_map_update_elem(&xdp_heads, &head, &one, BPF_ANY);
	}
	return SKB_SELECTED;
}

/* A zeroed record in the ring buffer with the fields every probe sets, or
 * NULL when the buffer is full (counted: loss is never silent). */
static __always_inline struct pwru_event *reserve_event(__u64 object, __u64 func_addr)
{
	struct pwru_counters *cnt;
	struct pwru_event *ev;

	ev = bpf_ringbuf_reserve(&events, record_size(), 0);
	cnt = this_cpu_counters();
	if (!ev) {
		if (cnt)
			cnt->ringbuf_full++;
		return NULL;
	}
	if (cnt)
		cnt->events++;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = bpf_ktime_get_ns();
	ev->skb = object;
	ev->func_addr = func_addr;
	ev->pid = bpf_get_current_pid_tgid() >> 32;
	ev->cpu = bpf_get_smp_processor_id();
	return ev;
}

/* What a probe knows about one hit besides the skb: which probe (constant at
 * each call site), the function, and for drop functions the verdict. */
struct skb_hit {
	__u32 probe_kind;    /* PWRU_PROBE_* */
	__u32 probe_id;	     /* tracepoint slot or traced tc program */
	__u64 func_addr;     /* 0 for tracepoints (the slot names it) */
	__u64 arg_after_skb; /* kprobes: the next argument (a drop reason for some) */
	__u32 flags;	     /* PWRU_EV_HAS_* */
	__u32 drop_reason;
	__u64 drop_location;
	bool frees; /* the skb ends here */
	/* --output-bpfmap: a map operation's map, key and value (kernel
	 * addresses; value 0: none), op 0: not one */
	__u8 bpfmap_op;
	__u64 bpfmap;
	__u64 bpfmap_key;
	__u64 bpfmap_value;
};

/* --output-bpfmap: the map, key and value of the operation into the record. */
static __always_inline void set_bpfmap(struct pwru_bpfmap *m, const struct skb_hit *hit)
{
	struct bpf_map *map = (struct bpf_map *)hit->bpfmap;
	__u32 n;

	__builtin_memset(m, 0, sizeof(*m));
	if (!hit->bpfmap_op || !map)
		return;
	m->op = hit->bpfmap_op;
	m->id = BPF_CORE_READ(map, id);
	m->key_size = BPF_CORE_READ(map, key_size);
	m->value_size = BPF_CORE_READ(map, value_size);
	bpf_probe_read_kernel_str(m->name, sizeof(m->name), map->name);
	/* exactly the key's and value's bytes (a longer read could fault and
	 * leave zeros), at most PWRU_BPFMAP_BYTES: a branch the verifier sees */
	n = m->key_size;
	if (n > PWRU_BPFMAP_BYTES)
		n = PWRU_BPFMAP_BYTES;
	if (hit->bpfmap_key)
		bpf_probe_read_kernel(m->key, n, (void *)hit->bpfmap_key);
	n = m->value_size;
	if (n > PWRU_BPFMAP_BYTES)
		n = PWRU_BPFMAP_BYTES;
	if (hit->bpfmap_value) {
		m->has_value = 1;
		bpf_probe_read_kernel(m->value, n, (void *)hit->bpfmap_value);
	}
}

/* Filters the skb and, when it passes, emits one event. Always inlined with
 * a constant-initialised `hit`: the struct costs nothing at run time. */
static __always_inline int trace_skb(void *ctx, struct sk_buff *skb, const struct skb_hit *hit)
{
	struct pwru_counters *cnt;
	struct pwru_event *ev;
	__u64 key = (__u64)skb;

	__u64 stack = 0;
	enum skb_selection sel;

	if (!ready || !skb)
		return 0;
	if (CFG.track_by_stackid)
		stack = current_stack_base();
	/* tp_btf arguments are typed: the filter's field reads need no call */
	sel = skb_selected(skb, stack,
			   hit->probe_kind == PWRU_PROBE_TRACEPOINT ? SKB_TYPED : SKB_UNTYPED);
	if (sel == SKB_NOT_SELECTED) {
		cnt = this_cpu_counters();
		if (cnt)
			cnt->filtered_out++;
		/* node scope: a tracked skb freed on another node must be
		 * forgotten all the same, or a new skb at its address would be
		 * taken for it */
		if (CFG.scope_node && CFG.track_skb && hit->frees)
			bpf_map_delete_elem(&tracked_skbs, &key);
		return 0;
	}
	if (CFG.track_skb && hit->frees)
		bpf_map_delete_elem(&tracked_skbs, &key);
	if (CFG.track_by_stackid) {
		if (hit->frees)
			forget_stack(key);
		else if (sel == SKB_SELECTED)
			remember_stack(key, stack);
	}

	ev = reserve_event((__u64)skb, hit->func_addr);
	if (!ev)
		return 0;
	ev->arg_after_skb = hit->arg_after_skb;
	ev->drop_location = hit->drop_location;
	ev->probe_kind = hit->probe_kind;
	ev->probe_id = hit->probe_id;
	ev->drop_reason = hit->drop_reason;
	ev->flags = hit->flags;
	ev->stack_frames = -1;
	if (CFG.output_stack)
		set_stack(ctx, ev);
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	set_meta(skb, &ev->meta);
	if (CFG.output_tuple)
		set_tuple(skb, ev);
	if (CFG.output_tunnel)
		set_tunnel_tuple(skb, ev);
	if (records_have_fields())
		read_members(skb, CFG.skb_fields, CFG.n_skb_fields,
			     (struct pwru_field_values *)(ev + 1));
	if (CFG.output_bpfmap) {
		set_bpfmap(record_bpfmap(ev), hit);
		if (hit->bpfmap_op)
			ev->flags |= PWRU_EV_HAS_BPFMAP;
	}
	if (CFG.output_skb || CFG.output_shinfo)
		dump_skb(skb, record_dumps(ev));
	if (CFG.output_pcap)
		capture_packet(skb, (struct pwru_packet *)((void *)ev + record_size() -
							   sizeof(struct pwru_packet)));
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

#endif /* PWRU_SKB_EVENT_BPF_H */
