/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --filter-trace-xdp: filtering an xdp_buff and turning it into an event,
 * in the same format as an skb's. An XDP packet has no skb yet: the event's
 * skb field is the xdp_buff's address, the metadata comes from the receive
 * queue's device, and the filters are pwru's for XDP (netns, ifindex, the
 * pcap filter from the Ethernet header, --filter-xdp-expr; there is no mark
 * to filter on).
 */
#ifndef PWRU_XDP_EVENT_BPF_H
#define PWRU_XDP_EVENT_BPF_H

#include "skb_event.bpf.h"

#define PWRU_ETH_P_8021Q 0x8100

static __always_inline bool filter_xdp_meta(struct xdp_buff *xdp)
{
	struct net_device *dev = BPF_CORE_READ(xdp, rxq, dev);

	if (CFG.filter_netns && BPF_CORE_READ(dev, nd_net.net, ns.inum) != CFG.netns)
		return false;
	if (CFG.filter_ifindex && BPF_CORE_READ(dev, ifindex) != CFG.ifindex)
		return false;
	if (CFG.xdp_expr.op && !member_matches(xdp, &CFG.xdp_expr))
		return false;
	return true;
}

/* The pcap filter over [data, data_end): always L2, all of it linear. */
static __always_inline bool filter_xdp_pcap(struct xdp_buff *xdp)
{
	struct pwru_pkt_window *w;
	struct pkt_bounds b;
	__u32 zero = 0;

	if (!CFG.pcap_filter)
		return true;
	w = bpf_map_lookup_elem(&pkt_windows, &zero);
	if (!w)
		return false;
	b.start = BPF_CORE_READ(xdp, data);
	b.len = (__u32)((__u64)BPF_CORE_READ(xdp, data_end) - (__u64)b.start);
	b.linear = b.len;
	b.l2 = true;
	w->copied = (__u32)copy_packet_head(&b, w->data, PWRU_PKT_WINDOW);
	w->len = b.len;
	w->linear = b.linear;
	w->start = (__u64)b.start;
	w->skb = (__u64)xdp;
	return pcap_filter_l2(w);
}

static __always_inline void set_xdp_meta(struct xdp_buff *xdp, struct pwru_meta *m,
					 unsigned char **l3)
{
	struct net_device *dev = BPF_CORE_READ(xdp, rxq, dev);
	unsigned char *data = BPF_CORE_READ(xdp, data);
	__u16 proto = 0;
	__u32 l3_off = PWRU_ETH_HLEN;

	m->len = (__u32)((__u64)BPF_CORE_READ(xdp, data_end) - (__u64)data);
	if (dev) {
		m->netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
		m->ifindex = BPF_CORE_READ(dev, ifindex);
		m->mtu = BPF_CORE_READ(dev, mtu);
		bpf_probe_read_kernel_str(m->ifname, sizeof(m->ifname), dev->name);
	}
	/* The Ethernet type, past one VLAN tag, as skb->protocol would be. */
	bpf_probe_read_kernel(&proto, sizeof(proto), data + 12);
	proto = bpf_ntohs(proto);
	if (proto == PWRU_ETH_P_8021Q) {
		bpf_probe_read_kernel(&proto, sizeof(proto), data + 16);
		proto = bpf_ntohs(proto);
		l3_off += 4;
	}
	m->protocol = proto;
	*l3 = data + l3_off;
}

/* The filters, or a traced skb's buffer (--filter-track-skb). A frame that
 * passes is remembered for fexit (xdp_matched), which hands its buffer on
 * to the skb path. */
static __always_inline bool xdp_selected(struct xdp_buff *xdp)
{
	__u64 head = (__u64)BPF_CORE_READ(xdp, data_hard_start);
	__u32 zero = 0;
	bool selected = false;
	__u8 *matched;

	if (CFG.track_xdp && bpf_map_lookup_elem(&xdp_heads, &head)) {
		bpf_map_delete_elem(&xdp_heads, &head);
		selected = true;
	} else {
		selected = filter_xdp_meta(xdp) && filter_xdp_pcap(xdp);
	}
	if (CFG.track_xdp && selected) {
		matched = bpf_map_lookup_elem(&xdp_matched, &zero);
		if (matched)
			*matched = 1;
	}
	return selected;
}

/* fexit: the frame that matched at entry has run; its buffer becomes the
 * skb's head if the program passes it. */
static __always_inline int xdp_done(struct xdp_buff *xdp)
{
	__u32 zero = 0;
	__u8 one = 1;
	__u8 *matched = bpf_map_lookup_elem(&xdp_matched, &zero);

	if (matched && *matched) {
		__u64 head = (__u64)BPF_CORE_READ(xdp, data_hard_start);

		bpf_map_update_elem(&xdp_heads, &head, &one, BPF_ANY);
		*matched = 0;
	}
	return 0;
}

/* Filters the xdp_buff and, when it passes, emits one event. */
static __always_inline int trace_xdp(void *ctx, struct xdp_buff *xdp, __u32 probe_id,
				     __u64 func_addr)
{
	struct pwru_counters *cnt;
	struct pwru_event *ev;
	unsigned char *l3 = 0;

	if (!ready || !xdp)
		return 0;
	if (!xdp_selected(xdp)) {
		cnt = this_cpu_counters();
		if (cnt)
			cnt->filtered_out++;
		return 0;
	}
	ev = reserve_event((__u64)xdp, func_addr);
	if (!ev)
		return 0;
	ev->probe_kind = PWRU_PROBE_XDP;
	ev->probe_id = probe_id;
	ev->stack_frames = -1;
	if (CFG.output_stack)
		set_stack(ctx, ev);
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	set_xdp_meta(xdp, &ev->meta, &l3);
	if (CFG.output_tuple && (ev->meta.protocol == 0x0800 || ev->meta.protocol == 0x86dd))
		set_tuple_at(l3, ev);
	if (records_have_fields()) {
		struct pwru_field_values *v = (struct pwru_field_values *)(ev + 1);

		__builtin_memset(v, 0, sizeof(*v));
		read_members(xdp, CFG.xdp_fields, CFG.n_xdp_fields, v);
	}
	if (CFG.output_skb || CFG.output_shinfo) {
		/* no sk_buff to dump yet */
		struct pwru_dumps *d = record_dumps(ev);

		d->skb_len = 0;
		d->shinfo_len = 0;
	}
	if (CFG.output_pcap) {
		struct pwru_packet *p = (struct pwru_packet *)((void *)ev + record_size() -
							       sizeof(struct pwru_packet));
		struct pkt_bounds b;

		b.start = BPF_CORE_READ(xdp, data);
		b.len = ev->meta.len;
		b.linear = b.len;
		b.l2 = true;
		p->cap_len = (__u32)copy_packet_head(&b, p->data, PWRU_PCAP_SNAP);
		p->orig_len = b.len;
		p->l2 = 1;
	}
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

#endif /* PWRU_XDP_EVENT_BPF_H */
