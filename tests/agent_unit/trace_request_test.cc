// POST /v1/trace bodies: what is accepted, and the one-line reason for what is not.
#include <catch2/catch.hpp>

#include "agent/trace_request.h"

using namespace pwru::agent;
using Catch::Matchers::Contains;

namespace {
RequestLimits limits{60, 1000};

// A body the parser must refuse as the user's fault, with a one-line reason.
struct RefusedCase {
    std::string body;
    const char* reason;  // a part of the message
};

void check_refused(const std::vector<RefusedCase>& cases) {
    for (const auto& c : cases) {
        INFO(c.body);
        auto r = parse_trace_request(c.body, limits);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == pwru::ErrorKind::BadInput);
        CHECK_THAT(r.error().what, Contains(c.reason));
        CHECK(r.error().what.find('\n') == std::string::npos);
    }
}
}  // namespace

TEST_CASE("a pod trace request is parsed with pwru's own flag parser", "[unit][agent]") {
    auto r = parse_trace_request(
        R"({"namespace":"shop","pod":"web-0","filter":"tcp and port 80",
            "args":["--output-stack","--filter-track-skb","--filter-mark","0x1/0xff","--backend","tracepoint"],
            "max_duration_s":5,"max_events":10,"bearer_token":"t0k"})",
        limits);
    REQUIRE(r);
    CHECK(r->ns == "shop");
    CHECK(r->pod == "web-0");
    CHECK_FALSE(r->node_wide);
    CHECK(r->cli.trace.pcap_expr == "tcp and port 80");
    CHECK(r->cli.trace.output_stack);
    CHECK(r->cli.trace.track_skb);
    CHECK(r->cli.filter_mark == "0x1/0xff");
    CHECK(r->cli.trace.backend == pwru::Backend::Tracepoint);
    CHECK(r->max_duration_s == 5);
    CHECK(r->max_events == 10);
    CHECK(r->bearer_token == "t0k");
}

TEST_CASE("absent or zero limits take the agent's ceiling; above it is refused", "[unit][agent]") {
    auto r = parse_trace_request(R"({"namespace":"a","pod":"b","max_events":0})", limits);
    REQUIRE(r);
    CHECK(r->max_duration_s == 60);
    CHECK(r->max_events == 1000);
    auto over = parse_trace_request(R"({"namespace":"a","pod":"b","max_duration_s":61})", limits);
    REQUIRE_FALSE(over);
    CHECK_THAT(over.error().what, Contains("max_duration_s") && Contains("limit of 60"));
    auto limited = parse_trace_request(R"({"namespace":"a","pod":"b","args":["--output-limit-lines","7"]})", limits);
    REQUIRE(limited);
    CHECK(limited->max_events == 7);
}

TEST_CASE("node-wide requests: node true or no pod", "[unit][agent]") {
    auto a = parse_trace_request(R"({"node":true,"filter":"icmp"})", limits);
    REQUIRE(a);
    CHECK(a->node_wide);
    auto b = parse_trace_request(R"({"namespace":"x"})", limits);
    REQUIRE(b);
    CHECK(b->node_wide);
    auto both = parse_trace_request(R"({"node":true,"namespace":"x","pod":"y"})", limits);
    REQUIRE_FALSE(both);
    CHECK_THAT(both.error().what, Contains("leave \"pod\" empty"));
}

TEST_CASE("bad request bodies get a reason naming the field or flag", "[unit][agent]") {
    const std::vector<RefusedCase> cases = {
        {R"({"namespace":"a",)", "not valid JSON"},
        {R"([1,2])", "must be a JSON object"},
        {R"({"namespace":"a","pod":"b","colour":"red"})", "unknown field \"colour\""},
        {R"({"pod":"b"})", "missing \"namespace\""},
        {R"({"namespace":1,"pod":"b"})", "\"namespace\" must be a string"},
        {R"({"namespace":"a","pod":"b","args":"--output-stack"})", "\"args\" must be an array"},
        {R"({"namespace":"a","pod":"b","args":["--no-such-flag"]})", "--no-such-flag"},
        {R"({"namespace":"a","pod":"b","args":["--output-file","/etc/x"]})", "--output-file is not accepted"},
        {R"({"namespace":"a","pod":"b","args":["--filter-netns=inode:1"]})", "--filter-netns is not accepted"},
        {R"({"namespace":"a","pod":"b","args":["--filter-ifname","eth0"]})", "--filter-ifname is not accepted"},
        {R"({"namespace":"a","pod":"b","args":["--ready-file","/x"]})", "--ready-file is not accepted"},
        {R"({"namespace":"a","pod":"b","args":["tcp"]})", "put it in \"filter\""},
        {R"({"namespace":"a","pod":"b","max_events":-1})", "\"max_events\" must be >= 0"},
        {R"({"namespace":"a","pod":"b","node":"yes"})", "\"node\" must be true or false"},
    };
    check_refused(cases);
}

