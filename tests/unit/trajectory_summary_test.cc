// The exit summary: paths per packet, drop lines, trajectories ended where
// the skb is freed (addresses are reused).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tracer/events/trajectory_summary.h"

using namespace pwru;

namespace {

EventRecord ev(uint64_t skb, const std::string& func, const std::string& reason = "") {
    EventRecord e;
    e.skb = skb;
    e.func = func;
    e.drop_reason = reason;
    e.netns = 4026532178u;
    e.ifname = "veth-b";
    e.ifindex = 2;
    e.has_tuple = true;
    e.tuple = {4, 6, 2, "10.0.0.1", "10.0.0.2", 1234, 80};
    return e;
}

}  // namespace

TEST_CASE("paths fold repeats and end where the skb is freed", "[unit]") {
    TrajectorySummary s({"kfree_skb", "consume_skb"});
    s.add(ev(0x10, "net_dev_queue"));
    s.add(ev(0x10, "netif_rx"));
    s.add(ev(0x10, "netif_rx"));
    EventRecord drop = ev(0x10, "kfree_skb", "SKB_DROP_REASON_NETFILTER_DROP");
    drop.location = "nft_do_chain+0x46f";
    s.add(drop);
    s.add(ev(0x10, "net_dev_queue"));  // the address reused: a new packet
    auto t = s.trajectories();
    REQUIRE(t.size() == 2);
    CHECK(t[0].path == std::vector<std::string>{"net_dev_queue", "netif_rx", "kfree_skb"});
    CHECK(t[0].dropped);
    CHECK(t[0].drop_line == "dropped in nft_do_chain at veth-b:2 in netns 4026532178: SKB_DROP_REASON_NETFILTER_DROP");
    CHECK_FALSE(t[1].dropped);
    CHECK(s.dropped_count() == 1);
    std::string text = s.text();
    CHECK(text.find("Trajectories: 2 packets, 1 dropped") == 0);
    CHECK(text.find("0x10 10.0.0.1:1234->10.0.0.2:80(tcp): net_dev_queue > netif_rx > kfree_skb") != std::string::npos);
}

TEST_CASE("kprobe drops: the drop function is the place, kfree_skbmem the end", "[unit]") {
    TrajectorySummary s;  // kprobe backends
    s.add(ev(0x20, "nf_hook_slow"));
    s.add(ev(0x20, "sk_skb_reason_drop", "SKB_DROP_REASON_NETFILTER_DROP"));
    s.add(ev(0x20, "skb_release_data"));
    s.add(ev(0x20, "kfree_skbmem"));
    auto t = s.trajectories();
    REQUIRE(t.size() == 1);
    CHECK(t[0].path.size() == 4);
    CHECK(t[0].drop_line.rfind("dropped in sk_skb_reason_drop at veth-b:2", 0) == 0);
}

TEST_CASE("consumed skbs are not drops; memory stays bounded", "[unit]") {
    TrajectorySummary s({"consume_skb"}, 3);
    s.add(ev(0x30, "consume_skb", "SKB_CONSUMED"));
    CHECK(s.dropped_count() == 0);
    for (uint64_t skb = 0x100; skb < 0x110; ++skb) s.add(ev(skb, "netif_rx"));
    CHECK(s.trajectories().size() == 3);
    auto j = s.json();
    CHECK(j["type"] == "summary");
    CHECK(j["not_kept"] == 14);
    CHECK(s.text().find("(14 more not kept)") != std::string::npos);
}
