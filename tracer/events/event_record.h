// One traced event with every name resolved: what the text and JSON outputs
// print, what the agent streams and the kubectl plugin merges. Plain data,
// no libbpf: the plugin shares this and the formatting, not the tracer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace pwru {

struct TupleRecord {
    uint8_t l3 = 0;  // 4, 6, or 0: no IP header
    uint8_t l4_proto = 0;
    uint8_t tcp_flags = 0;
    std::string saddr, daddr;  // printable, IPv6 without brackets
    uint16_t sport = 0, dport = 0;
    // What survives NAT and overlays (kubectl pwru --correlate); in the
    // transport JSON, not in pwru's --output-json.
    uint16_t ip_id = 0;        // IPv4 identification; 0 for IPv6
    uint16_t payload_len = 0;  // L4 payload bytes
    uint32_t tcp_seq = 0, tcp_ack = 0;
};

// --output-skb-metadata: one skb member's value, as printed.
struct FieldRecord {
    std::string expr;   // "skb->dev->ifindex" (the JSON key)
    std::string name;   // "ifindex" (the text output's NAME=VALUE)
    std::string value;  // formatted as pwru does; "?" when a pointer on the way was NULL
    bool operator==(const FieldRecord&) const = default;
};

// --output-bpfmap: a BPF map operation on the traced skb's stack.
struct BpfMapRecord {
    std::string op;  // "lookup", "update" or "delete"
    uint32_t id = 0;
    std::string name;
    uint32_t key_size = 0, value_size = 0;
    std::vector<uint8_t> key;    // at most 256 bytes of it
    bool has_value = false;      // lookup: found; update: always; delete: never
    std::vector<uint8_t> value;  // at most 256 bytes of it
    bool operator==(const BpfMapRecord&) const = default;
};

struct EventRecord {
    uint64_t skb = 0;
    uint32_t cpu = 0;
    uint32_t pid = 0;
    std::string process;      // "exe:pid", as pwru prints it (before shortening)
    uint64_t ktime_ns = 0;    // kernel CLOCK_MONOTONIC at the event
    int64_t wall_ns = 0;      // the same instant as Unix time (ns)
    std::string func;         // function or tracepoint name
    std::string drop_reason;  // "SKB_DROP_REASON_..." or ""
    std::string location;     // kfree_skb tracepoint: where, symbolized, or ""
    uint32_t netns = 0;
    uint32_t mark = 0;
    uint32_t ifindex = 0;
    std::string ifname;
    uint16_t proto = 0;  // skb->protocol, host order
    uint32_t mtu = 0;
    uint32_t len = 0;
    std::vector<uint32_t> cb;  // --output-skb-cb: 5 words
    std::string netns_name;    // --output-netns-names
    bool has_tuple = false;
    TupleRecord tuple;
    bool has_tunnel_tuple = false;        // --output-tunnel, on VXLAN / Geneve packets
    TupleRecord tunnel_tuple;             // the inner packet's tuple
    std::string caller;                   // --output-caller: the calling function
    std::vector<std::string> stack;       // --output-stack: symbolized frames, innermost first
    std::vector<FieldRecord> skb_fields;  // --output-skb-metadata, in the order asked
    std::optional<BpfMapRecord> bpfmap;   // --output-bpfmap, on a map operation's event
    std::string skb_dump;                 // --output-skb: the sk_buff as text (bpf_snprintf_btf)
    std::string shinfo_dump;              // --output-skb-shared-info
    std::string node;                     // filled by the agent / plugin
    std::string pod;
    std::string pod_namespace;  // the pod's namespace (JSON "namespace"); "" node-wide and in pwru

    // What the FUNC column shows: "kfree_skb_reason(SKB_DROP_REASON_X)",
    // then " at LOCATION" when asked and known.
    std::string func_display(bool with_location = true) const;
    // What the IFACE column shows: "eth0:2", or the ifindex alone.
    std::string iface_display() const;
};

// Bytes as lowercase hex ("0a00") and back (stopping at what is not hex).
std::string hex_bytes(const std::vector<uint8_t>& bytes);
std::vector<uint8_t> bytes_of_hex(const std::string& hex);

// The transport form: every field, lossless (see OutputFormatter for the
// user-facing, pwru-shaped --output-json).
void to_json(nlohmann::json& j, const TupleRecord& t);
void from_json(const nlohmann::json& j, TupleRecord& t);
void to_json(nlohmann::json& j, const EventRecord& e);
void from_json(const nlohmann::json& j, EventRecord& e);

}  // namespace pwru
