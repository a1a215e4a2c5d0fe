#include "tracer/events/output_format.h"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <iterator>
#include <tuple>

#include "tracer/events/json_writer.h"

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
    std::string out;
    append_tuple(out, t, with_tcp_flags);
    return out;
}

void append_tuple(std::string& out, const TupleRecord& t, bool with_tcp_flags) {
    auto addr = [&](const std::string& a) {
        if (t.l3 == 6) {
            out += '[';
            out += a;
            out += ']';
        } else if (t.l3 == 4) {
            out += a;
        }
    };
    auto it = std::back_inserter(out);
    addr(t.saddr);
    fmt::format_to(it, FMT_COMPILE(":{}->"), t.sport);
    addr(t.daddr);
    fmt::format_to(it, FMT_COMPILE(":{}("), t.dport);
    out += l4_proto_name(t.l4_proto);
    if (with_tcp_flags && t.l4_proto == 6 && t.tcp_flags != 0) {
        out += ':';
        out += tcp_flags_string(t.tcp_flags);
    }
    out += ')';
}

void append_func(std::string& out, const EventRecord& e, bool with_location) {
    out += e.func;
    if (!e.drop_reason.empty()) {
        out += '(';
        out += e.drop_reason;
        out += ')';
    }
    if (with_location && !e.location.empty()) {
        out += " at ";
        out += e.location;
    }
}

void append_iface(std::string& out, const EventRecord& e) {
    if (!e.ifname.empty()) {
        out += e.ifname;
        out += ':';
    }
    fmt::format_to(std::back_inserter(out), FMT_COMPILE("{}"), e.ifindex);
}

namespace {

// pwru's JSON cb: the words as a number array, after w's key.
void append_json_cb(JsonWriter& w, const std::vector<uint32_t>& cb) {
    std::string& l = w.buffer();
    l += '[';
    for (size_t i = 0; i < cb.size(); ++i) {
        if (i) l += ',';
        w.number(cb[i]);
    }
    l += ']';
}

// pwru's JSON stack: one string, each frame after a newline (into buf).
const std::string& stack_text(std::string& buf, const std::vector<std::string>& stack) {
    buf.clear();
    for (const auto& f : stack) {
        buf += '\n';
        buf += f;
    }
    return buf;
}

}  // namespace

std::string go_hex_dump(const std::vector<uint8_t>& bytes) {
    std::string out;
    for (size_t line = 0; line < bytes.size(); line += 16) {
        fmt::format_to(std::back_inserter(out), FMT_COMPILE("{:08x}  "), static_cast<uint32_t>(line));
        std::string ascii;
        for (size_t i = 0; i < 16; ++i) {
            const char* gap = i == 7 ? "  " : i == 15 ? "  |" : " ";
            if (line + i < bytes.size()) {
                const uint8_t b = bytes[line + i];
                fmt::format_to(std::back_inserter(out), FMT_COMPILE("{:02x}{}"), b, gap);
                ascii += b < 32 || b > 126 ? '.' : static_cast<char>(b);
            } else {
                out += "  ";  // a missing byte's two digits, then the same gap
                out += gap;
            }
        }
        out += ascii;
        out += "|\n";
    }
    return out;
}

