/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-kernel filters: netns / mark / ifindex and --filter-skb-expr from the
 * configuration, then the
 * pcap filter on the packet window (pkt_window.bpf.h), then the tunnel
 * filters (skb_tunnel.bpf.h). The pcap filter bodies are stubs that user
 * space replaces at load time (PWRU_PCAP_FILTER_STUB).
 */
#ifndef PWRU_SKB_FILTER_BPF_H
#define PWRU_SKB_FILTER_BPF_H

#include "pwru_maps.bpf.h"
#include "skb_netns.bpf.h"
#include "skb_scope.bpf.h"
#include "pkt_window.bpf.h"
#include "skb_tunnel.bpf.h"
#include "skb_member.bpf.h"
#include <bpf/bpf_core_read.h>

static __always_inline bool filter_meta(struct sk_buff *skb)
{
	if (CFG.scope_node && !in_node_scope(skb))
		return false;
	if (CFG.scope_pod && !in_pod_scope(skb))
		return false;
	if (CFG.filter_mark) {
		if ((BPF_CORE_READ(skb, mark) & CFG.mark_mask) != CFG.mark)
			return false;
	}
	if (CFG.filter_netns) {
		if (skb_netns(skb) != CFG.netns)
			return false;
	}
	if (CFG.filter_ifindex) {
		if (BPF_CORE_READ(skb, dev, ifindex) != CFG.ifindex)
			return false;
	}
	if (CFG.skb_expr.op && !member_matches(skb, &CFG.skb_expr))
		return false;
	return true;
}

PWRU_PCAP_FILTER_STUB(pcap_filter_l2)
PWRU_PCAP_FILTER_STUB(pcap_filter_l3)

/* The filter of the packet's layer on a filled window, then the tunnel
 * filters (on VXLAN / Geneve packets only). */
static __always_inline bool filter_window(struct pwru_pkt_window *w, bool l2)
{
	if (CFG.pcap_filter && !(l2 ? pcap_filter_l2(w) : pcap_filter_l3(w)))
		return false;
	if (CFG.tunnel_filter)
		return filter_tunnel(w, l2);
	return true;
}

/* Fills the per-CPU window from the skb and filters it. */
static __always_inline bool filter_pcap(struct sk_buff *skb, enum pcap_start mode,
					enum skb_access access)
{
	struct pwru_pkt_window *w;
	struct pkt_bounds b;

	if (!CFG.pcap_filter && !CFG.tunnel_filter)
		return true;
	w = fill_window(skb, mode, access, &b);
	if (!w)
		return false;
	return filter_window(w, b.l2);
}

#endif /* PWRU_SKB_FILTER_BPF_H */
