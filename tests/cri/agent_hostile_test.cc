// pwru-agent against hostile clients (issue #23): bodies, names, ports and
// the HTTP layer's own answers. No pods needed: every request here is refused
// before the runtime would be asked, so the agent points at no CRI socket.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <future>
#include <string>
#include <thread>

#include <httplib.h>

#include "cri/agent_harness.h"
#include "support/netns_fixture.h"
#include "support/test_certs.h"

using namespace pwru::test;
using Catch::Matchers::Contains;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<httplib::SSLClient> client(int port, const AgentCerts& certs, const CertFiles& who) {
    ::signal(SIGPIPE, SIG_IGN);
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port, who.cert, who.key);
    c->set_ca_cert_path(certs.ca.cert_path().c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(10);
    c->set_read_timeout(30);
    c->set_write_timeout(30);
    return c;
}

}  // namespace

TEST_CASE(
    "pwru-agent: a 10 MB body is refused with 413 before it is read, a client without rights with 403 "
    "before it is parsed, and the agent's memory does not grow",
    "[cri][agent]") {
    AgentCerts certs;
    const CertFiles carol = certs.ca.issue("carol", {"DNS:carol.example"});  // in no grant of the authz file
    AgentProcess agent(certs.agent_args(kNoCri));
    REQUIRE(get(agent.port(), certs.ca.cert_path(), &certs.alice, "/healthz").status == 200);
    const long rss_before = rss_kib(agent.pid());
    REQUIRE(rss_before > 0);

    const std::string big(10u << 20, '[');
    // Declared length above the limit: 413 from the headers alone.
    for (int round = 0; round < 4; ++round) {
        auto t0 = std::chrono::steady_clock::now();
        auto r = client(agent.port(), certs, certs.alice)->Post("/v1/trace", big, "application/json");
        INFO("client error: " << httplib::to_string(r.error()));
        REQUIRE(r);
        INFO(r->body);
        CHECK(r->status == 413);
        auto j = json::parse(r->body, nullptr, false);
        CHECK(j["status"] == 413);
        CHECK_THAT(j["error"].get<std::string>(), Contains("65536 bytes"));
        CHECK(seconds_since(t0) < 5);
    }
    // Chunked, so no length to judge by: refused once 64 KiB have come.
    {
        auto t0 = std::chrono::steady_clock::now();
        auto r = client(agent.port(), certs, certs.alice)
                     ->Post(
                         "/v1/trace",
                         [&](size_t offset, httplib::DataSink& sink) {
                             if (offset >= big.size()) {
                                 sink.done();
                                 return true;
                             }
                             return sink.write(big.data() + offset, 64 * 1024);
                         },
                         "application/json");
        REQUIRE(r);
        INFO(r->body);
        CHECK(r->status == 413);
        CHECK(json::parse(r->body, nullptr, false)["status"] == 413);
        CHECK(seconds_since(t0) < 5);
    }
    // Four at once, from a client holding no grant: 403, the body never
    // parsed (a parsed `[[[` would be a 400 "not valid JSON").
    // (Catch2 asserts on this thread only: the calls return what they got.)
    std::vector<std::future<std::pair<int, std::string>>> calls;
    for (int i = 0; i < 4; ++i)
        calls.push_back(std::async(std::launch::async, [&] {
            auto r = client(agent.port(), certs, carol)->Post("/v1/trace", big, "application/json");
            return r ? std::make_pair(r->status, r->body) : std::make_pair(-1, httplib::to_string(r.error()));
        }));
    for (auto& c : calls) {
        auto [status, body] = c.get();
        INFO(body);
        CHECK(status == 403);
        CHECK_THAT(body, Contains("carol.example"));
    }

    const long rss_after = rss_kib(agent.pid());
    INFO("RSS before " << rss_before << " KiB, after " << rss_after << " KiB");
    CHECK(rss_after - rss_before < 16 * 1024);  // unbounded, it grew by ~700 MB per such body
    CHECK(agent.child().running());
    CHECK_THAT(get(agent.port(), certs.ca.cert_path(), &certs.alice, "/metrics").body,
               Contains("pwru_agent_sessions_active 0\n"));
    // The refusal is logged with who asked.
    CHECK_THAT(agent.child().stderr_text(), Contains("carol.example"));
}

TEST_CASE("pwru-agent: a second agent on a port already taken fails to start with one line", "[cri][agent]") {
    AgentCerts certs;
    AgentProcess first(certs.agent_args(kNoCri));
    const std::string listen = "127.0.0.1:" + std::to_string(first.port());
    auto args = certs.agent_args(kNoCri);
    args.insert(args.begin(), {PWRU_AGENT_BIN, "--listen", listen});
    auto second = run_command(args, 30s);
    INFO(second.err);
    CHECK_FALSE(second.timed_out);  // with SO_REUSEPORT it bound and served
    CHECK(second.exit_code == 1);
    CHECK_THAT(second.err, Contains("cannot listen on " + listen) && Contains("--listen"));
    CHECK(std::count(second.err.begin(), second.err.end(), '\n') <= 2);  // start-up info line at most, and the error
    CHECK(first.child().running());
}

