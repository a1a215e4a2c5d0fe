/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one header shared by the BPF programs and user space: event layout,
 * read-only configuration, the packet window the filter reads, counters.
 *
 * Fixed-width fields only, explicit padding, pointers as __u64. Sizes are
 * asserted on both sides (see the _Static_assert / static_assert at the end),
 * so a layout change that one side misses fails the build, not the run.
 */
#ifndef PWRU_ABI_H
#define PWRU_ABI_H

#ifdef __bpf__
/* BPF side: the kernel's types, without the kernel's headers */
#include "vmlinux_min.h"
#else
#include <linux/types.h>
#endif

#define PWRU_IFNAMSIZ 16
#define PWRU_COMM_LEN 16

/* Bytes of packet copied once per hit into the window; the filter reads
 * those directly and falls back to pkt_load_slow() for anything beyond. */
#define PWRU_PKT_WINDOW 128

/* Tracepoint backend: one tp_btf program slot per skb-carrying tracepoint. */
#define PWRU_MAX_TP_SLOTS 48

/* "no such argument" marker in pwru_tp_slot. */
#define PWRU_NO_ARG 0xff

/* Entries of the --filter-track-skb map (pwru's 1024 overflows under load). */
#define PWRU_TRACKED_SKBS 65536

/* --filter-track-skb-by-stackid: a task's kernel stack size (THREAD_SIZE on
 * x86_64 without KASAN); a call context is named by the stack it runs on. */
#define PWRU_KSTACK_SIZE 16384

/* Frames of one --output-stack trace. */
#define PWRU_STACK_DEPTH 127

/* Highest argument position (1-based) a probed skb may sit in. */
#define PWRU_MAX_SKB_POS 5

/* Where the event came from. */
enum pwru_probe_kind {
	PWRU_PROBE_KPROBE = 1,	    /* kprobe or kprobe.multi: func_addr is the IP */
	PWRU_PROBE_TRACEPOINT = 2,  /* tp_btf: probe_id is the slot index */
	PWRU_PROBE_FILTERCHECK = 3, /* the test harness, never printed */
	PWRU_PROBE_TC = 4,	    /* --filter-trace-tc: fentry on a tc program; probe_id is
	                              * its index in the session's traced programs */
	PWRU_PROBE_XDP = 5,	    /* --filter-trace-xdp: the same on an XDP program; skb
	                              * is the xdp_buff's address */
};

/* pwru_event.flags */
#define PWRU_EV_HAS_REASON   (1u << 0) /* drop_reason is valid (kfree_skb tp) */
#define PWRU_EV_HAS_LOCATION (1u << 1) /* drop_location is valid */
#define PWRU_EV_HAS_TUPLE    (1u << 2) /* tuple was parsed */
#define PWRU_EV_HAS_TUNNEL   (1u << 3) /* tunnel_tuple: the inner packet's tuple */
#define PWRU_EV_HAS_BPFMAP   (1u << 4) /* --output-bpfmap: the record's pwru_bpfmap is filled */

/* UDP destination ports that make a packet tunnel traffic for
 * --filter-tunnel-pcap-l2/l3 and --output-tunnel (the IANA ports). */
#define PWRU_VXLAN_PORT	 4789
#define PWRU_GENEVE_PORT 6081

struct pwru_tuple {
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u16 sport; /* host byte order */
	__u16 dport;
	__u8 l3;	/* 4, 6, or 0 when no IP header was found */
	__u8 l4_proto;	/* IPPROTO_* */
	__u8 tcp_flags; /* byte 13 of the TCP header */
	__u8 _pad;
	/* What survives NAT and overlays, for matching one packet across nodes
	 * (kubectl pwru --correlate); all host byte order. */
	__u16 ip_id;	   /* IPv4 identification; 0 for IPv6 */
	__u16 payload_len; /* L4 payload bytes, from the IP header's length */
	__u32 tcp_seq;	   /* TCP sequence number */
	__u32 tcp_ack;	   /* TCP acknowledgement number */
};

struct pwru_meta {
	__u32 netns; /* inode of the skb's netns (dev's, else sk's) */
	__u32 mark;
	__u32 ifindex;
	__u32 len;	/* skb->len */
	__u32 mtu;	/* dev->mtu */
	__u16 protocol; /* skb->protocol, host byte order */
	__u16 _pad;
	char ifname[PWRU_IFNAMSIZ];
	__u32 cb[5]; /* --output-skb-cb: the __sk_buff->cb[] words */
	__u32 _pad2;
};

