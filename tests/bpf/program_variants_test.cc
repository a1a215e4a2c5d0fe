// Every probe program variant passes this kernel's verifier, with and
// without an injected pcap filter. kprobe programs load here even though
// they cannot attach (no CONFIG_KPROBES): the verifier is what we prove.
#include <catch2/catch.hpp>

#include "pwru_abi.h"
#include "support/root_guard.h"
#include "tracer/filter/filter_harness.h"
#include "tracer/session.h"

using namespace pwru;

namespace {

const char* const kFilters[] = {
    "",
    "tcp and dst port 80",
    "host 10.0.0.1 and (udp or icmp)",
    "arp",  // L3 cannot express it: that side rejects everything
    "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0",
    "ip6 and udp dst port 53",
    "ip[6:2] & 0x1fff = 0 and len > 100",
};

void verify(Backend backend, const std::string& expr) {
    TraceOptions opts;
    opts.backend = backend;
    opts.pcap_expr = expr;
    opts.ringbuf_bytes = 1 << 16;
    auto s = Session::create_unprobed(opts);
    if (!s) INFO(s.error().message());
    REQUIRE(s);
    auto loaded = (*s)->load();
    INFO("backend " << backend_name(backend) << ", filter '" << expr << "'");
    if (!loaded) INFO(loaded.error().message() << "\n" << loaded.error().context);
    REQUIRE(loaded);
    if (!expr.empty())
        WARN(backend_name(backend) << " + '" << expr << "': largest program after the splice "
                                   << (*s)->max_program_insns() << " insns");
}

}  // namespace

TEST_CASE("every backend's programs pass the verifier, with every filter", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    for (Backend b : {Backend::KprobeMulti, Backend::Kprobe, Backend::Tracepoint})
        for (const char* f : kFilters) verify(b, f);
}

// --filter-skb-expr and --output-skb-metadata: the member reads (a pointer
// chain, a bitfield, a big-endian and a signed member) pass the verifier on
// every backend, with the dumps (at --set-percpu-buf's largest) and the
// packet after them in the record.
TEST_CASE("every backend's programs pass the verifier with skb member filters and outputs", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    for (Backend b : {Backend::KprobeMulti, Backend::Kprobe, Backend::Tracepoint}) {
        for (const char* expr : {"skb->dev->ifindex == 1", "skb->pkt_type != 0", "skb->protocol >= 0x0800",
                                 "skb->users.refs.counter > 1"}) {
            TraceOptions opts;
            opts.backend = b;
            opts.pcap_expr = "tcp and dst port 80";
            opts.filter_skb_expr = expr;
            opts.output_skb_metadata = {"skb->mark", "skb->dev->ifindex", "skb->pkt_type",
                                        "skb->sk->__sk_common.skc_family"};
            opts.trace_xdp = true;  // the XDP members apply to its events
            opts.output_bpfmap = true;
            opts.track_bpf_helpers = true;
            opts.track_skb_by_stackid = true;
            opts.output_xdp_metadata = {"xdp->rxq->dev->ifindex", "xdp->rxq->queue_index"};
            opts.filter_xdp_expr = "xdp->rxq->queue_index == 0";
            opts.output_skb = true;
            opts.output_shinfo = true;
            opts.dump_bytes = PWRU_DUMP_MAX;  // --set-percpu-buf's largest
            opts.output_pcap = true;
            opts.ringbuf_bytes = 1 << 16;
            auto s = Session::create_unprobed(opts);
            if (!s) INFO(s.error().message());
            REQUIRE(s);
            CHECK((*s)->plan().skb_fields.size() == 4);
            CHECK((*s)->plan().skb_expr.op != 0);
            auto loaded = (*s)->load();
            INFO("backend " << backend_name(b) << ", --filter-skb-expr '" << expr << "'");
            if (!loaded) INFO(loaded.error().message() << "\n" << loaded.error().context);
            REQUIRE(loaded);
        }
    }
}

