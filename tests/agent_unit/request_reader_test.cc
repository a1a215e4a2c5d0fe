// The request reader's steps over bytes, as a connection takes them.
#include "agent/request_reader.h"

#include <catch2/catch.hpp>
#include <string>

using namespace pwru::agent;
using Catch::Matchers::Contains;

namespace {
HttpLimits small() {
    HttpLimits l;
    l.head_bytes = 1024;
    l.target_bytes = 100;
    l.body_bytes = 64;
    return l;
}
}  // namespace

TEST_CASE("request reader: a complete POST with its body, a GET, pipelining leaves the rest", "[agent_unit]") {
    auto p = parse_request_bytes(
        "POST /v1/trace?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
        "Authorization: Bearer t\r\n\r\n{}",
        small());
    CHECK_FALSE(p.refused);
    REQUIRE(p.head);
    CHECK(p.complete);
    CHECK(p.head->path == "/v1/trace");
    CHECK(p.head->method == "POST");
    CHECK(p.head->has_body);
    CHECK(p.head->authorization == "Bearer t");
    CHECK(p.body == "{}");
    auto g = parse_request_bytes("GET /healthz HTTP/1.0\r\n\r\nGET /x HTTP/1.1\r\n\r\n", small());
    REQUIRE(g.head);
    CHECK(g.complete);
    CHECK(g.head->version == 10);
    CHECK_FALSE(g.head->keep_alive);
    CHECK_FALSE(g.head->has_body);
}

TEST_CASE("request reader: each bound has its status and one-line message", "[agent_unit]") {
    auto big_head = parse_request_bytes("GET / HTTP/1.1\r\nX: " + std::string(2000, 'a') + "\r\n\r\n", small());
    REQUIRE(big_head.refused);
    CHECK(big_head.refused->status == 431);
    CHECK_THAT(big_head.refused->message, Contains("1024 bytes"));

    auto long_target = parse_request_bytes("GET /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n", small());
    REQUIRE(long_target.refused);
    CHECK(long_target.refused->status == 414);

    auto declared = parse_request_bytes("POST /v1/trace HTTP/1.1\r\nContent-Length: 65\r\n\r\n", small());
    REQUIRE(declared.refused);
    CHECK(declared.refused->status == 413);

    std::string chunks = "POST /v1/trace HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 10; ++i) chunks += "10\r\n" + std::string(16, 'x') + "\r\n";
    auto chunked = parse_request_bytes(chunks + "0\r\n\r\n", small());
    REQUIRE(chunked.refused);
    CHECK(chunked.refused->status == 413);

    auto brew = parse_request_bytes("BREW /healthz HTTP/1.1\r\n\r\n", small());
    REQUIRE(brew.refused);
    CHECK(brew.refused->status == 400);
    CHECK_THAT(brew.refused->message, Contains("malformed"));

    auto garbage = parse_request_bytes("\x16\x03\x01 not http\r\n\r\n", small());
    REQUIRE(garbage.refused);
    CHECK(garbage.refused->status == 400);
}

TEST_CASE("request reader: bytes that end early are incomplete, not refused", "[agent_unit]") {
    auto head_only = parse_request_bytes("GET /healthz HTTP/1.1\r\nHost:", small());
    CHECK_FALSE(head_only.complete);
    CHECK_FALSE(head_only.refused);
    CHECK_FALSE(head_only.head);
    auto nothing = parse_request_bytes("", small());
    CHECK_FALSE(nothing.refused);
    CHECK_FALSE(nothing.head);
    auto short_body = parse_request_bytes("POST /v1/trace HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}", small());
    REQUIRE(short_body.head);
    CHECK_FALSE(short_body.complete);
}
