// --output-pcap files are real pcapng: libpcap reads them back, IP-only
// packets get an Ethernet header, each packet carries its function.
#include <pcap/pcap.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>

#include "support/test_files.h"
#include "tracer/output/pcapng_writer.h"

using namespace pwru;

namespace {

pwru_packet packet(bool l2, std::initializer_list<uint8_t> bytes) {
    pwru_packet p{};
    p.l2 = l2;
    p.cap_len = static_cast<uint32_t>(bytes.size());
    p.orig_len = p.cap_len + 100;  // the rest was not captured
    std::copy(bytes.begin(), bytes.end(), p.data);
    return p;
}

}  // namespace

TEST_CASE("pcapng output reads back with libpcap", "[unit]") {
    test::TempDir dir{"pwru-pcap"};
    auto path = (dir.path / "t.pcapng").string();
    EventRecord e;
    e.skb = 0xffff888100000000;
    e.func = "kfree_skb";
    e.drop_reason = "SKB_DROP_REASON_NETFILTER_DROP";
    e.wall_ns = 1764043062123456789;
    e.netns = 4026531840u;
    e.ifname = "veth-b";
    e.ifindex = 2;
    {
        auto w = PcapngWriter::open(path);
        REQUIRE(w);
        REQUIRE(w->write(e, packet(true, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00, 0x45})));
        REQUIRE(w->write(e, packet(false, {0x60, 0, 0, 0})));
    }
    char err[PCAP_ERRBUF_SIZE];
    pcap_t* p = pcap_open_offline(path.c_str(), err);
    REQUIRE(p);
    CHECK(pcap_datalink(p) == DLT_EN10MB);
    pcap_pkthdr* h;
    const u_char* d;
    REQUIRE(pcap_next_ex(p, &h, &d) == 1);
    CHECK(h->caplen == 15);
    CHECK(h->len == 115);
    CHECK(h->ts.tv_sec == 1764043062);
    CHECK(d[14] == 0x45);
    REQUIRE(pcap_next_ex(p, &h, &d) == 1);
    CHECK(h->caplen == 18);  // 14 made-up Ethernet bytes + 4
    CHECK(d[12] == 0x86);
    CHECK(d[13] == 0xdd);
    CHECK(d[14] == 0x60);
    CHECK(pcap_next_ex(p, &h, &d) == PCAP_ERROR_BREAK);
    pcap_close(p);

    std::ifstream in(path, std::ios::binary);
    std::string raw((std::istreambuf_iterator<char>(in)), {});
    CHECK(raw.find(pcap_comment(e)) != std::string::npos);
    CHECK(pcap_comment(e) ==
          "kfree_skb(SKB_DROP_REASON_NETFILTER_DROP) skb=0xffff888100000000 netns=4026531840 iface=veth-b:2");
}

TEST_CASE("an unwritable pcap path is a clear error", "[unit]") {
    auto w = PcapngWriter::open("/nonexistent-dir/t.pcapng");
    REQUIRE_FALSE(w);
    CHECK(w.error().what.find("--output-pcap /nonexistent-dir/t.pcapng") != std::string::npos);
}
