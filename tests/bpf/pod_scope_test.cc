// pwru-agent's pod scope (bpf/skb_scope.bpf.h): every backend's programs
// still pass the verifier with it, and bad scopes are refused before load.
// That it selects the right packets is proven end to end in tests/cri.
#include <catch2/catch.hpp>

#include "support/root_guard.h"
#include "tracer/session.h"

using namespace pwru;
using Catch::Matchers::Contains;

TEST_CASE("pod-scoped programs pass the verifier on every backend", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    for (Backend b : {Backend::KprobeMulti, Backend::Kprobe, Backend::Tracepoint}) {
        for (const char* filter : {"", "udp or icmp"}) {
            TraceOptions opts;
            opts.backend = b;
            opts.pcap_expr = filter;
            opts.ringbuf_bytes = 1 << 16;
            opts.track_skb = true;  // as the agent sets it
            opts.pod_scope = PodScope{4026532000u, {"10.197.3.4", "fd00::3:4", "192.168.7.9", "10.1.2.3"}};
            auto s = Session::create_unprobed(opts);
            REQUIRE(s);
            auto loaded = (*s)->load();
            INFO("backend " << backend_name(b) << ", filter '" << filter << "'");
            if (!loaded) INFO(loaded.error().message() << "\n" << loaded.error().context);
            REQUIRE(loaded);
        }
    }
}

TEST_CASE("a bad pod scope is refused as bad input", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    struct Bad {
        PodScope scope;
        const char* reason;
    };
    for (const auto& bad :
         {Bad{{1, {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"}}, "at most 4"},
          Bad{{1, {"10.0.0.300"}}, "not an IPv4 or IPv6 address"}, Bad{{0, {}}, "needs a netns, an address or a port"},
          Bad{{0, {}, std::vector<ScopePort>(9, ScopePort{80, 6})}, "at most 8 ports"}}) {
        TraceOptions opts;
        opts.backend = Backend::Tracepoint;
        opts.ringbuf_bytes = 1 << 16;
        opts.pod_scope = bad.scope;
        auto s = Session::create_unprobed(opts);
        REQUIRE(s);
        auto loaded = (*s)->load();
        REQUIRE_FALSE(loaded);
        CHECK(loaded.error().kind == pwru::ErrorKind::BadInput);
        CHECK_THAT(loaded.error().what, Contains(bad.reason));
    }
}
