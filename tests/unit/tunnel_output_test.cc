// --output-tunnel: the TUNNEL column (last, as pwru), --output-json's
// tunnel_tuple (pwru's field), and the lossless transport JSON.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tracer/cli_options.h"
#include "tracer/events/output_format.h"

using namespace pwru;

namespace {

EventRecord vxlan_event() {
    EventRecord e;
    e.skb = 0xffff888102a5fce0ULL;
    e.cpu = 1;
    e.process = "/usr/bin/bash:17267";
    e.func = "net_dev_queue";
    e.has_tuple = true;
    e.tuple = {4, 17, 0, "10.199.1.1", "10.199.1.2", 51234, 4789};
    e.has_tunnel_tuple = true;
    e.tunnel_tuple = {4, 6, 0x12, "192.168.1.1", "192.168.1.2", 41000, 80};
    return e;
}

}  // namespace

TEST_CASE("the TUNNEL column ends the header and the event line", "[unit]") {
    OutputFormatter f({.tunnel = true});
    CHECK(f.header().ends_with(" FUNC TUNNEL"));
    std::string line = f.format(vxlan_event());
    CHECK(
        line.ends_with(" 10.199.1.1:51234->10.199.1.2:4789(udp) net_dev_queue 192.168.1.1:41000->192.168.1.2:80(tcp)"));

    OutputFormatter flags({.tcp_flags = true, .tunnel = true});
    CHECK(flags.format(vxlan_event()).ends_with("192.168.1.2:80(tcp:SYN|ACK)"));

    EventRecord plain = vxlan_event();  // not tunnel traffic: pwru's empty tuple
    plain.has_tunnel_tuple = false;
    plain.tunnel_tuple = {};
    CHECK(f.format(plain).ends_with(" net_dev_queue :0->:0()"));

    OutputFormatter off({});
    CHECK(off.header().ends_with(" FUNC"));
    CHECK(off.format(vxlan_event()).ends_with(" net_dev_queue"));
}

TEST_CASE("--output-json carries pwru's tunnel_tuple", "[unit]") {
    OutputFormatter f({.json = true, .tunnel = true});
    auto j = nlohmann::json::parse(f.format(vxlan_event()));
    REQUIRE(j.contains("tunnel_tuple"));
    CHECK(j["tunnel_tuple"]["saddr"] == "192.168.1.1");
    CHECK(j["tunnel_tuple"]["daddr"] == "192.168.1.2");
    CHECK(j["tunnel_tuple"]["sport"] == 41000);
    CHECK(j["tunnel_tuple"]["dport"] == 80);
    CHECK(j["tunnel_tuple"]["proto"] == 6);
    CHECK_FALSE(j["tunnel_tuple"].contains("flags"));
    CHECK(j["tuple"]["dport"] == 4789);

    OutputFormatter flags({.tcp_flags = true, .json = true, .tunnel = true});
    CHECK(nlohmann::json::parse(flags.format(vxlan_event()))["tunnel_tuple"]["flags"] == "SYN|ACK");
    OutputFormatter off({.json = true});
    CHECK_FALSE(nlohmann::json::parse(off.format(vxlan_event())).contains("tunnel_tuple"));
}

TEST_CASE("the transport JSON keeps the tunnel tuple", "[unit]") {
    nlohmann::json j = vxlan_event();
    REQUIRE(j.contains("tunnel_tuple"));
    EventRecord back = j.get<EventRecord>();
    CHECK(back.has_tunnel_tuple);
    CHECK(back.tunnel_tuple.l3 == 4);
    CHECK(back.tunnel_tuple.saddr == "192.168.1.1");
    CHECK(back.tunnel_tuple.dport == 80);
    CHECK(back.tunnel_tuple.tcp_flags == 0x12);
    OutputFormatter a({.tunnel = true}), b({.tunnel = true});
    CHECK(a.format(back) == b.format(vxlan_event()));

    EventRecord plain = vxlan_event();
    plain.has_tunnel_tuple = false;
    nlohmann::json pj = plain;
    CHECK_FALSE(pj.contains("tunnel_tuple"));
    CHECK_FALSE(pj.get<EventRecord>().has_tunnel_tuple);
}

TEST_CASE("tunnel flags parse into the trace and output options", "[unit]") {
    const char* argv[] = {"pwru",
                          "--filter-tunnel-pcap-l2",
                          "ether src 02:00:00:00:00:01",
                          "--filter-tunnel-pcap-l3",
                          "udp dst port 7001",
                          "--output-tunnel",
                          "udp port 4789"};
    auto c = parse_cli(7, argv);
    REQUIRE(c);
    CHECK(c->trace.tunnel_pcap_l2 == "ether src 02:00:00:00:00:01");
    CHECK(c->trace.tunnel_pcap_l3 == "udp dst port 7001");
    CHECK(c->trace.tunnel_filter());
    CHECK(c->trace.output_tunnel);
    CHECK(c->output.tunnel);
    CHECK(c->trace.pcap_expr == "udp port 4789");

    const char* none[] = {"pwru"};
    auto d = parse_cli(1, none);
    REQUIRE(d);
    CHECK_FALSE(d->trace.tunnel_filter());
    CHECK_FALSE(d->output.tunnel);
}
