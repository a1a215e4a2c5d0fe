// Every backend's probe programs pass this kernel's verifier with the tunnel
// filters and --output-tunnel, alone and with an outer filter.
#include <catch2/catch.hpp>

#include "support/root_guard.h"
#include "tracer/session.h"

using namespace pwru;

TEST_CASE("tunnel filters and --output-tunnel pass the verifier on every backend", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    struct Variant {
        const char* outer;
        const char* tunnel_l2;
        const char* tunnel_l3;
        bool output_tunnel;
    };
    const Variant variants[] = {
        {"", "", "udp dst port 7001", false},
        {"", "ether src 02:00:00:00:00:01", "", true},
        {"udp port 4789", "not arp", "tcp[tcpflags] & tcp-syn != 0", true},
        {"", "", "", true},  // the inner tuple without any filter
        {"ip6 protochain 17", "", "ip6 protochain 6", false},
    };
    for (Backend b : {Backend::KprobeMulti, Backend::Kprobe, Backend::Tracepoint}) {
        for (const Variant& v : variants) {
            TraceOptions opts;
            opts.backend = b;
            opts.pcap_expr = v.outer;
            opts.tunnel_pcap_l2 = v.tunnel_l2;
            opts.tunnel_pcap_l3 = v.tunnel_l3;
            opts.output_tunnel = v.output_tunnel;
            opts.ringbuf_bytes = 1 << 16;
            INFO("backend " << backend_name(b) << ", outer '" << v.outer << "', tunnel '" << v.tunnel_l2 << "' / '"
                            << v.tunnel_l3 << "', output_tunnel " << v.output_tunnel);
            auto s = Session::create_unprobed(opts);
            if (!s) INFO(s.error().message());
            REQUIRE(s);
            auto loaded = (*s)->load();
            if (!loaded) INFO(loaded.error().message() << "\n" << loaded.error().context);
            CHECK(loaded);
        }
    }
}
