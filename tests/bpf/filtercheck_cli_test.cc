// The pwru-filtercheck command itself: a capture file in, one "<index>
// <1|0>" line per packet out, equal to libpcap's verdicts; exit 2 with
// libpcap's message for a bad expression.
// Never include <linux/bpf.h> here: its bpf_insn clashes with pcap's.
#include <pcap/pcap.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <sstream>

#include "support/netns_fixture.h"
#include "support/packet_corpus.h"
#include "support/root_guard.h"
#include "support/test_files.h"

using namespace pwru::test;

namespace {

// Writes `packets` as a pcap file of link type `dlt`.
void write_pcap(const std::string& path, int dlt, const std::vector<Bytes>& packets) {
    pcap_t* dead = pcap_open_dead(dlt, 262144);
    REQUIRE(dead);
    pcap_dumper_t* d = pcap_dump_open(dead, path.c_str());
    REQUIRE(d);
    for (const auto& p : packets) {
        pcap_pkthdr h{};
        h.caplen = h.len = static_cast<bpf_u_int32>(p.size());
        pcap_dump(reinterpret_cast<u_char*>(d), &h, p.data());
    }
    pcap_dump_close(d);
    pcap_close(dead);
}

// Packets of a size every layer of the kernel's test run accepts.
std::vector<Bytes> pick(const std::vector<Bytes>& all, size_t min_size, size_t count) {
    std::vector<Bytes> out;
    for (const auto& p : all)
        if (p.size() >= min_size && out.size() < count) out.push_back(p);
    return out;
}

// l3: the packets are IP packets; pass_l3: say so with --l3 too (the
// capture's link type says it already).
void compare(const std::string& expr, bool l3, const std::vector<Bytes>& packets, const std::string& file,
             bool pass_l3 = true) {
    auto prog = pwru::compile_pcap(expr, l3 ? pwru::LinkLayer::L3 : pwru::LinkLayer::L2);
    REQUIRE(prog);
    std::vector<std::string> argv = {PWRU_FILTERCHECK_BIN};
    if (l3 && pass_l3) argv.push_back("--l3");
    argv.push_back(expr);
    argv.push_back(file);
    CommandResult r = run_command(argv, std::chrono::seconds(60));
    INFO(expr << (l3 ? " (L3)" : " (L2)") << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    std::istringstream out(r.out);
    size_t index, n = 0, matches = 0;
    int verdict;
    while (out >> index >> verdict) {
        REQUIRE(index == n);
        REQUIRE(n < packets.size());
        CHECK((verdict == 1) == libpcap_matches(*prog, packets[n]));
        matches += verdict;
        ++n;
    }
    CHECK(n == packets.size());
    WARN("pwru-filtercheck '" << expr << "'" << (l3 && pass_l3 ? " --l3" : "") << (l3 ? " (IP packets)" : "") << ": "
                              << n << " packets, " << matches << " match, all as libpcap");
}

}  // namespace

TEST_CASE("pwru-filtercheck agrees with libpcap packet by packet", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    TempDir dir{"pwru-filtercheck"};
    PacketSets sets = make_packets();
    auto l2 = pick(sets.l2, 60, 400);
    auto l3 = pick(sets.l3, 40, 400);
    REQUIRE(l2.size() > 100);
    REQUIRE(l3.size() > 100);
    const std::string l2_file = (dir.path / "l2.pcap").string(), l3_file = (dir.path / "l3.pcap").string();
    write_pcap(l2_file, DLT_EN10MB, l2);
    write_pcap(l3_file, DLT_RAW, l3);

    compare("tcp or (udp and port 53) or icmp6", false, l2, l2_file);
    compare("ip6 protochain 58 or vlan", false, l2, l2_file);
    compare("ip[6:2] & 0x1fff = 0 and len > 100", true, l3, l3_file);
    compare("ip6 protochain 6", true, l3, l3_file);
}

TEST_CASE("pwru-filtercheck: a verdict per packet for GSO, BIG TCP, jumbogram and 33-byte captures", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    TempDir dir{"pwru-filtercheck"};
    PacketSets odd = big_and_short_packets();
    size_t biggest = 0;
    for (const auto& p : odd.l3) biggest = std::max(biggest, p.size());
    CHECK(biggest >= 80000);
    const std::string l2_file = (dir.path / "big-l2.pcap").string(), l3_file = (dir.path / "big-l3.pcap").string();
    write_pcap(l2_file, DLT_EN10MB, odd.l2);
    write_pcap(l3_file, DLT_RAW, odd.l3);
    for (const char* expr : {"tcp", "len > 5000", "ip[2:2] = 0", "ip6 and tcp dst port 80", "tcp[13] & 2 != 0",
                             "greater 60000", "udp port 53", "ip6 protochain 6"}) {
        compare(expr, false, odd.l2, l2_file);
        compare(expr, true, odd.l3, l3_file, false);  // DLT_RAW: no --l3 needed
    }
}

TEST_CASE("pwru-filtercheck: a link type it cannot filter, or --l3 on Ethernet, exits 2 saying why", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    TempDir dir{"pwru-filtercheck"};
    PacketSets sets = make_packets();
    const std::string sll = (dir.path / "sll.pcap").string(), eth = (dir.path / "eth.pcap").string();
    write_pcap(sll, DLT_LINUX_SLL, pick(sets.l2, 60, 3));
    write_pcap(eth, DLT_EN10MB, pick(sets.l2, 60, 3));
    CommandResult r = run_command({PWRU_FILTERCHECK_BIN, "tcp", sll});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("is a LINUX_SLL capture") != std::string::npos);
    CHECK(r.err.find('\n') == r.err.size() - 1);
    CHECK(r.out.empty());
    r = run_command({PWRU_FILTERCHECK_BIN, "--l3", "tcp", eth});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("Ethernet (EN10MB) capture: drop --l3") != std::string::npos);
    CHECK(r.out.empty());
    r = run_command({PWRU_FILTERCHECK_BIN, "tcp", (dir.path / "missing.pcap").string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("cannot read") != std::string::npos);
}

TEST_CASE("pwru-filtercheck: a bad expression exits 2 with libpcap's message", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    TempDir dir{"pwru-filtercheck"};
    const std::string eth = (dir.path / "eth.pcap").string();
    write_pcap(eth, DLT_EN10MB, pick(make_packets().l2, 60, 3));
    CommandResult r = run_command({PWRU_FILTERCHECK_BIN, "tcp port", eth});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("syntax error") != std::string::npos);
    CHECK(r.out.empty());
}
