/* SPDX-License-Identifier: Apache-2.0 */
/* The network namespace an skb is in: its device's, else its socket's. */
#ifndef PWRU_SKB_NETNS_BPF_H
#define PWRU_SKB_NETNS_BPF_H

#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

static __always_inline __u32 skb_netns(struct sk_buff *skb)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);

	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	return BPF_CORE_READ(skb, sk, __sk_common.skc_net.net, ns.inum);
}

#endif /* PWRU_SKB_NETNS_BPF_H */
