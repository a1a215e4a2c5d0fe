// pwru's --filter-skb-expr and --output-skb-metadata (v1.0.10 / v1.0.11)
// with real traffic: A marks its SYNs to B:80 (mangle OUTPUT) and B drops
// them. The expression on skb->mark selects exactly the marked skbs (B's
// side loses the mark: the veth scrubs it on the way into another netns),
// and the members printed are the skb's own: the same mark, length and
// device the event's metadata columns show.
#include <catch2/catch.hpp>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/child_process.h"
#include "support/netns_fixture.h"
#include "support/root_guard.h"
#include "support/test_files.h"
#include "support/text_lines.h"

using namespace pwru::test;
using namespace std::chrono_literals;

namespace {

// pwru with `args` while A sends SYNs to B:80 (dropped in B); its stdout.
std::string trace_dropped_syns(const NetnsPair& ns, std::vector<std::string> args) {
    const std::string ready = pwru::test::fresh_ready_file("members");
    std::vector<std::string> argv = {PWRU_BIN, "--backend", "tracepoint", "--ready-file", ready};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess pwru(argv);
    if (!pwru.wait_for_file(ready, 60s)) FAIL("pwru was not ready in 60 s; stderr:\n" << pwru.stderr_text());
    CHECK_FALSE(ns.tcp_connect_from_a(80, 1200));  // dropped: the SYN and a retransmit
    std::this_thread::sleep_for(300ms);
    pwru.interrupt();
    auto status = pwru.wait(30s);
    INFO("pwru stderr:\n" << pwru.stderr_text());
    REQUIRE(status);
    CHECK(*status == 0);
    return pwru.stdout_text();
}

std::vector<nlohmann::json> json_events(const std::string& out) {
    std::vector<nlohmann::json> events;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] != '{') continue;
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.contains("func")) events.push_back(std::move(j));
    }
    return events;
}

}  // namespace

TEST_CASE("--filter-skb-expr selects by an skb member and --output-skb-metadata prints the skb's own values",
          "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});
    ns.set_mark_rule_a(0x2a, 80);

    SECTION("skb->mark == 0x2a, no pcap filter: only the marked SYNs, and the members agree with the columns") {
        std::string out =
            trace_dropped_syns(ns, {"--output-json", "--filter-skb-expr", "skb->mark == 0x2a", "--output-skb-metadata",
                                    "skb->mark,skb->len", "--output-skb-metadata", "skb->dev->ifindex"});
        INFO("pwru stdout:\n" << out);
        auto events = json_events(out);
        REQUIRE_FALSE(events.empty());
        for (const auto& e : events) {
            INFO(e.dump());
            CHECK(e.at("mark") == 42);
            REQUIRE(e.contains("skb_fields"));
            const auto& f = e.at("skb_fields");
            CHECK(f.at("skb->mark") == "42");
            CHECK(f.at("skb->len") == std::to_string(e.at("len").get<uint32_t>()));
            // iface is "name:ifindex", or the ifindex alone; no device reads "?"
            std::string iface = e.at("iface");
            std::string ifindex = iface.substr(iface.rfind(':') + 1);
            if (f.at("skb->dev->ifindex") != "?") CHECK(f.at("skb->dev->ifindex") == ifindex);
            CHECK(e.at("tuple").at("daddr") == ns.addr_b());
            CHECK(e.at("tuple").at("dport") == 80);
        }
    }
    SECTION("another mark selects nothing") {
        std::string out = trace_dropped_syns(ns, {"--filter-skb-expr", "skb->mark == 0x2b"});
        INFO("pwru stdout:\n" << out);
        CHECK(lines_with(out, ns.addr_b()).empty());
    }
    SECTION("comparisons both ways on skb->len, with a pcap filter; text output names the member") {
        std::string small = trace_dropped_syns(
            ns, {"--filter-skb-expr", "skb->len < 1000", "--output-skb-metadata", "skb->len", "tcp and dst port 80"});
        INFO("pwru stdout (len < 1000):\n" << small);
        auto lines = lines_with(small, ns.addr_b() + ":80(tcp)");
        REQUIRE_FALSE(lines.empty());
        for (const auto& l : lines) CHECK(l.find(" len=") != std::string::npos);
        std::string big = trace_dropped_syns(ns, {"--filter-skb-expr", "skb->len > 1000", "tcp and dst port 80"});
        INFO("pwru stdout (len > 1000):\n" << big);
        CHECK(lines_with(big, ns.addr_b()).empty());
    }
}