TEST_CASE("pwru-agent: the HTTP layer's own refusals carry the JSON error body; HTTP/1.0 gets no chunks",
          "[cri][agent]") {
    AgentCerts certs;
    AgentProcess agent(kernel_scope_args(certs));
    const std::string& ca = certs.ca.cert_path();
    auto check_json = [](int status, const std::string& body, int want, const std::string& says) {
        INFO(status << " " << body);
        CHECK(status == want);
        auto j = json::parse(body, nullptr, false);
        REQUIRE(j.is_object());
        CHECK(j["status"] == want);
        CHECK_THAT(j["error"].get<std::string>(), Contains(says));
    };
    auto nope = get(agent.port(), ca, &certs.alice, "/nope");
    check_json(nope.status, nope.body, 404, "/nope");
    auto wrong_method = get(agent.port(), ca, &certs.alice, "/v1/trace");
    check_json(wrong_method.status, wrong_method.body, 405, "POST");
    {
        auto c = client(agent.port(), certs, certs.alice);
        auto r = c->Post("/elsewhere", std::string(10u << 20, 'x'), "text/plain");  // not read: 404 at once
        INFO("client error: " << httplib::to_string(r.error()));
        REQUIRE(r);
        check_json(r->status, r->body, 404, "/elsewhere");
        auto long_line = c->Get(("/" + std::string(9000, 'a')).c_str());
        REQUIRE(long_line);
        check_json(long_line->status, long_line->body, 414, "too long");
    }
    {
        // A method the parser does not know: its own 400.
        std::string reply =
            tls_exchange(agent.port(), certs, certs.alice, "BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 10s);
        auto split = reply.find("\r\n\r\n");
        REQUIRE(split != std::string::npos);
        INFO(reply);
        CHECK(reply.rfind("HTTP/1.1 400", 0) == 0);
        check_json(400, reply.substr(split + 4), 400, "malformed");
    }
    {
        // HTTP/1.0: a real node trace, streamed without chunks until the close.
        const std::string body = R"({"node": true, "filter": "icmp", "max_duration_s": 1})";
        std::string reply = tls_exchange(agent.port(), certs, certs.alice,
                                         "POST /v1/trace HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n"
                                         "Content-Length: " +
                                             std::to_string(body.size()) + "\r\n\r\n" + body,
                                         60s);
        INFO(reply);
        auto split = reply.find("\r\n\r\n");
        REQUIRE(split != std::string::npos);
        const std::string head = reply.substr(0, split);
        CHECK(head.rfind("HTTP/1.1 200", 0) == 0);
        CHECK_THAT(head, !Contains("chunked"));
        std::istringstream lines(reply.substr(split + 4));
        std::vector<json> records;
        for (std::string l; std::getline(lines, l);) records.push_back(json::parse(l, nullptr, false));
        REQUIRE(records.size() >= 2);
        CHECK(records.front()["type"] == "start");
        CHECK(records.back()["type"] == "summary");
    }
    {
        // A filter test that can never be true: traced as pwru does, and said
        // once in the start record.
        auto r = post_trace(agent.port(), ca, &certs.alice,
                            json{{"node", true}, {"filter", "ip proto 999"}, {"max_duration_s", 1}});
        INFO(r.status << " " << r.transport << " " << r.body.substr(0, 500));
        REQUIRE(r.status == 200);
        auto start = of_type(r, "start");
        REQUIRE(start.size() == 1);
        REQUIRE(start[0].contains("warning"));
        CHECK_THAT(start[0]["warning"].get<std::string>(), Contains("filter: ") && Contains("999"));
        CHECK(of_type(r, "summary").size() == 1);
    }
    CHECK(agent.child().running());
}

TEST_CASE("pwru-agent: at its open-file limit a trace is a 500 naming the limit (no --debug), and works once raised",
          "[cri][agent]") {
    AgentCerts certs;
    AgentProcess agent(kernel_scope_args(certs));
    const std::string& ca = certs.ca.cert_path();
    rlimit before{};
    REQUIRE(::prlimit(agent.pid(), RLIMIT_NOFILE, nullptr, &before) == 0);
    const auto open_fds = static_cast<rlim_t>(fd_count(agent.pid()));
    // A dozen more than it holds: its TLS connection fits, the probe programs do not.
    rlimit tight{open_fds + 12, before.rlim_max};
    REQUIRE(::prlimit(agent.pid(), RLIMIT_NOFILE, &tight, nullptr) == 0);
    const json req = {{"node", true}, {"filter", "icmp"}, {"max_duration_s", 1}};
    auto r = post_trace(agent.port(), ca, &certs.alice, req);
    INFO(r.status << " " << r.transport << " " << r.body.substr(0, 600));
    CHECK(r.status == 500);
    const std::string said = r.json().value("error", "");
    CHECK_THAT(said, Contains("open-file limit") && Contains("RLIMIT_NOFILE"));
    CHECK_THAT(said, !Contains("--debug"));
    REQUIRE(::prlimit(agent.pid(), RLIMIT_NOFILE, &before, nullptr) == 0);
    auto again = post_trace(agent.port(), ca, &certs.alice, req);
    INFO(again.status << " " << again.body.substr(0, 300));
    CHECK(again.status == 200);
    CHECK(of_type(again, "summary").size() == 1);
    CHECK(agent.child().running());
}
