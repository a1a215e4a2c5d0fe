/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tunnel traffic: VXLAN (UDP 4789) and Geneve (UDP 6081) packets that carry
 * an Ethernet frame. --filter-tunnel-pcap-l2 runs on the inner frame,
 * --filter-tunnel-pcap-l3 on the inner network header, --output-tunnel
 * reports the inner tuple.
 *
 * pwru finds the inner headers through skb->inner_network_header, which the
 * kernel sets only while it encapsulates. Parsing the outer headers finds
 * them on the receive path too, and in any skb whose bytes are a tunnel
 * packet (the filter test harness builds such skbs).
 *
 * Reads the packet window (pkt_window.bpf.h) through pkt_load_slow().
 */
#ifndef PWRU_SKB_TUNNEL_BPF_H
#define PWRU_SKB_TUNNEL_BPF_H

#include "pkt_window.bpf.h"

#define PWRU_TUNNEL_UDP	      17     /* IPPROTO_UDP */
#define PWRU_TUNNEL_HLEN      16     /* UDP header + VXLAN header or Geneve's fixed part */
#define PWRU_VXLAN_FLAG_VNI   0x08   /* the I flag: a valid VNI, set in every VXLAN packet */
#define PWRU_GENEVE_PROTO_TEB 0x6558 /* Transparent Ethernet Bridging: an Ethernet frame follows */

/*
 * Offset of the inner Ethernet header of a VXLAN or Geneve packet from the
 * window's start (the outer MAC header when `l2`, else the outer IP header),
 * or -1 when the packet is not one: not IPv4/IPv6 + UDP to port 4789/6081,
 * a later IPv4 fragment, VXLAN without the I flag, Geneve of another version
 * or not carrying Ethernet, or the 16 bytes of UDP + tunnel header not all
 * there. The offset may lie past the end: the inner frame is cut short.
 * Outer IPv6 extension headers and VLAN tags are not walked (not tunnel).
 *
 * Global, not static: the verifier checks it once per program instead of at
 * every call site, as for pkt_load_slow.
 */
__noinline long tunnel_inner_offset(struct pwru_pkt_window *w, __u32 l2)
{
	/* signed, as the result: "cond ? l4 + 16 : -1" with a __u32 l4 is 0xffffffff */
	long ip = 0, l4, v, b0;

	if (!w)
		return -1;
	if (l2) {
		v = pkt_load_slow(w, 12, 2);
		if (v != 0x0800 && v != 0x86dd)
			return -1;
		ip = PWRU_ETH_HLEN;
	}
	b0 = pkt_load_slow(w, ip, 1);
	if (b0 < 0)
		return -1;
	if ((b0 >> 4) == 4) {
		if ((b0 & 0xf) < 5 || pkt_load_slow(w, ip + 9, 1) != PWRU_TUNNEL_UDP)
			return -1;
		v = pkt_load_slow(w, ip + 6, 2);
		if (v < 0 || (v & 0x1fff)) /* a later fragment has no UDP header */
			return -1;
		l4 = ip + (b0 & 0xf) * 4;
	} else if ((b0 >> 4) == 6) {
		if (pkt_load_slow(w, ip + 6, 1) != PWRU_TUNNEL_UDP)
			return -1;
		l4 = ip + 40;
	} else {
		return -1;
	}
	/* the whole UDP + tunnel header, before looking into it */
	if (pkt_load_slow(w, l4 + PWRU_TUNNEL_HLEN - 1, 1) < 0)
		return -1;
	v = pkt_load_slow(w, l4 + 2, 2);
	b0 = pkt_load_slow(w, l4 + 8, 1);
	if (v == PWRU_VXLAN_PORT)
		return (b0 & PWRU_VXLAN_FLAG_VNI) ? l4 + PWRU_TUNNEL_HLEN : -1;
	if (v == PWRU_GENEVE_PORT) {
		/* byte 0: version (2 bits, 0) and option length (6 bits, in 4-byte words) */
		if ((b0 >> 6) != 0 || pkt_load_slow(w, l4 + 10, 2) != PWRU_GENEVE_PROTO_TEB)
			return -1;
		return l4 + PWRU_TUNNEL_HLEN + (b0 & 0x3f) * 4;
	}
	return -1;
}

/* Moves the window's start `by` bytes into the packet (at most to its end)
 * and refills data[] from there. 64-bit lengths for the helper's bound. */
static __always_inline void window_advance(struct pwru_pkt_window *w, __u64 by)
{
	__u64 len = w->len, linear = w->linear, n;

	if (by > len)
		by = len;
	w->start += by;
	w->len = (__u32)(len - by);
	n = linear > by ? linear - by : 0;
	w->linear = (__u32)n;
	if (n > PWRU_PKT_WINDOW)
		n = PWRU_PKT_WINDOW;
	if (bpf_probe_read_kernel(w->data, n, (void *)w->start))
		n = 0;
	w->copied = (__u32)n;
}

/* Where the inner network header starts in the inner frame the window
 * holds: after the Ethernet header and up to two VLAN tags (802.1Q,
 * 802.1ad), where the kernel puts inner_network_header. */
static __always_inline __u64 inner_network_offset(struct pwru_pkt_window *w)
{
	__u64 off = PWRU_ETH_HLEN;
	long type = pkt_load_slow(w, 12, 2);

	if (type == 0x8100 || type == 0x88a8) {
		off += 4;
		type = pkt_load_slow(w, 16, 2);
		if (type == 0x8100 || type == 0x88a8)
			off += 4;
	}
	return off;
}

PWRU_PCAP_FILTER_STUB(pcap_tunnel_filter_l2)
PWRU_PCAP_FILTER_STUB(pcap_tunnel_filter_l3)

/*
 * pwru's semantics: the tunnel filters decide about tunnel traffic only,
 * every other packet passes them; a tunnel packet must match both (an
 * absent one is injected as "match"). The window holds the outer packet on
 * entry and is moved to the inner headers.
 */
static __always_inline bool filter_tunnel(struct pwru_pkt_window *w, bool l2)
{
	long inner = tunnel_inner_offset(w, l2);

	if (inner < 0)
		return true;
	window_advance(w, (__u64)inner);
	if (!pcap_tunnel_filter_l2(w))
		return false;
	window_advance(w, inner_network_offset(w));
	return pcap_tunnel_filter_l3(w);
}

#endif /* PWRU_SKB_TUNNEL_BPF_H */
