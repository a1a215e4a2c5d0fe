// --filter-trace-tc / --filter-trace-xdp on the user side: the flags, and the
// name an event of a traced tc / XDP program gets (pwru's
// "bpf_prog_<tag>_<func>(tc)"), in the text and the JSON output.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "tracer/cli_options.h"
#include "tracer/output/event_decoder.h"
#include "tracer/events/output_format.h"

using namespace pwru;

namespace {

Result<CliConfig> parse(std::vector<const char*> args) {
    args.insert(args.begin(), "pwru");
    return parse_cli(static_cast<int>(args.size()), args.data());
}

pwru_event event_of(uint32_t kind, uint32_t probe_id) {
    pwru_event ev{};
    ev.skb = 0xffff888100001000;
    ev.probe_kind = kind;
    ev.probe_id = probe_id;
    ev.stack_frames = -1;
    ev.meta.ifindex = 2;
    std::memcpy(ev.meta.ifname, "veth-b", 7);
    return ev;
}

}  // namespace

TEST_CASE("--filter-trace-tc and --filter-trace-xdp are off by default and parse", "[unit]") {
    auto d = parse({});
    REQUIRE(d);
    CHECK_FALSE(d->trace.trace_tc);
    CHECK_FALSE(d->trace.trace_xdp);
    CHECK_FALSE(d->output.skb_cb);

    auto c = parse({"--filter-trace-tc", "--filter-trace-xdp", "tcp"});
    REQUIRE(c);
    CHECK(c->trace.trace_tc);
    CHECK(c->trace.trace_xdp);
    // As pwru: tracing tc programs shows their __sk_buff->cb[].
    CHECK(c->output.skb_cb);
    CHECK(c->trace.output_skb_cb);

    auto x = parse({"--filter-trace-xdp"});
    REQUIRE(x);
    CHECK_FALSE(x->output.skb_cb);
}

TEST_CASE("an event of a traced tc or XDP program is named as pwru names it", "[unit]") {
    Plan plan;
    plan.bpf_programs.push_back({71, BpfProgKind::Tc, "cls_main", "bpf_prog_59f4a931744dcdc6_cls_main"});
    plan.bpf_programs.push_back({72, BpfProgKind::Xdp, "xdp_main", "bpf_prog_0123456789abcdef_xdp_main"});
    EventDecoder decoder(plan, nullptr, nullptr);

    EventRecord tc = decoder.decode(event_of(PWRU_PROBE_TC, 0));
    CHECK(tc.func == "bpf_prog_59f4a931744dcdc6_cls_main(tc)");
    EventRecord xdp = decoder.decode(event_of(PWRU_PROBE_XDP, 1));
    CHECK(xdp.func == "bpf_prog_0123456789abcdef_xdp_main(xdp)");

    OutputOptions text_opts;
    OutputFormatter text(text_opts);
    std::string line = text.format(tc);
    CHECK(line.size() > tc.func.size());
    CHECK(line.substr(line.size() - tc.func.size()) == tc.func);

    OutputOptions json_opts;
    json_opts.json = true;
    OutputFormatter json(json_opts);
    auto j = nlohmann::json::parse(json.format(xdp));
    CHECK(j["func"] == "bpf_prog_0123456789abcdef_xdp_main(xdp)");
    CHECK(j["iface"] == "veth-b:2");
}

TEST_CASE("--filter-non-skb-funcs takes a list and implies --filter-track-skb-by-stackid", "[unit]") {
    auto d = parse({});
    REQUIRE(d);
    CHECK_FALSE(d->trace.track_skb_by_stackid);
    CHECK(d->trace.non_skb_funcs.empty());

    auto s = parse({"--filter-track-skb-by-stackid"});
    REQUIRE(s);
    CHECK(s->trace.track_skb_by_stackid);
    CHECK(s->trace.non_skb_funcs.empty());

    auto n = parse({"--filter-non-skb-funcs", "nft_do_chain,ip_route_output_key_hash", "--filter-non-skb-funcs",
                    "tcp_connect", "tcp"});
    REQUIRE(n);
    CHECK(n->trace.track_skb_by_stackid);
    CHECK(n->trace.non_skb_funcs ==
          std::vector<std::string>{"nft_do_chain", "ip_route_output_key_hash", "tcp_connect"});
    CHECK(n->trace.pcap_expr == "tcp");
}

TEST_CASE("IPv4 tuple addresses are written as inet_ntop writes them", "[unit]") {
    Plan plan;
    EventDecoder decoder(plan, nullptr, nullptr);
    pwru_event ev = event_of(PWRU_PROBE_TC, 0);
    ev.flags |= PWRU_EV_HAS_TUPLE;
    ev.tuple.l3 = 4;
    for (const auto& [s, d] : {std::pair<uint32_t, uint32_t>{0x00000000u, 0xffffffffu},
                               {0x0a00010au, 0xc0a86401u},
                               {0x7f000001u, 0x01020304u},
                               {0x09630a64u, 0x6300c8ffu}}) {
        uint32_t sn = htonl(s), dn = htonl(d);
        std::memcpy(ev.tuple.saddr, &sn, 4);
        std::memcpy(ev.tuple.daddr, &dn, 4);
        char want_s[INET_ADDRSTRLEN], want_d[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &sn, want_s, sizeof(want_s));
        inet_ntop(AF_INET, &dn, want_d, sizeof(want_d));
        EventRecord r = decoder.decode(ev);
        CHECK(r.tuple.saddr == want_s);
        CHECK(r.tuple.daddr == want_d);
    }
}
