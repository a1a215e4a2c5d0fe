// tracer/cbpf_lint: tests libpcap compiles that can never be true are found,
// and real filters give no warning.
#include <catch2/catch.hpp>
#include <string>

#include "tracer/filter/cbpf_lint.h"
#include "tracer/filter/filter_programs.h"
#include "tracer/filter/pcap_compile.h"

using namespace pwru;

namespace {
std::vector<std::string> lint(const std::string& expr) {
    auto prog = compile_pcap(expr, LinkLayer::L2);
    REQUIRE(prog);
    return impossible_comparisons(*prog);
}
}  // namespace

TEST_CASE("cbpf lint: a byte or halfword compared with a value it cannot hold", "[unit]") {
    auto proto = lint("ip proto 999");
    REQUIRE(proto.size() == 1);
    CHECK(proto[0] ==
          "a test compares a 1-byte packet field with 999, a value it cannot hold: that test is never true");
    CHECK(lint("ip6 proto 300").size() == 1);
    CHECK(lint("ether proto 70000").size() == 1);  // a 2-byte ethertype
    CHECK(lint("icmp or ip proto 999").size() == 1);
    // The same test, the warning carried by the session's filter programs.
    auto programs = build_filter_programs("ip proto 999");
    REQUIRE(programs);
    CHECK(programs->warnings.size() == 1);
}

TEST_CASE("cbpf lint: real filters give no warning", "[unit]") {
    for (const char* expr : {"ip proto 17", "tcp port 80", "icmp or icmp6", "host 10.0.0.1 and tcp[13] & 2 != 0",
                             "vlan and udp", "ip[2:2] > 1500", "ether proto 0x86dd", "less 64", "greater 1000"}) {
        INFO(expr);
        CHECK(lint(expr).empty());
    }
    auto programs = build_filter_programs("tcp port 80");
    REQUIRE(programs);
    CHECK(programs->warnings.empty());
}
