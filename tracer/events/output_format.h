// pwru's output shapes: the text table (header + one line per event) and
// one JSON object per line. Pure functions of EventRecord, so the kubectl
// plugin formats merged events exactly as pwru does.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "tracer/events/event_record.h"

namespace pwru {

enum class TimestampMode { None, Current, Relative, Absolute };

struct OutputOptions {
    bool meta = true;
    bool tuple = true;
    bool tcp_flags = false;
    bool json = false;
    bool caller = false;  // CALLER column
    bool skb_cb = false;  // __sk_buff->cb[] column (after LEN)
    bool tunnel = false;  // --output-tunnel: TUNNEL column (last) / "tunnel_tuple"
    bool netns_names = false;
    size_t netns_name_width = 16;
    TimestampMode timestamp = TimestampMode::None;
    // pwru: --timestamp absolute prints the kernel time too (TIME, then
    // TIMESTAMP), as cilium/pwru does; the kubectl plugin's merged timeline
    // has no use for a node's own clock.
    bool absolute_with_ktime = false;
    // --output-json-pwru: cilium/pwru's JSON byte for byte in shape: its
    // field order (Go's struct order), empty fields left out, none of ours.
    bool json_pwru_shape = false;
    bool node_columns = false;        // NODE and POD (the kubectl plugin)
    bool pod_with_namespace = false;  // POD as NAMESPACE/POD (targets in several namespaces)
};

// "~" + the last width-1 characters when s is longer than width.
std::string shorten_left(const std::string& s, size_t width);
// s centred in width (extra space on the right), as pwru's IFACE column.
std::string center(const std::string& s, size_t width);
// "SYN|ACK" in pwru's order (FIN SYN RST PSH ACK URG ECE CWR).
std::string tcp_flags_string(uint8_t flags);
// "tcp", "udp", "icmp", "icmp6", "sctp" or "".
std::string l4_proto_name(uint8_t proto);
// pwru's absolute time: "2006-01-02T15:04:05.000", local time.
std::string absolute_time(int64_t wall_ns);
// Go's encoding/hex Dump (pwru prints --output-bpfmap keys and values with it):
// "00000000  0a 00 00 00  ...  |....|\n" per 16 bytes; "" for none.
std::string go_hex_dump(const std::vector<uint8_t>& bytes);
// pwru's --output-bpfmap block: "map_id: N\nmap_name: X\nkey(K):\n<dump>value(V):\n<dump>"
// (value only when the operation has one), without the last newline.
std::string bpfmap_text(const BpfMapRecord& m);
// pwru's cb column: "[0x00000000,...]".
std::string cb_string(const std::vector<uint32_t>& cb);
// pwru's TUPLE column: "10.0.0.1:1234->10.0.0.2:80(tcp)", IPv6 in brackets.
std::string tuple_string(const EventRecord& e, bool with_tcp_flags);
// The same for any tuple (the TUNNEL column); an empty one is ":0->:0()", as pwru.
std::string tuple_string(const TupleRecord& t, bool with_tcp_flags);
// The same, appended to out (no temporary).
void append_tuple(std::string& out, const TupleRecord& t, bool with_tcp_flags);
// EventRecord::func_display(with_location) and iface_display(), appended to out.
void append_func(std::string& out, const EventRecord& e, bool with_location);
void append_iface(std::string& out, const EventRecord& e);

class JsonWriter;

class OutputFormatter {
  public:
    explicit OutputFormatter(OutputOptions opts) : opts_(opts) {}

    // The column header (text only; empty for JSON).
    std::string header() const;
    // One event, without the trailing newline (text: its stack frames, if
    // any, follow on their own indented lines).
    std::string format(const EventRecord& e);
    // The same, appended to out: a caller that reuses out across events
    // formats without allocating (the tracer's event loop).
    void format_to(std::string& out, const EventRecord& e);

  private:
    void append_text(std::string& out, const EventRecord& e);
    void append_json(std::string& out, const EventRecord& e);
    void append_json_pwru(std::string& out, const EventRecord& e);
    void append_json_tuple(JsonWriter& parent, const TupleRecord& t);
    uint64_t relative_ns(const EventRecord& e);

    OutputOptions opts_;
    // pwru pads TUPLE (and FUNC before CALLER) to the widest seen so far.
    size_t tuple_width_ = 0;
    size_t func_width_ = 0;
    std::unordered_map<uint64_t, uint64_t> last_seen_;
    std::string
        scratch_;  // one padded piece at a time (reused: no allocation per event)  // skb -> ktime of its last event
};

}  // namespace pwru