TEST_CASE("hostile request values are refused exactly: names, control characters, counts, dropped flags",
          "[unit][agent]") {
    const std::string long_ns(64, 'a');
    const std::string long_pod(254, 'a');
    const std::vector<RefusedCase> cases = {
        {R"({"namespace":"default","pod":"a","filter":"icmp\u0000 and tcp"})",
         "\"filter\" holds a control character (byte 4)"},
        {R"({"namespace":"default","pod":"a","filter":"icmp\n"})", "control character"},
        {R"({"namespace":"Default","pod":"a"})", "\"namespace\" is not a Kubernetes name"},
        {R"({"namespace":"a.b","pod":"a"})", "\"namespace\" is not a Kubernetes name"},
        {R"({"namespace":"default","pod":"a\nforged log line"})", "\"pod\" is not a Kubernetes name"},
        {R"({"namespace":"default","pod":"-a"})", "\"pod\" is not a Kubernetes name"},
        {R"({"namespace":"default","pod":"a..b"})", "\"pod\" is not a Kubernetes name"},
        {R"({"namespace":")" + long_ns + R"(","pod":"a"})", "\"namespace\" is longer than 63"},
        {R"({"namespace":"default","pod":")" + long_pod + R"("})", "\"pod\" is longer than 253"},
        {R"({"namespace":"x\u0000"})", "\"namespace\" is not a Kubernetes name"},
        {R"({"namespace":"default","pod":"a","max_events":0.5})", "\"max_events\" must be >= 0 and a whole number"},
        {R"({"namespace":"default","pod":"a","max_events":-3})", "\"max_events\" must be >= 0"},
        {R"({"namespace":"default","pod":"a","args":["--filter-non-skb-funcs","ip_rcv"]})",
         "--filter-non-skb-funcs is not accepted"},
        {R"({"namespace":"default","pod":"a","args":["--filter-track-bpf-helpers"]})",
         "--filter-track-bpf-helpers is not accepted"},
        {R"({"namespace":"default","pod":"a","args":["--output-bpfmap"]})", "--output-bpfmap is not accepted"},
        {R"({"namespace":"default","pod":"a","args":["--filter-trace-tc"]})", "--filter-trace-tc is not accepted"},
        {R"({"namespace":"default","pod":"a","args":["--filter-trace-xdp"]})", "--filter-trace-xdp is not accepted"},
        {R"({"namespace":"default","pod":"a","args":["--output-xdp-metadata","xdp->rxq->queue_index"]})",
         "--output-xdp-metadata is not accepted"},
    };
    check_refused(cases);
    // pwru's skb member flags work in the agent (its events carry skb_fields)
    auto members = parse_trace_request(
        R"({"namespace":"default","pod":"a","args":["--filter-skb-expr","skb->len > 100","--output-skb-metadata",)"
        R"("skb->mark"]})",
        limits);
    REQUIRE(members);
    CHECK(members->cli.trace.filter_skb_expr == "skb->len > 100");
    CHECK(members->cli.trace.output_skb_metadata == std::vector<std::string>{"skb->mark"});
    // What Kubernetes accepts still passes.
    auto ok = parse_trace_request(R"({"namespace":"kube-system","pod":"coredns-5d78c9869d-x2x4q.v1","max_events":5})",
                                  limits);
    REQUIRE(ok);
    CHECK(ok->max_events == 5);
    auto dns = parse_trace_request(std::string(R"({"namespace":")") + std::string(63, 'a') + R"(","pod":"p"})", limits);
    CHECK(dns);
}

TEST_CASE("a client's text quoted in an error is escaped: the error stays one line", "[unit][agent]") {
    check_refused({
        {R"({"max_ev\nts": 1})", "unknown field \"max_ev\\nts\""},
        {R"({"namespace":"default","pod":"p","args":["--output-tuple\n--x"]})", "bad \"args\""},
    });
}

TEST_CASE("a body nested deeper than a request can be is refused without being built", "[unit][agent]") {
    check_refused({
        {std::string(60000, '['), "nests deeper than 8 levels"},
        {R"({"namespace":"default","pod":"p","args":[[[[[[[["x"]]]]]]]]})", "nests deeper than 8 levels"},
        {R"({"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{}}}}}}}}})", "nests deeper than 8 levels"},
    });
    // Seven levels is not too deep for the parser: the field checks answer.
    auto shallow = parse_trace_request(R"({"namespace":"default","pod":"p","args":[[[[[["x"]]]]]]})", limits);
    REQUIRE_FALSE(shallow);
    CHECK_THAT(shallow.error().what, !Contains("nests deeper"));
}
