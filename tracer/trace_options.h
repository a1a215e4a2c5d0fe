// What a tracing session is asked to do, already parsed and resolved (the CLI
// and the agent both fill it; see cli_options.h for the flags).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tracer/kernel/btf_discovery.h"
#include "tracer/kernel/features.h"
#include "tracer/kernel/netns.h"  // MarkFilter

namespace pwru {

// pwru-agent's pod scope: the pod's netns OR its addresses (see
// bpf/skb_scope.bpf.h). Session forces skb tracking with it.
struct ScopePort {
    uint16_t port = 0;
    uint8_t l4 = 0;  // IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP
    bool operator==(const ScopePort&) const = default;
};

struct PodScope {
    uint32_t netns_inode = 0;        // 0: none (hostNetwork pods: the node's netns is everyone's)
    std::vector<std::string> addrs;  // printable IPv4/IPv6, at most PWRU_SCOPE_ADDRS
    // A hostNetwork pod: its ports instead of netns and addresses (at most
    // PWRU_SCOPE_PORTS); the caller also sets node_netns.
    std::vector<ScopePort> ports;
};

struct TraceOptions {
    Backend backend = Backend::Auto;
    std::set<std::string> no_features;  // --no-feature: pretend these are absent
    DiscoveryOptions discovery;

    std::string pcap_expr;  // "" = every packet
    // --filter-tunnel-pcap-l2 / -l3: on the inner headers of VXLAN / Geneve
    // packets ("" = every packet); other packets are not affected.
    std::string tunnel_pcap_l2;
    std::string tunnel_pcap_l3;
    std::optional<uint32_t> netns_inode;  // --filter-netns
    std::optional<MarkFilter> mark;       // --filter-mark
    std::optional<uint32_t> ifindex;      // --filter-ifname, resolved; implies ifindex_netns
    uint32_t ifindex_netns = 0;           // the netns the ifindex was resolved in

    // --filter-kprobe-batch: kprobes attached / detached at once on the
    // classic kprobe backend (0: kprobe_threads()'s default).
    unsigned kprobe_batch = 0;
    bool track_skb = false;                  // --filter-track-skb
    bool trace_tc = false;                   // --filter-trace-tc: fentry on every loaded tc program
    bool trace_xdp = false;                  // --filter-trace-xdp: the same for XDP programs
    bool track_skb_by_stackid = false;       // --filter-track-skb-by-stackid
    std::vector<std::string> non_skb_funcs;  // --filter-non-skb-funcs (implies the above)
    // --filter-track-bpf-helpers: also probe, as non-skb functions, the kernel
    // functions the loaded BPF programs call (implies track_skb_by_stackid).
    bool track_bpf_helpers = false;
    // --output-bpfmap: the map operations among those functions (a struct
    // bpf_map * first) become events with their map, key and value.
    bool output_bpfmap = false;
    bool output_tuple = true;
    bool output_stack = false;   // --output-stack
    bool output_caller = false;  // --output-caller (derived from the stack)
    bool output_skb_cb = false;  // --output-skb-cb
    bool output_skb = false;     // --output-skb (bpf_snprintf_btf)
    bool output_shinfo = false;  // --output-skb-shared-info
    // --set-percpu-buf: bytes for each of those texts (0: 4096 and 2048);
    // PWRU_DUMP_MIN..PWRU_DUMP_MAX.
    uint32_t dump_bytes = 0;
    bool output_pcap = false;    // --output-pcap: records carry the packet
    bool output_tunnel = false;  // --output-tunnel: the inner tuple of VXLAN / Geneve packets
    // --output-skb-metadata (up to PWRU_MAX_FIELDS, e.g. "skb->mark") and
    // --filter-skb-expr ("skb->len > 1000"): members of the skb, from BTF.
    std::vector<std::string> output_skb_metadata;
    std::string filter_skb_expr;
    // --output-xdp-metadata / --filter-xdp-expr: the same on the xdp_buff of
    // --filter-trace-xdp events ("xdp->rxq->dev->ifindex").
    std::vector<std::string> output_xdp_metadata;
    std::string filter_xdp_expr;

    bool tunnel_filter() const { return !tunnel_pcap_l2.empty() || !tunnel_pcap_l3.empty(); }
    uint32_t ringbuf_bytes = 8u << 20;  // power of two
    std::optional<PodScope> pod_scope;  // pwru-agent only
    // pwru-agent's node scope: the netns inodes of this node (its own and its
    // pods'); only skbs in one of them are selected (bpf/skb_scope.bpf.h).
    // Unset: every netns of the kernel. Session::set_node_netns updates it.
    std::optional<std::set<uint32_t>> node_netns;
    // Polled while a slow step runs (the filter's compilation): true stops it
    // (pwru's SIGINT, pwru-agent's client hanging up). Empty: never.
    std::function<bool()> cancelled;
    // Where a rejected program's whole verifier log can be read, for the
    // load error's message: pwru's flag; the agent logs it itself.
    std::string verifier_log_hint = "run with --debug for the whole verifier log";
};

}  // namespace pwru
