// The authz file: identities (CN, SAN) to namespaces and the node right.
#include <catch2/catch.hpp>

#include "agent/authz.h"

using namespace pwru::agent;
using Catch::Matchers::Contains;

TEST_CASE("grants match any of the certificate's names", "[unit][agent]") {
    auto a = Authz::parse(R"({"clients":[
        {"identity":"alice","namespaces":["default","shop"]},
        {"identity":"spiffe://test/ops","namespaces":["*"],"node":true},
        {"identity":"bob.example.com","namespaces":["other"]}]})");
    REQUIRE(a);
    ClientIdentity alice{{"alice"}};
    ClientIdentity ops{{"ops-cn", "ops.example.com", "spiffe://test/ops"}};
    ClientIdentity bob{{"bob", "bob.example.com"}};
    ClientIdentity nobody{{"mallory"}};
    CHECK(a->may_trace_namespace(alice, "default"));
    CHECK(a->may_trace_namespace(alice, "shop"));
    CHECK_FALSE(a->may_trace_namespace(alice, "kube-system"));
    CHECK_FALSE(a->may_trace_node(alice));
    CHECK(a->may_trace_namespace(ops, "kube-system"));
    CHECK(a->may_trace_node(ops));
    CHECK(a->may_trace_namespace(bob, "other"));
    CHECK_FALSE(a->may_trace_namespace(bob, "default"));
    CHECK_FALSE(a->may_trace_namespace(nobody, "default"));
    CHECK_FALSE(a->may_trace_namespace(ClientIdentity{}, "default"));
    CHECK(ops.display() == "ops-cn, ops.example.com, spiffe://test/ops");
}

TEST_CASE("a bad authz file says what is wrong where", "[unit][agent]") {
    CHECK_THAT(Authz::parse("{").error().what, Contains("not valid JSON"));
    CHECK_THAT(Authz::parse(R"({"users":[]})").error().what, Contains("\"clients\""));
    CHECK_THAT(Authz::parse(R"({"clients":[{"namespaces":["a"]}]})").error().what,
               Contains("clients[0] needs a non-empty \"identity\""));
    CHECK_THAT(Authz::parse(R"({"clients":[{"identity":"a","namespace":["a"]}]})").error().what,
               Contains("unknown key \"namespace\""));
    CHECK_THAT(Authz::parse(R"({"clients":[{"identity":"a","node":"yes"}]})").error().what,
               Contains("clients[0].node"));
    CHECK_THAT(Authz::load("/nonexistent/authz.json").error().what, Contains("--authz-config"));
}
