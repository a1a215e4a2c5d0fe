#include "tracer/output_format.h"

#include <fmt/format.h>

#include <ctime>
#include <nlohmann/json.hpp>

namespace pwru {

std::string shorten_left(const std::string& s, size_t width) {
    if (s.size() <= width || width == 0) return s;
    return "~" + s.substr(s.size() - (width - 1));
}

std::string center(const std::string& s, size_t width) {
    if (s.size() >= width) return s;
    size_t left = (width - s.size()) / 2;
    return std::string(left, ' ') + s + std::string(width - s.size() - left, ' ');
}

std::string tcp_flags_string(uint8_t flags) {
    static const char* names[] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"};
    std::string out;
    for (int i = 0; i < 8; ++i) {
        if (!(flags & (1u << i))) continue;
        if (!out.empty()) out += "|";
        out += names[i];
    }
    return out;
}

std::string l4_proto_name(uint8_t proto) {
    switch (proto) {
        case 1: return "icmp";
        case 6: return "tcp";
        case 17: return "udp";
        case 58: return "icmp6";
        case 132: return "sctp";
        default: return "";
    }
}

// pwru's "2006-01-02T15:04:05.000" (local time), of the event, not of the print.
std::string absolute_time(int64_t wall_ns) {
    time_t secs = static_cast<time_t>(wall_ns / 1000000000);
    tm tm{};
    localtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, (wall_ns / 1000000) % 1000);
}

std::string cb_string(const std::vector<uint32_t>& cb) {
    std::string out = "[";
    for (size_t i = 0; i < cb.size(); ++i) out += fmt::format("{}0x{:08X}", i ? "," : "", cb[i]);
    return out + "]";
}

std::string tuple_string(const EventRecord& e, bool with_tcp_flags) { return tuple_string(e.tuple, with_tcp_flags); }

std::string tuple_string(const TupleRecord& t, bool with_tcp_flags) {
    auto addr = [&](const std::string& a) { return t.l3 == 6 ? "[" + a + "]" : t.l3 == 4 ? a : std::string(); };
    std::string l4 = l4_proto_name(t.l4_proto);
    if (with_tcp_flags && t.l4_proto == 6 && t.tcp_flags != 0) l4 += ":" + tcp_flags_string(t.tcp_flags);
    return fmt::format("{}:{}->{}:{}({})", addr(t.saddr), t.sport, addr(t.daddr), t.dport, l4);
}

std::string OutputFormatter::header() const {
    if (opts_.json) return "";
    std::string h;
    if (opts_.timestamp == TimestampMode::Absolute) h += fmt::format("{:<23} ", "TIME");
    if (opts_.node_columns) h += fmt::format("{:<16} {:<24} ", "NODE", "POD");
    h += fmt::format("{:<18} {:<3} {:<16}", "SKB", "CPU", "PROCESS");
    if (opts_.timestamp == TimestampMode::Current || opts_.timestamp == TimestampMode::Relative)
        h += fmt::format(" {:<16}", "TIMESTAMP");
    if (opts_.meta) {
        h += fmt::format(" {:<10} {:<8} {:>16} {:<6} {:<5} {:<5}", "NETNS", "MARK/x", center("IFACE", 16), "PROTO",
                         "MTU", "LEN");
        if (opts_.skb_cb) h += fmt::format(" {:<56}", "__sk_buff->cb[]");
    }
    if (opts_.netns_names) h += center("NETNS NAME", opts_.netns_name_width);
    if (opts_.tuple) h += " TUPLE";
    h += " FUNC";
    if (opts_.caller) h += " CALLER";
    if (opts_.tunnel) h += " TUNNEL";
    return h;
}

uint64_t OutputFormatter::relative_ns(const EventRecord& e) {
    auto [it, fresh] = last_seen_.try_emplace(e.skb, e.ktime_ns);
    uint64_t delta = fresh || e.ktime_ns < it->second ? 0 : e.ktime_ns - it->second;
    it->second = e.ktime_ns;
    if (last_seen_.size() > (1u << 20)) last_seen_.clear();  // bound memory on long runs
    return delta;
}

