#include "kubectl-plugin/packet_correlation.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tracer/events/drop_verdict.h"
#include "tracer/events/output_format.h"

namespace pwru::plugin {
namespace {

constexpr uint8_t kTcp = 6;

TrajectoryHop hop_of(const EventRecord& e) {
    return TrajectoryHop{.node = e.node,
                         .func = e.func_display(false),
                         .drop_reason = e.drop_reason,
                         .tuple = e.has_tuple ? tuple_string(e.tuple, false) : "",
                         .wall_ns = e.wall_ns};
}

nlohmann::json hop_json(const TrajectoryHop& h) {
    nlohmann::json j{{"node", h.node}, {"func", h.func}, {"wall_ns", h.wall_ns}};
    if (!h.tuple.empty()) j["tuple"] = h.tuple;
    if (!h.drop_reason.empty()) j["drop_reason"] = h.drop_reason;
    return j;
}

std::string hop_text(const TrajectoryHop& h) {
    return h.node + " at " + h.func + (h.tuple.empty() ? "" : " " + h.tuple);
}

}  // namespace

std::optional<PacketFingerprint> packet_fingerprint(const EventRecord& e) {
    // Through an overlay the inner packet is the one that travels.
    const TupleRecord* t = e.has_tunnel_tuple ? &e.tunnel_tuple : e.has_tuple ? &e.tuple : nullptr;
    if (!t || (t->l3 != 4 && t->l3 != 6)) return std::nullopt;
    PacketFingerprint f{.l3 = t->l3, .l4_proto = t->l4_proto, .payload_len = t->payload_len};
    if (t->l4_proto == kTcp) {
        f.tcp_seq = t->tcp_seq;
        f.tcp_ack = t->tcp_ack;
        if (t->l3 == 4) f.ip_id = t->ip_id;
        return f;
    }
    // Without TCP's numbers only the IPv4 ID tells packets apart, and 0 is
    // what Linux puts in every DF datagram of an unconnected socket.
    if (t->l3 != 4 || t->ip_id == 0) return std::nullopt;
    f.ip_id = t->ip_id;
    return f;
}

size_t PacketCorrelator::FingerprintHash::operator()(const PacketFingerprint& f) const {
    uint64_t a = (uint64_t(f.l3) << 56) ^ (uint64_t(f.l4_proto) << 48) ^ (uint64_t(f.ip_id) << 32) ^ f.payload_len;
    uint64_t b = (uint64_t(f.tcp_seq) << 32) | f.tcp_ack;
    return std::hash<uint64_t>{}(a) ^ (std::hash<uint64_t>{}(b)*0x9e3779b97f4a7c15ull);
}

size_t PacketCorrelator::SkbHash::operator()(const SkbKey& k) const {
    return std::hash<std::string>{}(k.node) ^ (std::hash<uint64_t>{}(k.skb) * 0x9e3779b97f4a7c15ull);
}

std::string PacketTrajectory::text() const {
    std::string nodes_text;
    for (const auto& n : nodes) nodes_text += (nodes_text.empty() ? "" : " -> ") + n;
    std::string what;
    if (fingerprint) {
        const auto& f = *fingerprint;
        what = l4_proto_name(f.l4_proto);
        if (what.empty()) what = "proto " + std::to_string(f.l4_proto);
        if (f.l3 == 4) what += fmt::format(" id {:#06x}", f.ip_id);
        if (f.l4_proto == kTcp) what += fmt::format(" seq {} ack {}", f.tcp_seq, f.tcp_ack);
        what += fmt::format(" len {}", f.payload_len);
    } else {
        what = "not matched across nodes";
    }
    std::string end = drop ? "dropped on " + hop_text(*drop) : "last seen on " + hop_text(last);
    return fmt::format("# packet {} ({}): {}, {} events; first on {}; {}", id, what, nodes_text, events,
                       hop_text(first), end);
}

nlohmann::json PacketTrajectory::json() const {
    nlohmann::json j{
        {"trajectory", id}, {"nodes", nodes}, {"events", events}, {"first", hop_json(first)}, {"last", hop_json(last)}};
    if (drop) j["dropped"] = hop_json(*drop);
    if (fingerprint) {
        const auto& f = *fingerprint;
        nlohmann::json fp{{"l3", f.l3}, {"proto", f.l4_proto}, {"payload_len", f.payload_len}};
        if (f.l3 == 4) fp["ip_id"] = f.ip_id;
        if (f.l4_proto == kTcp) {
            fp["tcp_seq"] = f.tcp_seq;
            fp["tcp_ack"] = f.tcp_ack;
        }
        j["fingerprint"] = fp;
    }
    return j;
}

PacketCorrelator::Open& PacketCorrelator::start(const std::optional<PacketFingerprint>& fp) {
    if (open_.size() >= opts_.max_open) close(open_.begin()->first, closed_early_);
    const uint64_t id = next_id_++;
    Open& o = open_[id];
    o.t.id = id;
    o.t.fingerprint = fp;
    if (fp) by_fingerprint_[*fp] = id;
    return o;
}

uint64_t PacketCorrelator::add(const EventRecord& e) {
    const auto fp = packet_fingerprint(e);
    const SkbKey key{e.node, e.skb};
    auto fresh = [&](const Open& o) { return e.wall_ns - o.t.last.wall_ns <= opts_.window_ns; };
    Open* o = nullptr;
    if (auto it = by_skb_.find(key); it != by_skb_.end()) {
        Open& cur = open_.at(it->second);
        // The same skb address with another packet in it: it was freed and reused.
        if (fresh(cur) && (!fp || !cur.t.fingerprint || *fp == *cur.t.fingerprint))
            o = &cur;
        else
            by_skb_.erase(it);
    }
    if (!o && fp) {
        if (auto it = by_fingerprint_.find(*fp); it != by_fingerprint_.end() && fresh(open_.at(it->second)))
            o = &open_.at(it->second);
    }
    if (!o) o = &start(fp);
    PacketTrajectory& t = o->t;
    if (fp && !t.fingerprint) {
        // Its first events had no tuple (on the way in, before the headers are set).
        t.fingerprint = fp;
        if (!by_fingerprint_.contains(*fp)) by_fingerprint_[*fp] = t.id;
    }
    if (by_skb_.emplace(key, t.id).second) o->skbs.push_back(key);
    const TrajectoryHop h = hop_of(e);
    if (t.events == 0 || h.wall_ns < t.first.wall_ns) t.first = h;
    if (t.events == 0 || h.wall_ns >= t.last.wall_ns) t.last = h;
    // Its drop is its first verdict in time (events may come late); SKB_CONSUMED is none.
    if (is_drop_reason(h.drop_reason) && (!t.drop || h.wall_ns < t.drop->wall_ns)) t.drop = h;
    if (std::find(t.nodes.begin(), t.nodes.end(), e.node) == t.nodes.end()) t.nodes.push_back(e.node);
    ++t.events;
    return t.id;
}

void PacketCorrelator::close(uint64_t id, std::vector<PacketTrajectory>& out) {
    auto it = open_.find(id);
    if (it == open_.end()) return;
    Open& o = it->second;
    for (const auto& k : o.skbs)
        if (auto s = by_skb_.find(k); s != by_skb_.end() && s->second == id) by_skb_.erase(s);
    if (o.t.fingerprint)
        if (auto f = by_fingerprint_.find(*o.t.fingerprint); f != by_fingerprint_.end() && f->second == id)
            by_fingerprint_.erase(f);
    out.push_back(std::move(o.t));
    open_.erase(it);
}

std::vector<PacketTrajectory> PacketCorrelator::close_idle(int64_t horizon_ns) {
    std::vector<PacketTrajectory> out = std::move(closed_early_);
    closed_early_.clear();
    std::vector<uint64_t> idle;
    for (const auto& [id, o] : open_)
        if (o.t.last.wall_ns < horizon_ns - opts_.window_ns) idle.push_back(id);
    for (uint64_t id : idle) close(id, out);
    return out;
}

std::vector<PacketTrajectory> PacketCorrelator::close_all() {
    std::vector<PacketTrajectory> out = std::move(closed_early_);
    closed_early_.clear();
    while (!open_.empty()) close(open_.begin()->first, out);
    return out;
}

}  // namespace pwru::plugin
