// Differential test of the tunnel filters (--filter-tunnel-pcap-l2/l3)
// against libpcap run on the inner packet.
//
// Each combination of an outer filter and the two tunnel filters is
// translated and spliced into the REAL `filtercheck` program of
// bpf/pwru.bpf.c (the probes' filter_pcap(): outer filter, then
// tunnel_inner_offset() and the tunnel stubs), loaded through the verifier,
// and run by BPF_PROG_TEST_RUN on generated VXLAN / Geneve packets,
// look-alikes and truncations (tests/support/tunnel_packets.h), and on the
// general filter corpus. The expected verdict is pwru's rule:
//   outer(pkt) and (not tunnel traffic or
//                   (tunnel_l2(inner frame) and tunnel_l3(inner IP header)))
// with every part computed by pcap_offline_filter() on the bytes, and the
// inner frame found by the reference rule of tunnel_packets.h.
#include <linux/filter.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "support/packet_corpus.h"
#include "support/root_guard.h"
#include "support/tunnel_packets.h"
#include "tracer/filter/filter_harness.h"
#include "tracer/filter/pcap_compile.h"

using pwru::LinkLayer;
using pwru::test::Bytes;

namespace {

struct Combo {
    const char* outer;
    const char* tunnel_l2;
    const char* tunnel_l3;
};

const Combo kCombos[] = {
    {"", "", "udp dst port 7001"},
    {"", "", "host 10.1.0.1"},
    {"", "", "tcp[tcpflags] & tcp-syn != 0"},
    {"", "", "ip6 and udp"},
    {"", "", "len > 40"},
    {"", "", "ip6 protochain 17"},
    {"", "arp", ""},
    {"", "ether src 02:02:00:00:00:01", ""},
    {"", "vlan and udp", ""},
    {"udp", "ip", "icmp"},
    {"host 192.168.50.1", "", "udp port 7001 or tcp port 80"},
    {"not udp port 53", "not arp", "not icmp"},
    {"ip6", "ether[12:2] = 0x86dd", "ip6[6] = 17"},
};

// libpcap's verdict, or "match" for an absent filter.
bool matches(const std::vector<sock_filter>* prog, const Bytes& pkt) {
    return !prog || pwru::test::libpcap_matches(*prog, pkt);
}

std::optional<std::vector<sock_filter>> compile_or_none(const char* expr, LinkLayer ll) {
    if (!*expr) return std::nullopt;
    auto c = pwru::compile_pcap(expr, ll);
    if (!c) FAIL("'" << expr << "' does not compile: " << c.error().what);
    return *c;
}

// BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header and an IP
// ethertype with less than its header behind it (see filter_differential_test.cc).
// IP packets (l3) always run: FilterHarness picks an ethertype that fits.
bool test_run_accepts(const Bytes& pkt, bool l3) {
    if (l3) return true;
    if (pkt.size() < 14) return false;
    const uint16_t type = static_cast<uint16_t>(pkt[12] << 8 | pkt[13]);
    const size_t ip_len = pkt.size() - 14;
    return !((type == 0x0800 && ip_len < 20) || (type == 0x86dd && ip_len < 40));
}

}  // namespace

TEST_CASE("the tunnel filters decide as libpcap on the inner packet (probe-path differential)", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    pwru::test::TunnelPacketSets tunnel = pwru::test::make_tunnel_packets();
    pwru::test::PacketSets general = pwru::test::make_packets();

    size_t comparisons = 0, disagreements = 0, tunnel_packets = 0, inner_matches = 0;
    for (bool l3 : {false, true}) {
        const LinkLayer ll = l3 ? LinkLayer::L3 : LinkLayer::L2;
        std::vector<Bytes> packets;
        for (const Bytes& p : l3 ? tunnel.l3 : tunnel.l2) packets.push_back(p);
        for (const Bytes& p : l3 ? general.l3 : general.l2)
            if (test_run_accepts(p, l3)) packets.push_back(p);
        size_t counted = 0;
        for (const Bytes& p : packets) counted += pwru::test::tunnel_inner_frame(p, !l3) ? 1 : 0;
        std::printf("%s: %zu packets, %zu of them tunnel traffic by the reference rule\n", l3 ? "L3" : "L2",
                    packets.size(), counted);
        tunnel_packets += counted;

        for (const Combo& c : kCombos) {
            INFO((l3 ? "L3" : "L2") << " outer '" << c.outer << "', tunnel L2 '" << c.tunnel_l2 << "', tunnel L3 '"
                                    << c.tunnel_l3 << "'");
            auto outer = compile_or_none(c.outer, ll);
            auto inner2 = compile_or_none(c.tunnel_l2, LinkLayer::L2);
            auto inner3 = compile_or_none(c.tunnel_l3, LinkLayer::L3);
            auto harness = pwru::FilterHarness::create(
                pwru::HarnessFilters{.expr = c.outer, .l3 = l3, .tunnel_l2 = c.tunnel_l2, .tunnel_l3 = c.tunnel_l3});
            if (!harness) FAIL(harness.error().message() << "\n" << harness.error().context);
            size_t shown = 0, combo_matches = 0;
            for (size_t i = 0; i < packets.size(); ++i) {
                const Bytes& pkt = packets[i];
                auto ours = (*harness)->run(pkt.data(), pkt.size());
                if (!ours) FAIL("packet #" << i << ": " << ours.error().message());
                bool want = matches(outer ? &*outer : nullptr, pkt);
                auto inner = pwru::test::tunnel_inner_frame(pkt, !l3);
                if (want && inner) {
                    want = matches(inner2 ? &*inner2 : nullptr, *inner) &&
                           matches(inner3 ? &*inner3 : nullptr, pwru::test::inner_l3(*inner));
                    inner_matches += want ? 1 : 0;
                }
                combo_matches += want ? 1 : 0;
                ++comparisons;
                if (*ours == want) continue;
                ++disagreements;
                if (shown++ < 3)
                    std::printf(
                        "DISAGREE %s '%s' / '%s' / '%s' packet #%zu (%zu bytes, %s): probe filter %d, "
                        "expected %d\n  %s\n",
                        l3 ? "L3" : "L2", c.outer, c.tunnel_l2, c.tunnel_l3, i, pkt.size(),
                        inner ? "tunnel" : "not tunnel", *ours, want, pwru::test::hex(pkt, 96).c_str());
            }
            std::printf("%s %5zu / %zu match: outer '%s', tunnel L2 '%s', tunnel L3 '%s'\n", l3 ? "L3" : "L2",
                        combo_matches, packets.size(), c.outer, c.tunnel_l2, c.tunnel_l3);
        }
    }
    std::printf("tunnel filter differential: %zu comparisons, %zu disagreements\n", comparisons, disagreements);
    CHECK(tunnel_packets > 1000);
    CHECK(inner_matches > 1000);  // the inner filters really decided something
    CHECK(disagreements == 0);
}

TEST_CASE("a tunnel filter that does not compile for its layer is a clear error", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    auto bad = pwru::FilterHarness::create(pwru::HarnessFilters{.tunnel_l3 = "arp"});
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind == pwru::ErrorKind::BadInput);
    CHECK(bad.error().what.find("--filter-tunnel-pcap-l3 'arp'") != std::string::npos);
    auto syntax = pwru::FilterHarness::create(pwru::HarnessFilters{.tunnel_l2 = "udp port"});
    REQUIRE_FALSE(syntax);
    CHECK(syntax.error().what.find("--filter-tunnel-pcap-l2 'udp port'") != std::string::npos);
}