std::string bpfmap_text(const BpfMapRecord& m) {
    std::string out =
        fmt::format("map_id: {}\nmap_name: {}\nkey({}):\n{}", m.id, m.name, m.key_size, go_hex_dump(m.key));
    if (m.has_value) out += fmt::format("value({}):\n{}", m.value_size, go_hex_dump(m.value));
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

std::string OutputFormatter::header() const {
    if (opts_.json) return "";
    std::string h;
    if (opts_.timestamp == TimestampMode::Absolute) h += fmt::format("{:<23} ", "TIME");
    if (opts_.node_columns) h += fmt::format("{:<16} {:<24} ", "NODE", "POD");
    h += fmt::format("{:<18} {:<3} {:<16}", "SKB", "CPU", "PROCESS");
    if (opts_.timestamp == TimestampMode::Current || opts_.timestamp == TimestampMode::Relative ||
        (opts_.timestamp == TimestampMode::Absolute && opts_.absolute_with_ktime))
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

// The hot path: one call per event. Everything is appended to `l` (the
// caller's buffer, reused across events) with compile-time fmt formats;
// scratch_ holds the few pieces that are padded as a whole.
void OutputFormatter::append_text(std::string& l, const EventRecord& e) {
    auto out = std::back_inserter(l);
    if (opts_.timestamp == TimestampMode::Absolute) {
        l += absolute_time(e.wall_ns);
        l += ' ';
    }
    if (opts_.node_columns) {
        // kubectl-pwru: POD as NAMESPACE/POD when its targets span namespaces
        if (opts_.pod_with_namespace && !e.pod.empty() && !e.pod_namespace.empty()) {
            scratch_ = e.pod_namespace;
            scratch_ += '/';
            scratch_ += e.pod;
            fmt::format_to(out, FMT_COMPILE("{:<16} {:<24} "), e.node, std::string_view(scratch_));
        } else {
            fmt::format_to(out, FMT_COMPILE("{:<16} {:<24} "), e.node, e.pod);
        }
    }
    char skb[24];
    auto skb_end = fmt::format_to_n(skb, sizeof(skb), FMT_COMPILE("{:#x}"), e.skb).out;
    const std::string_view process =
        e.process.size() <= 16 ? std::string_view(e.process) : std::string_view(scratch_ = shorten_left(e.process, 16));
    fmt::format_to(out, FMT_COMPILE("{:<18} {:<3} {:<16}"), std::string_view(skb, skb_end - skb), e.cpu, process);
    if (opts_.timestamp == TimestampMode::Current ||
        (opts_.timestamp == TimestampMode::Absolute && opts_.absolute_with_ktime))
        fmt::format_to(out, FMT_COMPILE(" {:<16}"), e.ktime_ns);
    if (opts_.timestamp == TimestampMode::Relative) fmt::format_to(out, FMT_COMPILE(" {:<16}"), relative_ns(e));
    if (opts_.meta) {
        char mark[12];
        auto mark_end = fmt::format_to_n(mark, sizeof(mark), FMT_COMPILE("{:x}"), e.mark).out;
        scratch_.clear();
        append_iface(scratch_, e);
        if (scratch_.size() < 16) {  // center(): extra space on the right
            size_t left = (16 - scratch_.size()) / 2, right = 16 - scratch_.size() - left;
            scratch_.insert(0, left, ' ');
            scratch_.append(right, ' ');
        }
        fmt::format_to(out, FMT_COMPILE(" {:<10} {:<8} {:>16} 0x{:04x} {:<5} {:<5}"), e.netns,
                       std::string_view(mark, mark_end - mark), std::string_view(scratch_), e.proto, e.mtu, e.len);
        if (opts_.skb_cb) {
            l += ' ';
            l += cb_string(e.cb);
        }
    }
    if (opts_.netns_names) l += center(e.netns_name.substr(0, opts_.netns_name_width), opts_.netns_name_width);
    if (opts_.tuple) {
        scratch_.clear();
        append_tuple(scratch_, e.tuple, opts_.tcp_flags);
        tuple_width_ = std::max(tuple_width_, scratch_.size());
        fmt::format_to(out, FMT_COMPILE(" {:<{}}"), std::string_view(scratch_), tuple_width_);
    }
    if (opts_.caller) {
        scratch_.clear();
        append_func(scratch_, e, true);
        func_width_ = std::max(func_width_, scratch_.size());
        fmt::format_to(out, FMT_COMPILE(" {:<{}} {}"), std::string_view(scratch_), func_width_, e.caller);
    } else {
        l += ' ';
        append_func(l, e, true);
    }
    // --output-skb-metadata: " NAME=VALUE" after the function, as pwru prints them.
    for (const auto& f : e.skb_fields) {
        l += ' ';
        l += f.name;
        l += '=';
        l += f.value;
    }
    // pwru appends the inner tuple after everything else of the event; here it
    // ends the event's own line, under the TUNNEL header.
    if (opts_.tunnel) {
        l += ' ';
        append_tuple(l, e.tunnel_tuple, opts_.tcp_flags);
    }
    // pwru prints the stack under its event, one frame a line, then the dumps.
    for (const auto& frame : e.stack) {
        l += '\n';
        l += frame;
    }
    if (!e.skb_dump.empty()) {
        l += '\n';
        l += e.skb_dump;
    }
    if (!e.shinfo_dump.empty()) {
        l += '\n';
        l += e.shinfo_dump;
    }
    // --output-bpfmap: pwru's block, last
    if (e.bpfmap) {
        l += '\n';
        l += bpfmap_text(*e.bpfmap);
    }
}

// pwru's --output-json fields and types (iface "name:idx", tuple.flags as
// text, stack as one string, time as --timestamp says), plus ours: the
// drop reason on its own, its location, and the event's clock in ns.
//
// Written directly, not through a nlohmann::json object (a std::map per
// event was most of the cost): the bytes are what nlohmann's dump() gives,
// keys in its (sorted) order, strings escaped as it does. A new key must go
// in its sorted place; tests/unit/output_format_test.cc compares this with a
// nlohmann-built object on generated events.
void OutputFormatter::append_json(std::string& l, const EventRecord& e) {
    JsonWriter w(l);
    if (e.bpfmap) {  // --output-bpfmap (pwru's JSON has none): key and value in hex
        const BpfMapRecord& m = *e.bpfmap;
        JsonWriter mw(w.key("bpfmap").buffer());
        mw.key("id").number(m.id);
        mw.key("key").string(hex_bytes(m.key));
        mw.key("key_size").number(m.key_size);
        mw.key("name").string(m.name);
        mw.key("op").string(m.op);
        if (m.has_value) mw.key("value").string(hex_bytes(m.value));
        mw.key("value_size").number(m.value_size);
        mw.end();
    }
    if (!e.caller.empty()) w.key("caller_func").string(e.caller);
    if (opts_.meta && !e.cb.empty()) {
        append_json_cb(w.key("cb"), e.cb);
    }
    w.key("cpu").number(e.cpu);
    if (!e.drop_reason.empty()) w.key("drop_reason").string(e.drop_reason);
    scratch_.clear();
    append_func(scratch_, e, false);
    w.key("func").string(scratch_);
    if (opts_.meta) {
        scratch_.clear();
        append_iface(scratch_, e);
        w.key("iface").string(scratch_);
    }
    w.key("ktime_ns").number(e.ktime_ns);
    if (opts_.meta) w.key("len").number(e.len);
    if (!e.location.empty()) w.key("location").string(e.location);
    if (opts_.meta) {
        w.key("mark").number(e.mark);
        w.key("mtu").number(e.mtu);
    }
    if (!e.pod_namespace.empty()) w.key("namespace").string(e.pod_namespace);  // kubectl-pwru's
    if (opts_.meta) w.key("netns").number(e.netns);
    if (!e.netns_name.empty()) w.key("netns_name").string(e.netns_name);
    if (!e.node.empty()) w.key("node").string(e.node);
    if (!e.pod.empty()) w.key("pod").string(e.pod);
    w.key("process").string(e.process);
    if (opts_.meta) w.key("proto").number(e.proto);
    char skb[24];
    auto skb_end = fmt::format_to_n(skb, sizeof(skb), FMT_COMPILE("{:#x}"), e.skb).out;
    w.key("skb").string(std::string_view(skb, skb_end - skb));
    // --output-skb-metadata (pwru's JSON has no such field): {"skb->mark": "0", ...},
    // keys in nlohmann's sorted order.
    if (!e.skb_fields.empty()) {
        w.key("skb_fields");
        std::vector<const FieldRecord*> sorted;
        for (const auto& f : e.skb_fields) sorted.push_back(&f);
        std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->expr < b->expr; });
        JsonWriter fw(l);
        for (const FieldRecord* f : sorted) fw.key(f->expr).string(f->value);
        fw.end();
    }
    if (!e.skb_dump.empty()) w.key("skb_metadata").string(e.skb_dump);
    if (!e.shinfo_dump.empty()) w.key("skb_shared_info").string(e.shinfo_dump);
    if (!e.stack.empty()) w.key("stack").string(stack_text(scratch_, e.stack));
    switch (opts_.timestamp) {
        case TimestampMode::None: break;
        case TimestampMode::Current: w.key("time").number(e.ktime_ns); break;
        case TimestampMode::Relative: w.key("time").number(relative_ns(e)); break;
        case TimestampMode::Absolute: w.key("time").string(absolute_time(e.wall_ns)); break;
    }
    // "tunnel_tuple" sorts before "tuple" ('n' < 'p').
    if (opts_.tunnel) append_json_tuple(w.key("tunnel_tuple"), e.tunnel_tuple);
    if (opts_.tuple) append_json_tuple(w.key("tuple"), e.tuple);
    w.key("wall_ns").number(e.wall_ns);
    w.end();
}

