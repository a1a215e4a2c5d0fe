// kubectl pwru --report's reading of a recorded --output-json timeline: an
// event read back renders exactly as the original (text and JSON), and the
// summary counts events, drops and losses per node.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "kubectl-plugin/trace_report.h"
#include "tracer/events/output_format.h"

using namespace pwru;
using Catch::Matchers::Contains;

namespace {

EventRecord drop_event() {
    EventRecord e;
    e.skb = 0xffff888102a5fce0;
    e.cpu = 3;
    e.process = "/usr/bin/curl:4242";
    e.ktime_ns = 123456789;
    e.wall_ns = 1764000000123456789;
    e.func = "kfree_skb";
    e.drop_reason = "SKB_DROP_REASON_NETFILTER_DROP";
    e.location = "nft_do_chain+0x46f [nf_tables]";
    e.netns = 4026532178;
    e.mark = 0x2a;
    e.ifindex = 7;
    e.ifname = "eth0";
    e.proto = 0x0800;
    e.mtu = 1500;
    e.len = 60;
    e.has_tuple = true;
    e.tuple = {4, 6, 0x02 | 0x10, "10.244.1.5", "10.96.0.10", 40000, 80};
    e.caller = "nf_hook_slow";
    e.stack = {"nft_do_chain+0x46f [nf_tables]", "nf_hook_slow+0x41"};
    e.node = "kind-worker2";
    e.pod = "web-0";
    return e;
}

}  // namespace

TEST_CASE("report: an event read back from --output-json renders as the original", "[unit][report]") {
    OutputOptions opts;
    opts.node_columns = true;
    opts.tcp_flags = true;
    opts.caller = true;
    opts.timestamp = TimestampMode::Absolute;
    for (bool v6 : {false, true}) {
        EventRecord e = drop_event();
        if (v6) e.tuple = {6, 17, 0, "fd00::1", "fd00::2", 53, 5353};
        OutputOptions json_opts = opts;
        json_opts.json = true;
        const std::string line = OutputFormatter(json_opts).format(e);
        auto back = plugin::event_from_output_json(nlohmann::json::parse(line));
        REQUIRE(back);
        INFO(line);
        CHECK(back->func == "kfree_skb");
        CHECK(OutputFormatter(json_opts).format(*back) == line);
        CHECK(OutputFormatter(opts).format(*back) == OutputFormatter(opts).format(e));
    }
    CHECK_FALSE(plugin::event_from_output_json(nlohmann::json{{"node_status", "connected"}}));
    CHECK_FALSE(plugin::event_from_output_json(nlohmann::json{{"skb", 12}, {"func", "f"}}));
}

TEST_CASE("report: events, drops and losses per node", "[unit][report]") {
    OutputOptions json_opts;
    json_opts.json = true;
    json_opts.node_columns = true;
    OutputFormatter fmt(json_opts);
    plugin::TraceReport r;
    REQUIRE(r.add_line(R"({"node":"kind-worker","node_status":"connected","target":"default/client"})"));
    REQUIRE(r.add_line(R"({"node":"kind-worker2","node_status":"connected","target":"default/web-0"})"));
    EventRecord sent = drop_event();
    sent.func = "net_dev_queue";
    sent.drop_reason = sent.location = "";
    sent.node = "kind-worker";
    sent.pod = "client";
    REQUIRE(r.add_line(fmt.format(sent)));
    EventRecord dropped = drop_event();
    REQUIRE(r.add_line(fmt.format(dropped)));
    dropped.skb += 0x100;  // a second packet dropped at the same place
    REQUIRE(r.add_line(fmt.format(dropped)));
    CHECK_FALSE(r.add_line("{\"skb\":\"0xff"));  // a line cut by a killed writer
    r.add_plugin_log(
        "kubectl-pwru: 4.2 s\n"
        "  kind-worker: 1 events (0 late), lost: 0 ring buffer full, 0 over the rate limit; ended\n"
        "  kind-worker2: 2 events (0 late), lost: 17 ring buffer full, 3 over the rate limit; ended\n");
    REQUIRE(r.nodes().size() == 2);
    CHECK(r.nodes().at("kind-worker").events == 1);
    CHECK(r.nodes().at("kind-worker2").events == 2);
    CHECK(r.nodes().at("kind-worker2").ringbuf_full == 17);
    const std::string md = r.markdown();
    INFO(md);
    CHECK_THAT(md, Contains("| kind-worker | default/client | 1 | 0 | 0 | 0 | connected |"));
    CHECK_THAT(md, Contains("| kind-worker2 | default/web-0 | 2 | 0 | 17 | 3 | connected |"));
    CHECK_THAT(md, Contains("- **kind-worker2**: 2 packets dropped in nft_do_chain at eth0:7 in netns 4026532178: "
                            "SKB_DROP_REASON_NETFILTER_DROP"));
    CHECK_THAT(md, Contains("  - e.g. 10.244.1.5:40000->10.96.0.10:80(tcp): kfree_skb"));
    CHECK_THAT(md, !Contains("**kind-worker**:"));  // no drop there
    CHECK_THAT(md, Contains("1 line(s) of the timeline were not kubectl-pwru records"));
    CHECK_THAT(md, !Contains("unknown"));
}
