// kubectl pwru --correlate: one packet's events on several nodes grouped by
// the header fields that survive NAT and overlays, and what is reported.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "kubectl-plugin/packet_correlation.h"

using namespace pwru;
using namespace pwru::plugin;
using Catch::Matchers::Contains;

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kT0 = 1'764'000'000'000'000'000;

TupleRecord v4(std::string s, uint16_t sport, std::string d, uint16_t dport, uint8_t proto, uint16_t ip_id,
               uint16_t payload_len, uint32_t seq = 0, uint32_t ack = 0) {
    TupleRecord t{4, proto, 0, std::move(s), std::move(d), sport, dport};
    t.ip_id = ip_id;
    t.payload_len = payload_len;
    t.tcp_seq = seq;
    t.tcp_ack = ack;
    return t;
}

EventRecord ev(std::string node, uint64_t skb, int64_t at_ms, std::string func, std::optional<TupleRecord> t,
               std::string drop = "") {
    EventRecord e;
    e.node = std::move(node);
    e.skb = skb;
    e.wall_ns = kT0 + at_ms * kMs;
    e.func = std::move(func);
    e.drop_reason = std::move(drop);
    if (t) {
        e.has_tuple = true;
        e.tuple = *t;
    }
    return e;
}

}  // namespace

TEST_CASE("correlate: a packet DNAT'd and SNAT'd on its way is one trajectory, first node first", "[correlate]") {
    PacketCorrelator c;
    // pod-a (10.0.1.5) asks a Service VIP; node-a DNATs it to pod-b and SNATs
    // it to the node's address; node-b sees only the rewritten packet.
    const auto sent = v4("10.0.1.5", 40000, "10.96.0.10", 53, 17, 0x1234, 20);
    const auto dnat = v4("10.0.1.5", 40000, "10.0.2.7", 53, 17, 0x1234, 20);
    const auto snat = v4("192.168.0.1", 61000, "10.0.2.7", 53, 17, 0x1234, 20);
    const uint64_t id = c.add(ev("node-a", 0xa1, 0, "net_dev_queue", sent));
    CHECK(c.add(ev("node-a", 0xa1, 1, "nf_hook_slow", dnat)) == id);
    CHECK(c.add(ev("node-a", 0xa1, 2, "net_dev_xmit", snat)) == id);
    CHECK(c.add(ev("node-b", 0xb7, 3, "netif_receive_skb", snat)) == id);
    CHECK(c.add(ev("node-b", 0xb7, 4, "kfree_skb", dnat, "SKB_DROP_REASON_NO_SOCKET")) == id);
    // Another datagram of the same flow (next IP ID) is another packet.
    const uint64_t next =
        c.add(ev("node-a", 0xa1, 5, "net_dev_queue", v4("10.0.1.5", 40000, "10.96.0.10", 53, 17, 0x1235, 20)));
    CHECK(next != id);

    auto done = c.close_all();
    REQUIRE(done.size() == 2);
    const PacketTrajectory& t = done[0];
    CHECK(t.id == id);
    CHECK(t.nodes == std::vector<std::string>{"node-a", "node-b"});
    CHECK(t.events == 5);
    CHECK(t.first.node == "node-a");
    CHECK(t.first.func == "net_dev_queue");
    CHECK(t.first.tuple == "10.0.1.5:40000->10.96.0.10:53(udp)");
    CHECK(t.last.node == "node-b");
    REQUIRE(t.drop);
    CHECK(t.drop->node == "node-b");
    CHECK(t.drop->drop_reason == "SKB_DROP_REASON_NO_SOCKET");
    CHECK_THAT(t.text(),
               Contains("# packet " + std::to_string(id) + " (udp id 0x1234 len 20): node-a -> node-b, 5 events") &&
                   Contains("first on node-a at net_dev_queue 10.0.1.5:40000->10.96.0.10:53(udp)") &&
                   Contains("dropped on node-b at kfree_skb(SKB_DROP_REASON_NO_SOCKET)"));
    auto j = t.json();
    CHECK(j["trajectory"] == id);
    CHECK(j["nodes"] == nlohmann::json::array({"node-a", "node-b"}));
    CHECK(j["first"]["node"] == "node-a");
    CHECK(j["dropped"]["node"] == "node-b");
    CHECK(j["dropped"]["drop_reason"] == "SKB_DROP_REASON_NO_SOCKET");
    CHECK(j["fingerprint"]["ip_id"] == 0x1234);
    CHECK(done[1].nodes == std::vector<std::string>{"node-a"});
}

TEST_CASE("correlate: a TCP retransmission (same seq, new IP ID) is a packet of its own", "[correlate]") {
    PacketCorrelator c;
    const auto orig = v4("10.0.1.5", 40000, "10.0.2.7", 80, 6, 0x0100, 100, 1000, 2000);
    auto retx = orig;
    retx.ip_id = 0x0105;
    const uint64_t a = c.add(ev("node-a", 0xa1, 0, "net_dev_queue", orig));
    const uint64_t b = c.add(ev("node-a", 0xa2, 200, "net_dev_queue", retx));
    CHECK(a != b);
    CHECK(c.add(ev("node-b", 0xb1, 201, "netif_receive_skb", retx)) == b);
    // A different ack (the same bytes with a newer ack) is another packet too.
    auto newer_ack = orig;
    newer_ack.tcp_ack = 2100;
    CHECK(c.add(ev("node-b", 0xb2, 202, "netif_receive_skb", newer_ack)) != a);
}

