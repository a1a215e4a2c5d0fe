// SPDX-License-Identifier: Apache-2.0
/*
 * Programs for --filter-trace-tc / --filter-trace-xdp tests to trace: a tc
 * classifier and an XDP program that let every packet pass. Loaded with
 * iproute2 (`tc filter add dev D ingress bpf da obj F sec tc`,
 * `ip link set dev D xdp obj F sec xdp`); their names are what pwru must
 * print, as bpf_prog_<tag>_pwru_test_tc(tc) and ..._pwru_test_xdp(xdp).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int pwru_test_tc(struct __sk_buff *skb)
{
	return skb->len > 0 ? 0 /* TC_ACT_OK */ : 0;
}

SEC("xdp")
int pwru_test_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}