// --filter-track-skb on the kprobe backends loads the clone-following pair
// (kprobe at skb_clone & co.'s entry, kretprobe at their return); without the
// option, or on the tracepoint backend, they stay out of the kernel.
TEST_CASE("--filter-track-skb loads the clone-following programs on kprobe backends", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    for (Backend b : {Backend::KprobeMulti, Backend::Kprobe, Backend::Tracepoint}) {
        for (bool track : {false, true}) {
            for (const char* f : {"", "tcp and dst port 80"}) {
                TraceOptions opts;
                opts.backend = b;
                opts.pcap_expr = f;
                opts.track_skb = track;
                opts.ringbuf_bytes = 1 << 16;
                auto s = Session::create_unprobed(opts);
                REQUIRE(s);
                auto loaded = (*s)->load();
                INFO("backend " << backend_name(b) << ", track " << track << ", filter '" << f << "'");
                if (!loaded) INFO(loaded.error().message() << "\n" << loaded.error().context);
                REQUIRE(loaded);
                bool expect = track && b != Backend::Tracepoint;
                CHECK(((*s)->program_fd("kprobe_skb_clone_entry") >= 0) == expect);
                CHECK(((*s)->program_fd("kretprobe_skb_clone") >= 0) == expect);
                CHECK(((*s)->program_fd("kprobe_veth_rcv_entry") >= 0) == expect);
                CHECK(((*s)->program_fd("kretprobe_veth_rcv") >= 0) == expect);
            }
        }
    }
}

TEST_CASE("the auto backend on this kernel is the tracepoint one, explained", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    Features f = probe_features();
    std::string why;
    Backend b = choose_backend(f, why);
    if (f.kprobe_multi.available || f.kprobe.available) {
        WARN("this kernel attaches kprobes: auto chose " << backend_name(b));
        CHECK(b != Backend::Tracepoint);
    } else {
        CHECK(b == Backend::Tracepoint);
        CHECK(why.find("kprobes are unavailable") != std::string::npos);
    }
    CHECK(f.tp_btf.available);
}

TEST_CASE("--no-feature forces the fallback", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    Features f = probe_features({"kprobe_multi", "kprobe"});
    CHECK_FALSE(f.kprobe_multi.available);
    CHECK(f.kprobe_multi.why.find("--no-feature") != std::string::npos);
    std::string why;
    CHECK(choose_backend(f, why) == Backend::Tracepoint);
}

TEST_CASE("features are probed once per process; --no-feature still applies per call", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    Features first = probe_features();
    Features masked = probe_features({"tp_btf"});
    Features again = probe_features();
    CHECK(kernel_feature_probes() == 1);
    CHECK_FALSE(masked.tp_btf.available);
    CHECK(again.tp_btf.available == first.tp_btf.available);
    CHECK(again.kprobe.available == first.kprobe.available);
    // Sessions ask too (pwru-agent starts one per trace): still one probe.
    TraceOptions opts;
    opts.backend = Backend::Tracepoint;
    auto s = Session::create(opts);
    REQUIRE(s);
    CHECK(kernel_feature_probes() == 1);
}

TEST_CASE("an explicit backend that cannot attach is a clear error", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    TraceOptions opts;
    opts.backend = Backend::KprobeMulti;
    opts.no_features = {"kprobe_multi"};
    auto s = Session::create(opts);
    REQUIRE_FALSE(s);
    CHECK(s.error().what.find("kprobe-multi is not available") != std::string::npos);
    CHECK(s.error().what.find("--backend auto") != std::string::npos);
}

TEST_CASE("the filter harness runs the injected filter on real skbs", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    // Ethernet + IPv4 + TCP SYN 10.0.0.1:1234 -> 10.0.0.2:80
    std::vector<uint8_t> pkt = {
        0,    1,    2, 3,  4, 5, 6,    7, 8,  9, 10, 11, 0x08, 0x00,                         // eth
        0x45, 0,    0, 40, 0, 1, 0x40, 0, 64, 6, 0,  0,  10,   0,    0,    1, 10, 0, 0, 2,   // ipv4
        0x04, 0xd2, 0, 80, 0, 0, 0,    1, 0,  0, 0,  0,  0x50, 0x02, 0x20, 0, 0,  0, 0, 0};  // tcp
    auto yes = FilterHarness::create("tcp and dst port 80", false);
    REQUIRE(yes);
    CHECK(*(*yes)->run(pkt.data(), pkt.size()) == true);
    auto no = FilterHarness::create("tcp and dst port 81", false);
    REQUIRE(no);
    CHECK(*(*no)->run(pkt.data(), pkt.size()) == false);
    auto l3 = FilterHarness::create("src host 10.0.0.1 and tcp[13] = 2", true);
    REQUIRE(l3);
    CHECK(*(*l3)->run(pkt.data() + 14, pkt.size() - 14) == true);
    auto bad = FilterHarness::create("tcp port", false);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind == pwru::ErrorKind::BadInput);
    CHECK(bad.error().what.find("syntax error") != std::string::npos);
}
