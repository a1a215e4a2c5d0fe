// The one rule for "dropped" (tracer/events/drop_verdict.h) and everything that
// follows it: pwru's summary and JSON, the agent's per-stream drop count (same
// FirstDropVerdict), kubectl-pwru's report and packet correlation.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "kubectl-plugin/packet_correlation.h"
#include "kubectl-plugin/trace_report.h"
#include "tracer/events/drop_verdict.h"
#include "tracer/events/output_format.h"
#include "tracer/events/trajectory_summary.h"

using namespace pwru;

namespace {

EventRecord ev(uint64_t skb, const std::string& func, const std::string& reason = "", int64_t wall = 0) {
    EventRecord e;
    e.skb = skb;
    e.func = func;
    e.drop_reason = reason;
    e.netns = 4026532178u;
    e.ifname = "vn1";
    e.ifindex = 3;
    e.wall_ns = wall;
    e.has_tuple = true;
    e.tuple = {4, 6, 0x02, "10.99.1.1", "10.99.1.2", 40000, 8080};
    return e;
}

}  // namespace

TEST_CASE("drop rule: only the verdict functions and the kfree_skb tracepoint carry a reason", "[unit]") {
    for (const char* f : {"kfree_skb_reason", "sk_skb_reason_drop", "kfree_skb_list_reason", "dev_kfree_skb_any_reason",
                          "dev_kfree_skb_irq_reason"}) {
        INFO(f);
        CHECK(function_reports_drop_reason(f));
    }
    for (const char* f : {"skb_release_data", "skb_release_all", "__napi_kfree_skb", "tcp_drop_reason", "kfree_skb",
                          "consume_skb", "kfree_skbmem", "sk_skb_reason_drop2", ""}) {
        INFO(f);
        CHECK_FALSE(function_reports_drop_reason(f));
    }
    CHECK(tracepoint_reports_drop_reason("kfree_skb"));
    CHECK_FALSE(tracepoint_reports_drop_reason("consume_skb"));
    CHECK_FALSE(tracepoint_reports_drop_reason("net_dev_queue"));
}

TEST_CASE("drop rule: SKB_CONSUMED and SKB_NOT_DROPPED_YET are not drops", "[unit]") {
    CHECK(is_drop_reason("SKB_DROP_REASON_NOT_SPECIFIED"));
    CHECK(is_drop_reason("SKB_DROP_REASON_NO_SOCKET"));
    CHECK(is_drop_reason("UNKNOWN(4242)"));
    CHECK_FALSE(is_drop_reason(""));
    CHECK_FALSE(is_drop_reason("SKB_CONSUMED"));
    CHECK_FALSE(is_drop_reason("SKB_NOT_DROPPED_YET"));
}

TEST_CASE("drop rule: where an skb ends, per backend", "[unit]") {
    CHECK(skb_end_functions(false) == std::set<std::string>{"kfree_skbmem"});
    CHECK(skb_end_functions(true) == std::set<std::string>{"consume_skb", "kfree_skb"});
    CHECK(skb_end_functions_any_backend() == std::set<std::string>{"consume_skb", "kfree_skb", "kfree_skbmem"});
    CHECK(tracepoint_ends_skb("kfree_skb"));
    CHECK(tracepoint_ends_skb("consume_skb"));
    CHECK_FALSE(tracepoint_ends_skb("netif_rx"));
}

TEST_CASE("summary: a packet's drop is its first verdict; the frees after it do not replace it", "[unit]") {
    TrajectorySummary s;  // kprobe backends
    // A SYN to a closed port as 6.12 shows it, with a second verdict function after
    // the first (dev_kfree_skb_any_reason ends in sk_skb_reason_drop) and a
    // NOT_SPECIFIED that is not a verdict at all (were it decoded).
    s.add(ev(0x30, "tcp_v4_rcv"));
    s.add(ev(0x30, "sk_skb_reason_drop", "SKB_DROP_REASON_NO_SOCKET"));
    s.add(ev(0x30, "sk_skb_reason_drop", "SKB_DROP_REASON_NOT_SPECIFIED"));
    s.add(ev(0x30, "skb_release_data", "SKB_DROP_REASON_NOT_SPECIFIED"));
    s.add(ev(0x30, "kfree_skbmem"));
    auto t = s.trajectories();
    REQUIRE(t.size() == 1);
    CHECK(t[0].dropped);
    CHECK(t[0].drop_line == "dropped in sk_skb_reason_drop at vn1:3 in netns 4026532178: SKB_DROP_REASON_NO_SOCKET");
    CHECK(s.dropped_count() == 1);
    auto j = s.json();
    REQUIRE(j["packets"].size() == 1);
    CHECK(j["packets"][0]["drop"] == t[0].drop_line);
}

TEST_CASE("summary: the place of a kprobe drop is its caller when known", "[unit]") {
    EventRecord e = ev(0x31, "sk_skb_reason_drop", "SKB_DROP_REASON_NO_SOCKET");
    CHECK(drop_line(e).starts_with("dropped in sk_skb_reason_drop at vn1:3"));
    e.caller = "tcp_v4_rcv";  // --output-caller
    CHECK(drop_line(e) == "dropped in tcp_v4_rcv at vn1:3 in netns 4026532178: SKB_DROP_REASON_NO_SOCKET");
    e.location = "nf_hook_slow+0x9c";  // a tracepoint's location comes first
    CHECK(drop_line(e).starts_with("dropped in nf_hook_slow at "));
    EventRecord tp = ev(0x32, "kfree_skb", "SKB_DROP_REASON_NO_SOCKET");
    tp.caller = "sk_skb_reason_drop";  // the tracepoint's firer, not the place
    CHECK(drop_line(tp).starts_with("dropped in kfree_skb at "));
}