TEST_CASE("correlate: IPv6 TCP by seq/ack/length; IPv6 UDP and IPv4 ID 0 only within a node", "[correlate]") {
    PacketCorrelator c;
    TupleRecord tcp6{6, 6, 0x10, "fd00::1", "fd00::2", 40000, 443};
    tcp6.tcp_seq = 77;
    tcp6.tcp_ack = 88;
    tcp6.payload_len = 512;
    const uint64_t t = c.add(ev("node-a", 0xa1, 0, "net_dev_queue", tcp6));
    CHECK(c.add(ev("node-b", 0xb1, 1, "netif_receive_skb", tcp6)) == t);
    CHECK(packet_fingerprint(ev("n", 1, 0, "f", tcp6))->ip_id == 0);

    TupleRecord udp6{6, 17, 0, "fd00::1", "fd00::2", 40000, 53};
    udp6.payload_len = 30;
    CHECK_FALSE(packet_fingerprint(ev("n", 1, 0, "f", udp6)));
    const uint64_t u = c.add(ev("node-a", 0xa2, 2, "net_dev_queue", udp6));
    CHECK(c.add(ev("node-a", 0xa2, 3, "net_dev_xmit", udp6)) == u);  // the same skb on its node
    CHECK(c.add(ev("node-b", 0xb2, 3, "netif_receive_skb", udp6)) != u);

    // Linux sends unconnected UDP with DF set and IP ID 0: that names nothing.
    const auto zero = v4("10.0.1.5", 40000, "10.0.2.7", 9, 17, 0, 4);
    CHECK_FALSE(packet_fingerprint(ev("n", 1, 0, "f", zero)));
    const uint64_t z = c.add(ev("node-a", 0xa3, 4, "net_dev_queue", zero));
    CHECK(c.add(ev("node-b", 0xb3, 5, "netif_receive_skb", zero)) != z);
}

TEST_CASE("correlate: through VXLAN the inner headers are matched", "[correlate]") {
    PacketCorrelator c;
    const auto inner = v4("10.0.1.5", 40000, "10.0.2.7", 80, 6, 0x2222, 0, 5000, 6000);
    const uint64_t id = c.add(ev("node-a", 0xa1, 0, "net_dev_queue", inner));
    // On the wire: the outer UDP header to port 4789, an outer IP ID of its own.
    EventRecord outer =
        ev("node-b", 0xb1, 1, "netif_receive_skb", v4("192.168.0.1", 51234, "192.168.0.2", 4789, 17, 0x7777, 80));
    outer.has_tunnel_tuple = true;
    outer.tunnel_tuple = inner;
    CHECK(c.add(outer) == id);
}

TEST_CASE("correlate: skb continuity, reuse, the window, and bounded memory", "[correlate]") {
    PacketCorrelator c({.window_ns = 1000 * kMs, .max_open = 3});
    const auto p1 = v4("10.0.1.5", 1, "10.0.2.7", 2, 17, 0x0001, 8);
    const auto p2 = v4("10.0.1.5", 1, "10.0.2.7", 2, 17, 0x0002, 8);
    // Before its headers are set an event has no tuple: it joins its skb's packet.
    const uint64_t id = c.add(ev("node-a", 0xa1, 0, "skb_alloc", std::nullopt));
    CHECK(c.add(ev("node-a", 0xa1, 1, "net_dev_queue", p1)) == id);
    CHECK(c.add(ev("node-a", 0xa1, 2, "consume_skb", std::nullopt)) == id);
    // The slab hands the same address to the next packet.
    const uint64_t reused = c.add(ev("node-a", 0xa1, 3, "net_dev_queue", p2));
    CHECK(reused != id);
    // The same fingerprint long after: a new packet (IP IDs wrap).
    CHECK(c.add(ev("node-b", 0xb1, 5000, "netif_receive_skb", p1)) != id);

    auto idle = c.close_idle(kT0 + 5000 * kMs);
    REQUIRE(idle.size() == 2);  // the two of t=0..3 ms
    CHECK(idle[0].id == id);
    CHECK(idle[0].events == 3);
    CHECK(c.open_count() == 1);

    for (int i = 0; i < 5; ++i)
        c.add(ev("node-c", 0xc0 + i, 5000 + i, "net_dev_queue", v4("10.0.3.1", 1, "10.0.3.2", 2, 17, 100 + i, 8)));
    CHECK(c.open_count() == 3);     // the oldest were closed early, not lost
    auto rest = c.close_idle(kT0);  // nothing idle yet: only the early-closed ones
    CHECK(rest.size() == 3);
    CHECK(c.close_all().size() == 3);
}
