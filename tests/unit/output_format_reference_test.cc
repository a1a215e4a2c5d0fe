// The event formatters write their bytes directly (tracer/events/json_writer.h,
// fmt compile-time formats). This holds them to the previous, plainly
// written implementation (kept here as the reference: a nlohmann::json
// object per event, fmt::format per column) on generated events covering
// every option and awkward strings (quotes, control bytes, UTF-8, long
// names), byte for byte.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <random>

#include "tracer/events/output_format.h"

using namespace pwru;

namespace {

class ReferenceFormatter {
  public:
    explicit ReferenceFormatter(OutputOptions o) : opts_(o) {}

    std::string text_line(const EventRecord& e) {
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
        if (opts_.netns_names) l += center(e.netns_name.substr(0, opts_.netns_name_width), opts_.netns_name_width);
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
        for (const auto& f : e.skb_fields) l += " " + f.name + "=" + f.value;
        if (opts_.tunnel) l += " " + tuple_string(e.tunnel_tuple, opts_.tcp_flags);
        for (const auto& frame : e.stack) l += "\n" + frame;
        if (!e.skb_dump.empty()) l += "\n" + e.skb_dump;
        if (!e.shinfo_dump.empty()) l += "\n" + e.shinfo_dump;
        return l;
    }

    std::string json_line(const EventRecord& e) {
        nlohmann::json j{{"skb", fmt::format("{:#x}", e.skb)}, {"cpu", e.cpu},           {"process", e.process},
                         {"func", e.func_display(false)},      {"ktime_ns", e.ktime_ns}, {"wall_ns", e.wall_ns}};
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
        for (auto [key, on, t] :
             {std::tuple{"tuple", opts_.tuple, &e.tuple}, std::tuple{"tunnel_tuple", opts_.tunnel, &e.tunnel_tuple}}) {
            if (!on) continue;
            j[key] = {{"saddr", t->saddr},
                      {"daddr", t->daddr},
                      {"sport", t->sport},
                      {"dport", t->dport},
                      {"proto", t->l4_proto}};
            if (opts_.tcp_flags) j[key]["flags"] = tcp_flags_string(t->tcp_flags);
        }
        if (!e.stack.empty()) {
            std::string stack;
            for (const auto& f : e.stack) stack += "\n" + f;
            j["stack"] = stack;
        }
        if (!e.skb_dump.empty()) j["skb_metadata"] = e.skb_dump;
        if (!e.shinfo_dump.empty()) j["skb_shared_info"] = e.shinfo_dump;
        for (const auto& f : e.skb_fields) j["skb_fields"][f.expr] = f.value;
        if (!e.drop_reason.empty()) j["drop_reason"] = e.drop_reason;
        if (!e.location.empty()) j["location"] = e.location;
        if (!e.node.empty()) j["node"] = e.node;
        if (!e.pod.empty()) j["pod"] = e.pod;
        if (!e.pod_namespace.empty()) j["namespace"] = e.pod_namespace;
        return j.dump();
    }

  private:
    uint64_t relative_ns(const EventRecord& e) {
        auto [it, fresh] = last_seen_.try_emplace(e.skb, e.ktime_ns);
        uint64_t delta = fresh || e.ktime_ns < it->second ? 0 : e.ktime_ns - it->second;
        it->second = e.ktime_ns;
        return delta;
    }

