// kubectl pwru --correlate: one packet across nodes.
//
// The merged timeline holds, per node, the events of each skb; the same
// packet crossing from node-a to node-b is a different skb on each node, and
// NAT (a Service's DNAT, the node's SNAT) or an overlay changes its addresses
// and ports on the way. What survives the trip is taken as its fingerprint:
//   - IPv4 TCP: IP ID, TCP sequence and acknowledgement numbers, L4 payload
//     length. A retransmission carries the same sequence but a new IP ID, so
//     it is a packet of its own.
//   - IPv4 UDP, ICMP and others: IP ID and L4 payload length; an IP ID of 0
//     (Linux sends unconnected UDP with DF set and ID 0) names nothing, so
//     such packets are not matched across nodes.
//   - IPv6 TCP: sequence, acknowledgement, payload length (IPv6 has no IP ID:
//     a retransmission inside the window joins its original's trajectory).
//   - IPv6 UDP / ICMPv6: nothing in the header survives NAT and tells two
//     packets apart; they are grouped by skb within their node only.
//   - VXLAN / Geneve (the agents run with --output-tunnel): the inner
//     packet's fields, so the overlay's outer headers do not matter.
// Within a node, events of the same skb address belong together (also those
// without a parsed tuple), until the skb shows another fingerprint.
//
// A trajectory is open while events keep coming; `window_ns` after its last
// event (in event time) it is closed and reported: which node saw it first
// and where it was last seen (or dropped, with the reason). Memory is
// bounded by `max_open`: past it the oldest are closed early.
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tracer/events/event_record.h"

namespace pwru::plugin {

// The fields of a packet that survive NAT and overlays (see above).
struct PacketFingerprint {
    uint8_t l3 = 0, l4_proto = 0;
    uint16_t ip_id = 0;
    uint32_t tcp_seq = 0, tcp_ack = 0;
    uint16_t payload_len = 0;
    bool operator==(const PacketFingerprint&) const = default;
};

// nullopt when the event's headers identify no packet across nodes.
std::optional<PacketFingerprint> packet_fingerprint(const EventRecord& e);

struct TrajectoryHop {
    std::string node;
    std::string func;  // func_display(): with the drop reason
    std::string drop_reason;
    std::string tuple;  // pwru's TUPLE text at this event
    int64_t wall_ns = 0;
};

struct PacketTrajectory {
    uint64_t id = 0;
    std::optional<PacketFingerprint> fingerprint;
    std::vector<std::string> nodes;  // in the order they first saw it
    size_t events = 0;
    TrajectoryHop first, last;
    std::optional<TrajectoryHop> drop;  // its first drop verdict (drop_verdict.h), if any

    std::string text() const;
    nlohmann::json json() const;
};

class PacketCorrelator {
  public:
    struct Options {
        int64_t window_ns = 1'000'000'000;
        size_t max_open = 1u << 16;
    };
    PacketCorrelator() : PacketCorrelator(Options{}) {}
    explicit PacketCorrelator(Options o) : opts_(o) {}

    // Adds an event (in timeline order; late ones too) and returns the id of
    // the trajectory it joined.
    uint64_t add(const EventRecord& e);
    // Trajectories with no event since before `horizon_ns - window`, closed.
    std::vector<PacketTrajectory> close_idle(int64_t horizon_ns);
    // At the end: every open trajectory, by first event.
    std::vector<PacketTrajectory> close_all();
    size_t open_count() const { return open_.size(); }

  private:
    struct FingerprintHash {
        size_t operator()(const PacketFingerprint& f) const;
    };
    struct SkbKey {
        std::string node;
        uint64_t skb;
        bool operator==(const SkbKey&) const = default;
    };
    struct SkbHash {
        size_t operator()(const SkbKey& k) const;
    };

    struct Open {
        PacketTrajectory t;
        std::vector<SkbKey> skbs;  // its entries in by_skb_
    };

    Open& start(const std::optional<PacketFingerprint>& fp);
    void close(uint64_t id, std::vector<PacketTrajectory>& out);

    Options opts_;
    uint64_t next_id_ = 1;
    std::map<uint64_t, Open> open_;               // by id: creation order
    std::vector<PacketTrajectory> closed_early_;  // over max_open, reported with the next close_idle
    std::unordered_map<PacketFingerprint, uint64_t, FingerprintHash> by_fingerprint_;
    std::unordered_map<SkbKey, uint64_t, SkbHash> by_skb_;
};

}  // namespace pwru::plugin