TEST_CASE("summary: consumed packets are not dropped, on either backend", "[unit]") {
    TrajectorySummary kp;
    kp.add(ev(0x40, "tcp_v4_rcv"));
    kp.add(ev(0x40, "dev_kfree_skb_any_reason", "SKB_CONSUMED"));
    kp.add(ev(0x40, "skb_release_data"));
    kp.add(ev(0x40, "kfree_skbmem"));
    kp.add(ev(0x41, "ip_rcv"));
    kp.add(ev(0x41, "kfree_skbmem"));
    CHECK(kp.dropped_count() == 0);
    CHECK(kp.text().find("Trajectories: 2 packets, 0 dropped\n") == 0);
    CHECK(kp.text().find("dropped in") == std::string::npos);
    CHECK_FALSE(kp.json()["packets"][0].contains("drop"));

    TrajectorySummary tp(skb_end_functions(true));
    tp.add(ev(0x50, "netif_rx"));
    tp.add(ev(0x50, "consume_skb"));
    tp.add(ev(0x50, "netif_rx"));  // reused address: a new packet, then dropped
    tp.add(ev(0x50, "kfree_skb", "SKB_DROP_REASON_NETFILTER_DROP"));
    auto t = tp.trajectories();
    REQUIRE(t.size() == 2);
    CHECK_FALSE(t[0].dropped);
    CHECK(t[1].dropped);
    CHECK(tp.dropped_count() == 1);
}

TEST_CASE("FirstDropVerdict: once per packet, again after the skb ended", "[unit]") {
    FirstDropVerdict v(skb_end_functions(false));
    CHECK_FALSE(v.add(ev(0x60, "ip_rcv")));
    CHECK(v.add(ev(0x60, "dev_kfree_skb_any_reason", "SKB_DROP_REASON_NOT_SPECIFIED")));
    CHECK_FALSE(v.add(ev(0x60, "sk_skb_reason_drop", "SKB_DROP_REASON_NOT_SPECIFIED")));
    CHECK_FALSE(v.add(ev(0x61, "sk_skb_reason_drop", "SKB_CONSUMED")));
    CHECK(v.remembered() == 1);
    CHECK_FALSE(v.add(ev(0x60, "kfree_skbmem")));
    CHECK(v.remembered() == 0);
    // The address holds a new packet now: its drop counts.
    CHECK(v.add(ev(0x60, "sk_skb_reason_drop", "SKB_DROP_REASON_NO_SOCKET")));
}

TEST_CASE("correlate: a trajectory's drop is its earliest verdict, never a consume", "[unit][correlate]") {
    plugin::PacketCorrelator c;
    c.add(ev(0x70, "ip_rcv", "", 100));
    c.add(ev(0x70, "sk_skb_reason_drop", "SKB_DROP_REASON_NETFILTER_DROP", 200));
    c.add(ev(0x70, "sk_skb_reason_drop", "SKB_DROP_REASON_NOT_SPECIFIED", 300));
    c.add(ev(0x70, "dev_kfree_skb_any_reason", "SKB_DROP_REASON_NO_SOCKET", 150));  // late, but earlier
    auto all = c.close_all();
    REQUIRE(all.size() == 1);
    REQUIRE(all[0].drop);
    CHECK(all[0].drop->drop_reason == "SKB_DROP_REASON_NO_SOCKET");

    plugin::PacketCorrelator consumed;
    consumed.add(ev(0x71, "ip_rcv", "", 100));
    consumed.add(ev(0x71, "dev_kfree_skb_any_reason", "SKB_CONSUMED", 200));
    auto c2 = consumed.close_all();
    REQUIRE(c2.size() == 1);
    CHECK_FALSE(c2[0].drop);
}

TEST_CASE("report: kubectl-pwru's per-node drops follow the same rule", "[unit][report]") {
    OutputOptions json_opts;
    json_opts.json = true;
    json_opts.node_columns = true;
    OutputFormatter fmt(json_opts);
    plugin::TraceReport r;
    auto add = [&](EventRecord e) {
        e.node = "kind-worker";
        REQUIRE(r.add_line(fmt.format(e)));
    };
    // A SYN dropped (NO_SOCKET) and then freed; a consumed packet; a packet never dropped.
    add(ev(0x80, "tcp_v4_rcv"));
    add(ev(0x80, "sk_skb_reason_drop", "SKB_DROP_REASON_NO_SOCKET"));
    add(ev(0x80, "sk_skb_reason_drop", "SKB_DROP_REASON_NOT_SPECIFIED"));
    add(ev(0x80, "kfree_skbmem"));
    add(ev(0x81, "dev_kfree_skb_any_reason", "SKB_CONSUMED"));
    add(ev(0x81, "kfree_skbmem"));
    add(ev(0x82, "ip_rcv"));
    add(ev(0x82, "consume_skb"));
    const std::string md = r.markdown();
    INFO(md);
    CHECK_THAT(md, Catch::Matchers::Contains("- **kind-worker**: 1 packet dropped in sk_skb_reason_drop at vn1:3 in "
                                             "netns 4026532178: SKB_DROP_REASON_NO_SOCKET\n"));
    CHECK_THAT(md, !Catch::Matchers::Contains("NOT_SPECIFIED"));
    CHECK_THAT(md, !Catch::Matchers::Contains("SKB_CONSUMED"));
}