    OutputOptions opts_;
    size_t tuple_width_ = 0, func_width_ = 0;
    std::unordered_map<uint64_t, uint64_t> last_seen_;
};

// Strings a name may hold: empty, plain, long, JSON-special, control bytes,
// UTF-8 (2, 3 and 4 bytes; fmt pads those by display width).
std::string pick_string(std::mt19937& rng) {
    static const std::vector<std::string> pool = {"",
                                                  "eth0",
                                                  "lo",
                                                  "kfree_skb_reason",
                                                  "/usr/bin/a-rather-long-process-name:123456",
                                                  "q\"uote",
                                                  "back\\slash",
                                                  "tab\there",
                                                  "nl\nline",
                                                  std::string("nul\0byte", 8),
                                                  "\x01\x1f\x7f",
                                                  "caf\xc3\xa9",
                                                  "\xe2\x82\xac euro",
                                                  "\xf0\x9f\x98\x80",
                                                  "SKB_DROP_REASON_NETFILTER_DROP",
                                                  "ip_rcv_core+0x1a2/0x300 [kernel]",
                                                  "10.99.0.1",
                                                  "fd00::1:2",
                                                  "a:b/c{d}[e],f"};
    return pool[rng() % pool.size()];
}

EventRecord random_event(std::mt19937& rng) {
    EventRecord e;
    auto u = [&](uint64_t m) { return rng() % m; };
    e.skb = (static_cast<uint64_t>(rng()) << 32) | rng();
    if (u(4) == 0) e.skb = u(16);
    e.cpu = static_cast<uint32_t>(u(300));
    e.pid = static_cast<uint32_t>(u(1u << 22));
    e.process = pick_string(rng);
    e.ktime_ns = (static_cast<uint64_t>(rng()) << 20) + u(1000);
    e.wall_ns = u(8) == 0 ? -static_cast<int64_t>(u(1000)) : static_cast<int64_t>(1764000000000000000ULL + u(1u << 30));
    e.func = pick_string(rng);
    if (u(3) == 0) e.drop_reason = pick_string(rng);
    if (u(3) == 0) e.location = pick_string(rng);
    e.netns = static_cast<uint32_t>(rng());
    e.mark = u(2) ? 0 : static_cast<uint32_t>(rng());
    e.ifindex = static_cast<uint32_t>(u(70000));
    e.ifname = pick_string(rng);
    e.proto = static_cast<uint16_t>(u(2) ? 0x0800 : rng());
    e.mtu = static_cast<uint32_t>(u(70000));
    e.len = static_cast<uint32_t>(rng());
    if (u(2)) e.cb = {static_cast<uint32_t>(rng()), 0, 1, 0xffffffffu, static_cast<uint32_t>(u(9))};
    if (u(3) == 0) e.netns_name = pick_string(rng);
    for (TupleRecord* t : {&e.tuple, &e.tunnel_tuple}) {
        t->l3 = static_cast<uint8_t>(std::vector<int>{0, 4, 6, 5}[u(4)]);
        t->l4_proto = static_cast<uint8_t>(std::vector<int>{6, 17, 1, 58, 132, 0, 99}[u(7)]);
        t->tcp_flags = static_cast<uint8_t>(rng());
        t->saddr = t->l3 == 6 ? "fd00::1" : u(2) ? "10.0.0.1" : pick_string(rng);
        t->daddr = t->l3 == 6 ? "fd00::abcd:2" : "192.168.100.200";
        t->sport = static_cast<uint16_t>(rng());
        t->dport = static_cast<uint16_t>(u(100));
    }
    e.has_tuple = u(4) != 0;
    e.has_tunnel_tuple = u(2);
    if (u(3) == 0) e.caller = pick_string(rng);
    for (uint64_t i = u(4); i > 0; --i) e.stack.push_back(pick_string(rng));
    // --output-skb-metadata: member expressions are [a-z_>.-] only (btf_member_access.h)
    static const char* const kMembers[] = {"skb->mark", "skb->dev->ifindex", "skb->len", "skb->users.refs.counter"};
    for (uint64_t i = u(5); i > 0; --i)
        e.skb_fields.push_back({kMembers[i - 1], "name" + std::to_string(i), pick_string(rng)});
    if (u(5) == 0) e.skb_dump = pick_string(rng);
    if (u(5) == 0) e.shinfo_dump = pick_string(rng);
    if (u(3) == 0) e.node = pick_string(rng);
    if (u(3) == 0) e.pod = pick_string(rng);
    if (u(3) == 0) e.pod_namespace = pick_string(rng);
    return e;
}

}  // namespace

TEST_CASE("text and JSON lines equal the reference formatter's, byte for byte", "[unit]") {
    std::mt19937 rng(20261125);
    for (int combo = 0; combo < 256; ++combo) {
        OutputOptions o;
        o.meta = combo & 1;
        o.tuple = combo & 2;
        o.tcp_flags = combo & 4;
        o.caller = combo & 8;
        o.skb_cb = combo & 16;
        o.tunnel = combo & 32;
        o.netns_names = combo & 64;
        o.node_columns = combo & 128;
        o.pod_with_namespace = combo % 3 == 0;
        o.netns_name_width = 8 + combo % 12;
        o.timestamp = static_cast<TimestampMode>(combo % 4);
        for (bool json : {false, true}) {
            o.json = json;
            OutputFormatter ours(o);
            ReferenceFormatter ref(o);
            std::string reused;  // format_to into one buffer, as the tracer does
            for (int i = 0; i < 40; ++i) {
                EventRecord e = random_event(rng);
                if (i % 5 == 4) e.skb = 7;  // repeated skbs: relative time
                INFO("combo " << combo << " json " << json << " event " << i);
                if (json) {
                    std::string want = ref.json_line(e);
                    reused.clear();
                    ours.format_to(reused, e);
                    CHECK(reused == want);
                } else {
                    std::string want = ref.text_line(e);
                    reused.clear();
                    ours.format_to(reused, e);
                    CHECK(reused == want);
                }
            }
        }
    }
}

TEST_CASE("JSON of a name that is not UTF-8 fails as nlohmann's dump() does", "[unit]") {
    OutputFormatter ours({.json = true});
    ReferenceFormatter ref({.json = true});
    EventRecord e;
    e.func = "f";
    e.process = "bad\xff:1";
    CHECK_THROWS_AS(ref.json_line(e), nlohmann::json::exception);
    CHECK_THROWS_AS(ours.format(e), nlohmann::json::exception);
}