void OutputFormatter::append_json_tuple(JsonWriter& parent, const TupleRecord& t) {
    JsonWriter w(parent.buffer());
    w.key("daddr").string(t.daddr);
    w.key("dport").number(t.dport);
    if (opts_.tcp_flags) w.key("flags").string(tcp_flags_string(t.tcp_flags));
    w.key("proto").number(t.l4_proto);
    w.key("saddr").string(t.saddr);
    w.key("sport").number(t.sport);
    w.end();
}

// cilium/pwru's jsonPrinter (internal/pwru/output.go): its fields in its
// order, each left out when empty (Go's omitempty: 0, "", no tuple), time
// when --timestamp asks for it; nothing of ours (drop_reason, location,
// ktime_ns, wall_ns, skb_fields): for scripts written against pwru's lines.
void OutputFormatter::append_json_pwru(std::string& l, const EventRecord& e) {
    JsonWriter w(l);
    char skb[24];
    auto skb_end = fmt::format_to_n(skb, sizeof(skb), FMT_COMPILE("{:#x}"), e.skb).out;
    w.key("skb").string(std::string_view(skb, skb_end - skb));
    if (!e.shinfo_dump.empty()) w.key("skb_shared_info").string(e.shinfo_dump);
    if (e.cpu) w.key("cpu").number(e.cpu);
    if (!e.process.empty()) w.key("process").string(e.process);
    scratch_.clear();
    append_func(scratch_, e, false);
    w.key("func").string(scratch_);
    if (!e.caller.empty()) w.key("caller_func").string(e.caller);
    switch (opts_.timestamp) {
        case TimestampMode::None: break;
        case TimestampMode::Current: w.key("time").number(e.ktime_ns); break;
        case TimestampMode::Relative: w.key("time").number(relative_ns(e)); break;
        case TimestampMode::Absolute: w.key("time").string(absolute_time(e.wall_ns)); break;
    }
    if (opts_.meta && e.netns) w.key("netns").number(e.netns);
    if (!e.netns_name.empty()) w.key("netns_name").string(e.netns_name);
    if (opts_.meta) {
        if (e.mark) w.key("mark").number(e.mark);
        scratch_.clear();
        append_iface(scratch_, e);
        w.key("iface").string(scratch_);
        if (e.proto) w.key("proto").number(e.proto);
        if (e.mtu) w.key("mtu").number(e.mtu);
        if (e.len) w.key("len").number(e.len);
        if (!e.cb.empty()) {
            append_json_cb(w.key("cb"), e.cb);
        }
    }
    for (auto [key, on, t] :
         {std::tuple{"tuple", opts_.tuple, &e.tuple}, std::tuple{"tunnel_tuple", opts_.tunnel, &e.tunnel_tuple}}) {
        if (!on) continue;
        JsonWriter tw(w.key(key).buffer());
        if (!t->saddr.empty()) tw.key("saddr").string(t->saddr);
        if (!t->daddr.empty()) tw.key("daddr").string(t->daddr);
        if (t->sport) tw.key("sport").number(t->sport);
        if (t->dport) tw.key("dport").number(t->dport);
        if (t->l4_proto) tw.key("proto").number(t->l4_proto);
        if (opts_.tcp_flags && t->tcp_flags) tw.key("flags").string(tcp_flags_string(t->tcp_flags));
        tw.end();
    }
    if (!e.stack.empty()) w.key("stack").string(stack_text(scratch_, e.stack));
    if (!e.skb_dump.empty()) w.key("skb_metadata").string(e.skb_dump);
    w.end();
}

void OutputFormatter::format_to(std::string& out, const EventRecord& e) {
    if (opts_.json && opts_.json_pwru_shape)
        append_json_pwru(out, e);
    else if (opts_.json)
        append_json(out, e);
    else
        append_text(out, e);
}

std::string OutputFormatter::format(const EventRecord& e) {
    std::string out;
    format_to(out, e);
    return out;
}

}  // namespace pwru
