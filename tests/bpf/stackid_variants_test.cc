// --filter-track-skb-by-stackid and --filter-non-skb-funcs change what every
// probe program does (the call-context maps) and add one program (the
// non-skb kprobe): all of them pass this kernel's verifier, on every
// backend, with and without a pcap filter and --filter-track-skb.
#include <catch2/catch.hpp>

#include "support/root_guard.h"
#include "tracer/session.h"

using namespace pwru;

TEST_CASE("programs tracking by call context pass the verifier on every backend", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    for (Backend b : {Backend::KprobeMulti, Backend::Kprobe, Backend::Tracepoint}) {
        for (const char* expr : {"", "tcp and dst port 80"}) {
            for (bool track_skb : {false, true}) {
                TraceOptions opts;
                opts.backend = b;
                opts.pcap_expr = expr;
                opts.ringbuf_bytes = 1 << 16;
                opts.track_skb = track_skb;
                opts.track_skb_by_stackid = true;
                // The non-skb program exists for the kprobe backends only.
                if (b != Backend::Tracepoint) opts.non_skb_funcs = {"nft_do_chain"};
                auto s = Session::create_unprobed(opts);
                if (!s) INFO(s.error().message());
                REQUIRE(s);
                auto loaded = (*s)->load();
                INFO("backend " << backend_name(b) << ", filter '" << expr << "', track-skb " << track_skb);
                if (!loaded) INFO(loaded.error().message() << "\n" << loaded.error().context);
                CHECK(loaded);
            }
        }
    }
}

TEST_CASE("--filter-non-skb-funcs on the tracepoint backend is refused with a reason", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    TraceOptions opts;
    opts.backend = Backend::Tracepoint;
    opts.ringbuf_bytes = 1 << 16;
    opts.track_skb_by_stackid = true;
    opts.non_skb_funcs = {"nft_do_chain"};
    auto s = Session::create_unprobed(opts);
    REQUIRE(s);
    REQUIRE((*s)->load());
    auto st = (*s)->attach_non_skb_funcs();
    REQUIRE_FALSE(st);
    CHECK(st.error().what ==
          "--filter-non-skb-funcs needs kprobes, which this kernel lacks (tracing its tracepoints instead)");
}