std::string OutputFormatter::text_line(const EventRecord& e) {
    std::string l;
    if (opts_.timestamp == TimestampMode::Absolute) l += absolute_time(e.wall_ns) + " ";
    if (opts_.node_columns) {
        const bool qualify = opts_.pod_with_namespace && !e.pod.empty() && !e.pod_namespace.empty();
        l += fmt::format("{:<16} {:<24} ", e.node, qualify ? e.pod_namespace + "/" + e.pod : e.pod);
    }
    l += fmt::format("{:<18} {:<3} {:<16}", fmt::format("{:#x}", e.skb), e.cpu, shorten_left(e.process, 16));
    if (opts_.timestamp == TimestampMode::Current) l += fmt::format(" {:<16}", e.ktime_ns);
    if (opts_.timestamp == TimestampMode::Relative) l += fmt::format(" {:<16}", relative_ns(e));
    if (opts_.meta) {
        l += fmt::format(" {:<10} {:<8} {:>16} 0x{:04x} {:<5} {:<5}", e.netns, fmt::format("{:x}", e.mark),
                         center(e.iface_display(), 16), e.proto, e.mtu, e.len);
        if (opts_.skb_cb) l += " " + cb_string(e.cb);
    }
    if (opts_.netns_names)
        l += center(e.netns_name.substr(0, opts_.netns_name_width), opts_.netns_name_width);
    if (opts_.tuple) {
        std::string t = tuple_string(e, opts_.tcp_flags);
        tuple_width_ = std::max(tuple_width_, t.size());
        l += fmt::format(" {:<{}}", t, tuple_width_);
    }
    if (opts_.caller) {
        std::string f = e.func_display();
        func_width_ = std::max(func_width_, f.size());
        l += fmt::format(" {:<{}} {}", f, func_width_, e.caller);
    } else {
        l += " " + e.func_display();
    }
    // pwru appends the inner tuple after everything else of the event; here it
    // ends the event's own line, under the TUNNEL header.
    if (opts_.tunnel) l += " " + tuple_string(e.tunnel_tuple, opts_.tcp_flags);
    // pwru prints the stack under its event, one frame a line, then the dumps.
    for (const auto& frame : e.stack) l += "\n" + frame;
    if (!e.skb_dump.empty()) l += "\n" + e.skb_dump;
    if (!e.shinfo_dump.empty()) l += "\n" + e.shinfo_dump;
    return l;
}

// pwru's --output-json fields and types (iface "name:idx", tuple.flags as
// text, stack as one string, time as --timestamp says), plus ours: the
// drop reason on its own, its location, and the event's clock in ns.
std::string OutputFormatter::json_line(const EventRecord& e) {
    nlohmann::json j{{"skb", fmt::format("{:#x}", e.skb)},
                     {"cpu", e.cpu},
                     {"process", e.process},
                     {"func", e.func_display(false)},
                     {"ktime_ns", e.ktime_ns},
                     {"wall_ns", e.wall_ns}};
    switch (opts_.timestamp) {
        case TimestampMode::None: break;
        case TimestampMode::Current: j["time"] = e.ktime_ns; break;
        case TimestampMode::Relative: j["time"] = relative_ns(e); break;
        case TimestampMode::Absolute: j["time"] = absolute_time(e.wall_ns); break;
    }
    if (!e.caller.empty()) j["caller_func"] = e.caller;
    if (opts_.meta) {
        j["netns"] = e.netns;
        j["mark"] = e.mark;
        j["iface"] = e.iface_display();
        j["proto"] = e.proto;
        j["mtu"] = e.mtu;
        j["len"] = e.len;
        if (!e.cb.empty()) j["cb"] = e.cb;
    }
    if (!e.netns_name.empty()) j["netns_name"] = e.netns_name;
    if (opts_.tuple) {
        const TupleRecord& t = e.tuple;
        j["tuple"] = {{"saddr", t.saddr}, {"daddr", t.daddr}, {"sport", t.sport}, {"dport", t.dport}, {"proto", t.l4_proto}};
        if (opts_.tcp_flags) j["tuple"]["flags"] = tcp_flags_string(t.tcp_flags);
    }
    if (opts_.tunnel) {
        const TupleRecord& t = e.tunnel_tuple;
        j["tunnel_tuple"] = {{"saddr", t.saddr}, {"daddr", t.daddr}, {"sport", t.sport}, {"dport", t.dport},
                             {"proto", t.l4_proto}};
        if (opts_.tcp_flags) j["tunnel_tuple"]["flags"] = tcp_flags_string(t.tcp_flags);
    }
    if (!e.stack.empty()) {
        std::string stack;
        for (const auto& f : e.stack) stack += "\n" + f;
        j["stack"] = stack;
    }
    if (!e.skb_dump.empty()) j["skb_metadata"] = e.skb_dump;
    if (!e.shinfo_dump.empty()) j["skb_shared_info"] = e.shinfo_dump;
    if (!e.drop_reason.empty()) j["drop_reason"] = e.drop_reason;
    if (!e.location.empty()) j["location"] = e.location;
    if (!e.node.empty()) j["node"] = e.node;
    if (!e.pod.empty()) j["pod"] = e.pod;
    if (!e.pod_namespace.empty()) j["namespace"] = e.pod_namespace;
    return j.dump();
}

std::string OutputFormatter::format(const EventRecord& e) {
    return opts_.json ? json_line(e) : text_line(e);
}

}  // namespace pwru
