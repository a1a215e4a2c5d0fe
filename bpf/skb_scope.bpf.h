/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pwru-agent's pod scope: a packet belongs to a pod when it is in the pod's
 * netns, or when its IP source or destination is one of the pod's addresses.
 * The address half catches the trajectory outside the pod's netns (node NIC,
 * bridge, host side of the veth); user space also turns on skb tracking, so
 * an skb that matched once is followed wherever it goes next (NAT, encap).
 *
 * A hostNetwork pod is scoped by its ports instead (scope_has_port), within
 * the node scope.
 *
 * Node scope: several Kubernetes nodes can share one kernel (kind: every node
 * is a container), and each node's agent then sees every packet of the
 * cluster. With CFG.scope_node an skb is only this node's when its netns is in
 * the node_netns map (the agent's own netns and its pods'), whatever else
 * matches; skb_selected() applies the same to tracked skbs, so a packet
 * followed out of this node is not reported here.
 */
#ifndef PWRU_SKB_SCOPE_BPF_H
#define PWRU_SKB_SCOPE_BPF_H

#include "pwru_maps.bpf.h"
#include "skb_netns.bpf.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define PWRU_ETH_P_IP	0x0800
#define PWRU_ETH_P_IPV6 0x86DD

static __always_inline bool scope_addr_eq(const volatile struct pwru_scope_addr *a, const __u8 *ip,
					  __u8 l3)
{
	if (a->l3 != l3)
		return false;
	if (l3 == 4)
		return a->addr[0] == ip[0] && a->addr[1] == ip[1] && a->addr[2] == ip[2] &&
		       a->addr[3] == ip[3];
	for (int i = 0; i < 16; i++)
		if (a->addr[i] != ip[i])
			return false;
	return true;
}

static __always_inline bool scope_has_addr(const __u8 *ip, __u8 l3)
{
	for (int i = 0; i < PWRU_SCOPE_ADDRS; i++)
		if (scope_addr_eq(&CFG.scope_addrs[i], ip, l3))
			return true;
	return false;
}

/* Where the IP header is: the network header once set, else (early on the
 * receive path, before the stack resets it) right after the Ethernet header
 * for IPv4/IPv6 frames. NULL when neither. */
static __always_inline unsigned char *scope_ip_header(struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 net = BPF_CORE_READ(skb, network_header);
	__u16 mac = BPF_CORE_READ(skb, mac_header);
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));

	if (net != (__u16)~0U && (mac == (__u16)~0U || net > mac))
		return head + net;
	if (mac != (__u16)~0U && (proto == PWRU_ETH_P_IP || proto == PWRU_ETH_P_IPV6))
		return head + mac + 14;
	return 0;
}

/* A hostNetwork pod has no netns and no address of its own: its packets are
 * the node's to or from one of its ports. `ip` points at an IP header whose
 * first 40 bytes (or fewer, IPv4) are in `hdr`. Non-first fragments carry no
 * ports: not matched. IPv6 extension headers are not walked. */
static __always_inline bool scope_has_port(unsigned char *ip, const __u8 *hdr)
{
	unsigned char *l4;
	__u8 proto;
	__u16 ports[2];

	if ((hdr[0] >> 4) == 4) {
		if ((((__u16)hdr[6] << 8) | hdr[7]) & 0x1fff)
			return false;
		proto = hdr[9];
		l4 = ip + (hdr[0] & 0xf) * 4;
	} else {
		proto = hdr[6];
		l4 = ip + 40;
	}
	if (proto != 6 && proto != 17 && proto != 132)
		return false;
	if (bpf_probe_read_kernel(ports, sizeof(ports), l4))
		return false;
	ports[0] = bpf_ntohs(ports[0]);
	ports[1] = bpf_ntohs(ports[1]);
	for (int i = 0; i < PWRU_SCOPE_PORTS; i++) {
		const volatile struct pwru_scope_port *p = &CFG.scope_ports[i];

		if (p->l4 == proto && (p->port == ports[0] || p->port == ports[1]))
			return true;
	}
	return false;
}

static __always_inline bool in_node_scope(struct sk_buff *skb)
{
	__u32 ns = skb_netns(skb);

	/* an skb with neither device nor socket is nobody's for sure: not ours */
	return ns && bpf_map_lookup_elem(&node_netns, &ns);
}

static __always_inline bool in_pod_scope(struct sk_buff *skb)
{
	unsigned char *ip;
	__u8 hdr[40];

	if (!skb)
		return false;
	if (CFG.scope_netns && skb_netns(skb) == CFG.scope_netns)
		return true;
	ip = scope_ip_header(skb);
	if (!ip || bpf_probe_read_kernel(hdr, 1, ip))
		return false;
	if ((hdr[0] >> 4) == 4) {
		if (bpf_probe_read_kernel(hdr, 20, ip))
			return false;
		if (CFG.scope_nports)
			return scope_has_port(ip, hdr);
		return scope_has_addr(&hdr[12], 4) || scope_has_addr(&hdr[16], 4);
	}
	if ((hdr[0] >> 4) == 6) {
		if (bpf_probe_read_kernel(hdr, 40, ip))
			return false;
		if (CFG.scope_nports)
			return scope_has_port(ip, hdr);
		return scope_has_addr(&hdr[8], 6) || scope_has_addr(&hdr[24], 6);
	}
	return false;
}

#endif /* PWRU_SKB_SCOPE_BPF_H */
