// SPDX-License-Identifier: Apache-2.0
/*
 * Programs for --filter-trace-tc / --filter-trace-xdp tests to trace: a tc
 * classifier and an XDP program that let every packet pass (the classifier
 * counts them, for --filter-track-bpf-helpers and --output-bpfmap). Loaded with
 * iproute2 (`tc filter add dev D ingress bpf da obj F sec tc`,
 * `ip link set dev D xdp obj F sec xdp`); their names are what pwru must
 * print, as bpf_prog_<tag>_pwru_test_tc(tc) and ..._pwru_test_xdp(xdp).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Packets seen per length: calls for --filter-track-bpf-helpers to find and
 * --output-bpfmap to show (a hash map's lookup and update are map operations
 * the verifier calls directly; bpf_skb_load_bytes is a helper). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} pwru_test_lens SEC(".maps");

SEC("tc")
int pwru_test_tc(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	__u64 one = 1, *seen;
	__u8 first = 0;

	bpf_skb_load_bytes(skb, 0, &first, 1);
	seen = bpf_map_lookup_elem(&pwru_test_lens, &len);
	if (seen)
		__sync_fetch_and_add(seen, 1);
	else
		bpf_map_update_elem(&pwru_test_lens, &len, &one, BPF_ANY);
	return first == 0xff ? 0 : 0; /* TC_ACT_OK */
}

SEC("xdp")
int pwru_test_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}