struct pwru_event {
	__u64 ts_ns;	     /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 skb;	     /* address of the sk_buff */
	__u64 func_addr;     /* kprobe: probed function's address; else 0 */
	__u64 arg_after_skb; /* kprobe: raw argument after the skb (a drop reason for
	                       * kfree_skb_reason / sk_skb_reason_drop) */
	__u64 drop_location; /* kfree_skb tracepoint: where it was freed */
	__u32 pid;	     /* tgid */
	__u32 cpu;
	__u32 probe_kind;   /* enum pwru_probe_kind */
	__u32 probe_id;	    /* tracepoint slot */
	__u32 drop_reason;  /* valid with PWRU_EV_HAS_REASON */
	__u32 flags;	    /* PWRU_EV_* */
	__s32 stack_frames; /* --output-stack: frames in the record's pwru_stack; -1: none */
	__u32 _pad;
	char comm[PWRU_COMM_LEN];
	struct pwru_meta meta;
	struct pwru_tuple tuple;
	struct pwru_tuple tunnel_tuple; /* --output-tunnel, with PWRU_EV_HAS_TUNNEL */
};

/* --output-skb / --output-skb-shared-info: bpf_snprintf_btf() text that
 * follows the event in the same ring-buffer record: this header, then
 * CFG.skb_dump_size bytes for the sk_buff, then CFG.shinfo_dump_size for its
 * skb_shared_info (pwru's --set-percpu-buf sets both). */
#define PWRU_SKB_DUMP	 4096
#define PWRU_SHINFO_DUMP 2048
#define PWRU_DUMP_MIN	 256
#define PWRU_DUMP_MAX	 (1u << 20)

struct pwru_dumps {
	__u32 skb_len; /* bytes written to the sk_buff's text (0: not asked) */
	__u32 shinfo_len;
	char text[];
};

/* --output-bpfmap (pwru v1.0.11): a BPF map operation called on the stack of
 * a traced skb, its map, key and value (pwru's 256 bytes of each); after the
 * event and its field values in the record, before the dumps. */
#define PWRU_BPFMAP_BYTES 256

enum pwru_bpfmap_op {
	PWRU_BPFMAP_LOOKUP = 1,
	PWRU_BPFMAP_UPDATE,
	PWRU_BPFMAP_DELETE,
};

struct pwru_bpfmap {
	__u32 id;
	__u32 key_size;
	__u32 value_size;
	__u8 op;	/* enum pwru_bpfmap_op */
	__u8 has_value; /* lookup: 0 when nothing was found; delete: 0 */
	__u8 _pad[2];
	char name[16];
	__u8 key[PWRU_BPFMAP_BYTES];
	__u8 value[PWRU_BPFMAP_BYTES];
};

/* --output-stack / --output-caller: the kernel stack of the event, in its
 * own record (a stack map shares buckets between stacks: a collision lost
 * the stack, or with BPF_F_REUSE_STACKID gave an earlier event a later
 * event's). After the map operation, before the dumps. */
struct pwru_stack {
	__u64 ips[PWRU_STACK_DEPTH]; /* return addresses, innermost first */
};

/* --output-pcap: the packet's bytes (linear part, up to the snap length)
 * after the event (and its dumps, if any) in the same record. */
#define PWRU_PCAP_SNAP 1536

struct pwru_packet {
	__u32 cap_len;	/* bytes in data[] */
	__u32 orig_len; /* the packet's length from its start */
	__u8 l2;	/* 1: starts at an Ethernet header; 0: at the IP header */
	__u8 _pad[7];
	__u8 data[PWRU_PCAP_SNAP];
};

/* pwru-agent's pod scope: up to this many pod addresses. */
#define PWRU_SCOPE_ADDRS    4
/* pwru-agent's node scope: up to this many netns in the node's set (the
 * agent's own and one per pod sandbox; kubelet's default is 110 pods). */
#define PWRU_NODE_NETNS_MAX 4096

struct pwru_scope_addr {
	__u8 addr[16]; /* IPv4 in the first 4 bytes */
	__u8 l3;       /* 4 or 6; 0 = unused slot */
	__u8 _pad[3];
};

/* pwru-agent's scope of a hostNetwork pod: its ports, up to this many. */
#define PWRU_SCOPE_PORTS 8

struct pwru_scope_port {
	__u16 port; /* host byte order */
	__u8 l4;    /* IPPROTO_TCP, _UDP or _SCTP; 0 = unused slot */
	__u8 _pad;
};

/* --output-skb-metadata / --filter-skb-expr: a member of the skb reached
 * through pointers, e.g. skb->dev->ifindex, resolved from BTF by user space
 * (tracer/kernel/btf_member_access.h). levels reads: the first levels - 1 load
 * a pointer at (the previous pointer, the skb first) + off[i], and stop at
 * NULL; the last loads `size` bytes at + off[levels - 1]. The value is then
 * made a number: bitfield bits extracted, big-endian (__be16 ...) types put in
 * host order, signed types sign-extended. */
#define PWRU_FIELD_LEVELS 8
#define PWRU_MAX_FIELDS	  4 /* pwru's maximum of --output-skb-metadata */

