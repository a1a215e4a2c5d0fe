/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The few kernel types the probes read, declared by hand with
 * preserve_access_index so that libbpf relocates every field access against
 * the running kernel's BTF (CO-RE). Only the fields we use are listed; their
 * order and offsets here do not matter, their names and types do.
 *
 * Why not a generated vmlinux.h: it ties the build to the build host's kernel
 * (a container build may have none) and is 130k lines for a dozen fields.
 */
#ifndef PWRU_VMLINUX_MIN_H
#define PWRU_VMLINUX_MIN_H
/* bpf_tracing.h picks the kernel-internal pt_regs field names with this. */
#define __VMLINUX_H__

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_STACK_TRACE = 7,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_F_FAST_STACK_CMP = (1ULL << 9),
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	char name[16];
	int ifindex;
	unsigned int mtu;
	possible_net_t nd_net;
};

struct sock_common {
	possible_net_t skc_net;
};

struct sock {
	struct sock_common __sk_common;
};

/* Only its type id is used (bpf_snprintf_btf). */
struct skb_shared_info {
	__u8 nr_frags;
};

/* What tc programs see as __sk_buff->cb[]: the data words of skb->cb. */
struct qdisc_skb_cb {
	unsigned char data[20];
};

struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
	char cb[48];
	unsigned int len;
	unsigned int data_len;
	__u16 mac_len;
	__u32 mark;
	__be16 protocol;
	__u16 transport_header;
	__u16 network_header;
	__u16 mac_header;
	unsigned int tail;
	unsigned int end;
	unsigned char *head;
	unsigned char *data;
};

/* --filter-track-skb-by-stackid: the task's kernel stack. */
struct task_struct {
	void *stack;
};

/* --filter-trace-xdp: what an XDP program's fentry sees. */
struct xdp_rxq_info {
	struct net_device *dev;
};

struct xdp_buff {
	void *data;
	void *data_end;
	void *data_hard_start;
	struct xdp_rxq_info *rxq;
};

/* --output-bpfmap: the map a map operation is called on. */
struct bpf_map {
	__u32 key_size;
	__u32 value_size;
	__u32 id;
	char name[16];
};

#pragma clang attribute pop

/* bpf_snprintf_btf() argument (UAPI). */
struct btf_ptr {
	void *ptr;
	__u32 type_id;
	__u32 flags;
};

/* sched_cls context (UAPI, not relocated): only handed to
 * bpf_cast_to_kern_ctx() by the filter test harness. */
struct __sk_buff {
	__u32 len;
};

#endif /* PWRU_VMLINUX_MIN_H */
