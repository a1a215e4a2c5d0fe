// The line a declined pods/portforward upgrade gets: the status, the reason in
// whatever body the API server (or a proxy in front of it) sent, and the next
// step for that status.
#include <catch2/catch.hpp>

#include "kubectl-plugin/port_forward_refusal.h"

using pwru::plugin::DeclinedUpgrade;
using pwru::plugin::port_forward_refusal;

namespace {

DeclinedUpgrade declined(unsigned status, std::string phrase, std::string body) {
    return {"pwru", "pwru-agent-a", 4443, status, std::move(phrase), std::move(body), "prod"};
}

}  // namespace

TEST_CASE("port-forward refusal: a Status object's message is the reason", "[portforward]") {
    auto line = port_forward_refusal(declined(
        404, "Not Found",
        R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"pwru-agent-a\" not found","reason":"NotFound","code":404})"));
    CHECK(
        line ==
        "port-forward to pwru/pwru-agent-a:4443 declined by the API server: HTTP 404 Not Found: pods \"pwru-agent-a\" "
        "not found; the agent pod is gone or in another namespace; check --agent-namespace and kubectl get pods -n "
        "pwru");
}

TEST_CASE("port-forward refusal: a Status without a message gives its reason; 401 names the context", "[portforward]") {
    auto line = port_forward_refusal(declined(401, "Unauthorized", R"({"kind":"Status","reason":"Unauthorized"})"));
    CHECK(line ==
          "port-forward to pwru/pwru-agent-a:4443 declined by the API server: HTTP 401 Unauthorized: Unauthorized; the "
          "credentials of context 'prod' were refused; renew them (kubectl get pods -n pwru tells the same)");
}

TEST_CASE("port-forward refusal: a plain or HTML body is cut to its first line, bounded; no body, no reason",
          "[portforward]") {
    std::string html = "\n<html><head><title>502 Bad Gateway</title></head>" + std::string(400, 'x') + "\nmore\n";
    auto line = port_forward_refusal(declined(502, "Bad Gateway", html));
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find(": <html><head><title>502 Bad Gateway</title></head>xxx") != std::string::npos);
    CHECK(line.find("...; the API server (or a proxy in front of it) would not open the tunnel; use --direct") !=
          std::string::npos);
    CHECK(line.find("more") == std::string::npos);

    CHECK(
        port_forward_refusal(declined(400, "Bad Request", "")) ==
        "port-forward to pwru/pwru-agent-a:4443 declined by the API server: HTTP 400 Bad Request; the API server (or a "
        "proxy in front of it) would not open the tunnel; use --direct to reach the agents at their pod addresses");
}

TEST_CASE("port-forward refusal: a multi-line Status message stays one line", "[portforward]") {
    auto line = port_forward_refusal(declined(500, "Internal Server Error", R"({"message":"first\nsecond"})"));
    CHECK(line.find("HTTP 500 Internal Server Error: first second; ") != std::string::npos);
}