struct pwru_field {
	__u16 off[PWRU_FIELD_LEVELS];
	__u8 levels; /* 1..PWRU_FIELD_LEVELS; 0: unused */
	__u8 size;   /* 1, 2, 4 or 8 bytes read at the last level */
	__u8 bit_shift;
	__u8 bit_size; /* 0: not a bitfield */
	__u8 is_signed;
	__u8 big_endian;
	__u8 _pad[2];
};

/* --filter-skb-expr: field OP value, compared as numbers (signed when the
 * field's type is). An unreadable field (a NULL on the way) does not match. */
enum pwru_cmp_op {
	PWRU_CMP_EQ = 1,
	PWRU_CMP_NE,
	PWRU_CMP_LT,
	PWRU_CMP_LE,
	PWRU_CMP_GT,
	PWRU_CMP_GE,
};

struct pwru_field_cmp {
	struct pwru_field field;
	__u8 op; /* enum pwru_cmp_op; 0: no expression */
	__u8 _pad[7];
	__u64 value;
};

/* --output-skb-metadata (or, on an XDP event, --output-xdp-metadata): the
 * fields' values, after the event in the same ring-buffer record (before the
 * dumps and the packet). */
struct pwru_field_values {
	__u64 value[PWRU_MAX_FIELDS];
	__u8 readable[PWRU_MAX_FIELDS]; /* 0: a NULL pointer on the way */
	__u8 _pad[4];
};

/* Per tracepoint slot: where the arguments of interest are (0-based index
 * into the tracepoint's TP_PROTO arguments) or PWRU_NO_ARG. */
struct pwru_tp_slot {
	__u8 skb_arg;
	__u8 reason_arg;
	__u8 location_arg;
	__u8 frees_skb; /* the skb is freed here: --filter-track-skb forgets it */
};

/* Read-only configuration, set before load (the verifier sees constants,
 * so disabled features cost nothing at run time). */
struct pwru_config {
	__u32 netns; /* with filter_netns */
	__u32 mark;  /* with filter_mark */
	__u32 mark_mask;
	__u32 ifindex; /* with filter_ifindex; netns then also applies */
	__u8 filter_netns;
	__u8 filter_mark;
	__u8 filter_ifindex;
	__u8 pcap_filter; /* 1: call the (injected) pcap filters */
	__u8 output_tuple;
	__u8 output_stack;
	__u8 track_skb;
	__u8 output_skb_cb;
	__u8 output_skb; /* records carry struct pwru_dumps after the event */
	__u8 output_shinfo;
	__u8 output_pcap;      /* records carry struct pwru_packet last */
	__u8 tunnel_filter;    /* 1: call the (injected) tunnel pcap filters */
	__u8 output_tunnel;    /* fill tunnel_tuple */
	__u8 track_by_stackid; /* --filter-track-skb-by-stackid (see pwru_maps.bpf.h) */
	__u8 track_xdp;	       /* --filter-track-skb with --filter-trace-xdp: a frame that
	                         * matched in XDP selects the skb built on its buffer */
	__u8 _pad3[1];
	__u64 kfree_skbmem_addr; /* kprobe backends: where an skb's memory is freed */
	struct pwru_tp_slot tp[PWRU_MAX_TP_SLOTS];
	/* pwru-agent's pod scope (bpf/skb_scope.bpf.h): an skb is in scope when
	 * its netns is scope_netns (0: none, e.g. hostNetwork pods) or its IP
	 * source or destination is one of scope_addrs. */
	__u8 scope_pod;
	/* pwru-agent's node scope: only skbs whose netns is in the node_netns
	 * map (updated at run time) are selected, tracked skbs included. */
	__u8 scope_node;
	__u8 _pad4[2];
	__u32 scope_netns;
	struct pwru_scope_addr scope_addrs[PWRU_SCOPE_ADDRS];
	/* a hostNetwork pod (scope_nports > 0): instead of netns/addresses, a
	 * TCP/UDP/SCTP source or destination port in scope_ports (within the
	 * node scope, which the agent always sets for such pods) */
	__u8 scope_nports;
	__u8 _pad5[3];
	struct pwru_scope_port scope_ports[PWRU_SCOPE_PORTS];
	/* --output-skb-metadata: skb_fields[0, n_skb_fields) go in each record */
	__u8 n_skb_fields;
	__u8 _pad6[7];
	struct pwru_field skb_fields[PWRU_MAX_FIELDS];
	struct pwru_field_cmp skb_expr; /* --filter-skb-expr (op != 0) */
	/* --output-xdp-metadata / --filter-xdp-expr: the same on the xdp_buff
	 * of --filter-trace-xdp events */
	__u8 n_xdp_fields;
	__u8 _pad7[7];
	struct pwru_field xdp_fields[PWRU_MAX_FIELDS];
	struct pwru_field_cmp xdp_expr;
	__u8 output_bpfmap; /* records carry struct pwru_bpfmap */
	__u8 _pad8[3];
	__u32 skb_dump_size; /* with output_skb / output_shinfo: struct pwru_dumps */
	__u32 shinfo_dump_size;
};

