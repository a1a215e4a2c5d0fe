#include "tracer/events/event_record.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pwru {

std::string EventRecord::func_display(bool with_location) const {
    std::string out = func;
    if (!drop_reason.empty()) out += "(" + drop_reason + ")";
    if (with_location && !location.empty()) out += " at " + location;
    return out;
}

std::string EventRecord::iface_display() const {
    return ifname.empty() ? std::to_string(ifindex) : ifname + ":" + std::to_string(ifindex);
}

std::string hex_bytes(const std::vector<uint8_t>& bytes) {
    std::string out;
    for (uint8_t b : bytes) out += fmt::format("{:02x}", b);
    return out;
}

std::vector<uint8_t> bytes_of_hex(const std::string& hex) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::vector<uint8_t> out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
        const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0) break;  // not ours: keep what came before
        out.push_back(static_cast<uint8_t>(hi << 4 | lo));
    }
    return out;
}

void to_json(nlohmann::json& j, const TupleRecord& t) {
    j = nlohmann::json{
        {"saddr", t.saddr}, {"daddr", t.daddr},    {"sport", t.sport},     {"dport", t.dport},
        {"l3", t.l3},       {"proto", t.l4_proto}, {"flags", t.tcp_flags}, {"payload_len", t.payload_len}};
    if (t.l3 == 4) j["ip_id"] = t.ip_id;
    if (t.l4_proto == 6) {
        j["tcp_seq"] = t.tcp_seq;
        j["tcp_ack"] = t.tcp_ack;
    }
}

void from_json(const nlohmann::json& j, TupleRecord& t) {
    t.saddr = j.value("saddr", "");
    t.daddr = j.value("daddr", "");
    t.sport = j.value("sport", uint16_t{0});
    t.dport = j.value("dport", uint16_t{0});
    t.l3 = j.value("l3", uint8_t{0});
    t.l4_proto = j.value("proto", uint8_t{0});
    t.tcp_flags = j.value("flags", uint8_t{0});
    t.ip_id = j.value("ip_id", uint16_t{0});
    t.payload_len = j.value("payload_len", uint16_t{0});
    t.tcp_seq = j.value("tcp_seq", uint32_t{0});
    t.tcp_ack = j.value("tcp_ack", uint32_t{0});
}

// The transport form (agent -> plugin): every field, lossless. The
// user-facing --output-json shape is OutputFormatter's (pwru's fields).
void to_json(nlohmann::json& j, const EventRecord& e) {
    j = nlohmann::json{{"skb", fmt::format("{:#x}", e.skb)},
                       {"cpu", e.cpu},
                       {"pid", e.pid},
                       {"process", e.process},
                       {"func", e.func},
                       {"ktime_ns", e.ktime_ns},
                       {"wall_ns", e.wall_ns},
                       {"netns", e.netns},
                       {"mark", e.mark},
                       {"ifindex", e.ifindex},
                       {"ifname", e.ifname},
                       {"proto", e.proto},
                       {"mtu", e.mtu},
                       {"len", e.len}};
    if (!e.cb.empty()) j["cb"] = e.cb;
    if (!e.netns_name.empty()) j["netns_name"] = e.netns_name;
    if (!e.drop_reason.empty()) j["drop_reason"] = e.drop_reason;
    if (!e.location.empty()) j["location"] = e.location;
    if (e.has_tuple) j["tuple"] = e.tuple;
    if (e.has_tunnel_tuple) j["tunnel_tuple"] = e.tunnel_tuple;
    if (!e.caller.empty()) j["caller_func"] = e.caller;
    if (!e.stack.empty()) j["stack"] = e.stack;
    if (!e.skb_fields.empty()) {
        nlohmann::json fields = nlohmann::json::array();
        for (const auto& f : e.skb_fields) fields.push_back({{"expr", f.expr}, {"name", f.name}, {"value", f.value}});
        j["skb_fields"] = std::move(fields);
    }
    if (e.bpfmap) {
        const BpfMapRecord& m = *e.bpfmap;
        j["bpfmap"] = {{"op", m.op},
                       {"id", m.id},
                       {"name", m.name},
                       {"key_size", m.key_size},
                       {"key", hex_bytes(m.key)},
                       {"value_size", m.value_size}};
        if (m.has_value) j["bpfmap"]["value"] = hex_bytes(m.value);
    }
    if (!e.skb_dump.empty()) j["skb_metadata"] = e.skb_dump;
    if (!e.shinfo_dump.empty()) j["skb_shared_info"] = e.shinfo_dump;
    if (!e.node.empty()) j["node"] = e.node;
    if (!e.pod.empty()) j["pod"] = e.pod;
    if (!e.pod_namespace.empty()) j["namespace"] = e.pod_namespace;
}

void from_json(const nlohmann::json& j, EventRecord& e) {
    e.skb = std::stoull(j.at("skb").get<std::string>(), nullptr, 16);
    j.at("cpu").get_to(e.cpu);
    e.pid = j.value("pid", 0u);
    e.process = j.value("process", "");
    j.at("func").get_to(e.func);
    e.ktime_ns = j.value("ktime_ns", uint64_t{0});
    e.wall_ns = j.value("wall_ns", int64_t{0});
    e.netns = j.value("netns", 0u);
    e.mark = j.value("mark", 0u);
    e.ifindex = j.value("ifindex", 0u);
    e.ifname = j.value("ifname", "");
    e.proto = j.value("proto", uint16_t{0});
    e.mtu = j.value("mtu", 0u);
    e.len = j.value("len", 0u);
    e.cb = j.value("cb", std::vector<uint32_t>{});
    e.netns_name = j.value("netns_name", "");
    e.drop_reason = j.value("drop_reason", "");
    e.location = j.value("location", "");
    e.has_tuple = j.contains("tuple");
    if (e.has_tuple) j.at("tuple").get_to(e.tuple);
    e.has_tunnel_tuple = j.contains("tunnel_tuple");
    if (e.has_tunnel_tuple) j.at("tunnel_tuple").get_to(e.tunnel_tuple);
    e.caller = j.value("caller_func", "");
    e.stack = j.value("stack", std::vector<std::string>{});
    if (auto it = j.find("skb_fields"); it != j.end() && it->is_array())
        for (const auto& f : *it)
            e.skb_fields.push_back({f.value("expr", ""), f.value("name", ""), f.value("value", "")});
    if (auto it = j.find("bpfmap"); it != j.end() && it->is_object()) {
        BpfMapRecord m;
        m.op = it->value("op", "");
        m.id = it->value("id", 0u);
        m.name = it->value("name", "");
        m.key_size = it->value("key_size", 0u);
        m.value_size = it->value("value_size", 0u);
        m.key = bytes_of_hex(it->value("key", ""));
        m.has_value = it->contains("value");
        m.value = bytes_of_hex(it->value("value", ""));
        e.bpfmap = std::move(m);
    }
    e.skb_dump = j.value("skb_metadata", "");
    e.shinfo_dump = j.value("skb_shared_info", "");
    e.node = j.value("node", "");
    e.pod = j.value("pod", "");
    e.pod_namespace = j.value("namespace", "");
}

}  // namespace pwru