/*
 * The packet window handed to the pcap filter (a per-CPU map value).
 *
 * The injected filter is a BPF subprogram `int f(struct pwru_pkt_window *w)`:
 * R1 points here, R0 = 1 (match) or 0. Offsets are packet offsets from `start`
 * (the MAC header for L2, the network header for L3).
 * - bytes [0, copied) are in data[] (copied <= PWRU_PKT_WINDOW);
 * - bytes [copied, linear) are in kernel memory at start + off;
 * - bytes [linear, len) are in the skb's paged fragments.
 * pkt_load_slow(w, off, size) reads any of them (see pwru.bpf.c).
 */
struct pwru_pkt_window {
	__u8 data[PWRU_PKT_WINDOW];
	__u32 copied;
	__u32 len;
	__u32 linear;
	__u32 _pad;
	__u64 start;
	__u64 skb;
};

/* pwru-filtercheck's packets that BPF_PROG_TEST_RUN cannot make an skb of
 * (bpf/pwru.bpf.c, filtercheck_buffer): up to this many chunks of bytes, the
 * largest capture libpcap writes (a snap length of 262144). */
#define PWRU_FILTERCHECK_CHUNK	4096
#define PWRU_FILTERCHECK_CHUNKS 64

struct pwru_filtercheck_chunk {
	__u8 bytes[PWRU_FILTERCHECK_CHUNK];
};

/* Per-CPU counters (array of one element). */
struct pwru_counters {
	__u64 events;		/* events submitted */
	__u64 ringbuf_full;	/* events lost: ring buffer reservation failed */
	__u64 filtered_out;	/* hits rejected by a filter */
	__u64 filter_nonlinear; /* pcap filter loads from paged fragments: not
	                         * read (yet), the packet did not match */
};

#define PWRU_PKT_WINDOW_OFF_COPIED PWRU_PKT_WINDOW
#define PWRU_PKT_WINDOW_OFF_LEN	   (PWRU_PKT_WINDOW + 4)
#define PWRU_PKT_WINDOW_OFF_LINEAR (PWRU_PKT_WINDOW + 8)
#define PWRU_PKT_WINDOW_OFF_START  (PWRU_PKT_WINDOW + 16)
#define PWRU_PKT_WINDOW_OFF_SKB	   (PWRU_PKT_WINDOW + 24)

#ifdef __cplusplus
#define PWRU_STATIC_ASSERT static_assert
#else
#define PWRU_STATIC_ASSERT _Static_assert
#endif
PWRU_STATIC_ASSERT(sizeof(struct pwru_tuple) == 52, "pwru_tuple layout");
PWRU_STATIC_ASSERT(sizeof(struct pwru_meta) == 64, "pwru_meta layout");
PWRU_STATIC_ASSERT(sizeof(struct pwru_event) == 72 + 16 + 64 + 52 + 52, "pwru_event layout");
PWRU_STATIC_ASSERT(sizeof(struct pwru_field) == 2 * PWRU_FIELD_LEVELS + 8, "pwru_field layout");
PWRU_STATIC_ASSERT(sizeof(struct pwru_field_cmp) == sizeof(struct pwru_field) + 16,
		   "pwru_field_cmp");
PWRU_STATIC_ASSERT(sizeof(struct pwru_field_values) == 8 * PWRU_MAX_FIELDS + 8,
		   "pwru_field_values");
PWRU_STATIC_ASSERT(sizeof(struct pwru_pkt_window) == PWRU_PKT_WINDOW + 32,
		   "pwru_pkt_window layout");
PWRU_STATIC_ASSERT(__builtin_offsetof(struct pwru_pkt_window, copied) == PWRU_PKT_WINDOW_OFF_COPIED,
		   "copied");
PWRU_STATIC_ASSERT(__builtin_offsetof(struct pwru_pkt_window, len) == PWRU_PKT_WINDOW_OFF_LEN,
		   "len");
PWRU_STATIC_ASSERT(__builtin_offsetof(struct pwru_pkt_window, linear) == PWRU_PKT_WINDOW_OFF_LINEAR,
		   "linear");
PWRU_STATIC_ASSERT(__builtin_offsetof(struct pwru_pkt_window, start) == PWRU_PKT_WINDOW_OFF_START,
		   "start");
PWRU_STATIC_ASSERT(__builtin_offsetof(struct pwru_pkt_window, skb) == PWRU_PKT_WINDOW_OFF_SKB,
		   "skb");

#endif /* PWRU_ABI_H */
