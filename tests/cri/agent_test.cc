// pwru-agent end to end: a real containerd with two pods on a CNI bridge,
// the real agent binary, an mTLS client. The pods are resolved by name
// through CRI, traced with the pod scope, and their events streamed back.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <thread>

#include <httplib.h>

#include "agent/cri_client.h"
#include "cri/agent_harness.h"
#include "cri/containerd_fixture.h"
#include "cri/pod_helpers.h"
#include "support/fake_kube_api.h"
#include "support/test_certs.h"
#include "support/test_files.h"

using namespace pwru::agent;
using namespace pwru::test;
using Catch::Matchers::Contains;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

using Certs = AgentCerts;

bool links_gone(pid_t agent, const std::set<uint32_t>& ids) {
    if (!bpf_links_held_by(agent).empty()) return false;
    for (uint32_t id : ids)
        if (kernel_has_link(id)) return false;
    return true;
}

}  // namespace

TEST_CASE("pwru-agent streams a pod's events over mTLS, scoped to that pod", "[cri][agent]") {
    REQUIRE_CONTAINERD();
    ContainerdFixture cd;
    cd.run_pod("default", "pod-a");
    cd.run_pod("default", "pod-b");
    auto cri = CriClient::connect(cd.socket());
    REQUIRE(cri);
    const PodView a = view(*cri, "default", "pod-a");
    const PodView b = view(*cri, "default", "pod-b");
    const std::string gateway = cd.pod_ip_prefix() + "1";

    Certs certs;
    AgentProcess agent(certs.agent_args(cd.socket()));
    const std::string& ca = certs.ca.cert_path();
    REQUIRE(get(agent.port(), ca, &certs.alice, "/healthz").status == 200);
    auto ready = get(agent.port(), ca, &certs.alice, "/readyz");
    CHECK(ready.status == 200);
    CHECK_THAT(ready.body, Contains("\"status\":\"ready\""));

    // Two concurrent sessions, one per pod, same filter: each sees only its pod.
    const json req_a = {{"namespace", "default"}, {"pod", "pod-a"}, {"filter", "udp or icmp"}, {"max_duration_s", 4}};
    json req_b = req_a;
    req_b["pod"] = "pod-b";
    TraceCall call_a(agent.port(), ca, certs.alice, req_a);
    TraceCall call_b(agent.port(), ca, certs.alice, req_b);
    REQUIRE(call_a.wait_started(60s));
    REQUIRE(call_b.wait_started(60s));
    send_udp(a.ip, 5);                    // node -> pod A
    send_udp(gateway, 3, a.netns_path);   // pod A -> node
    send_udp(b.ip, 5);                    // node -> pod B
    send_udp(gateway, 3, b.netns_path);   // pod B -> node
    HttpReply ra = call_a.result(60s);
    HttpReply rb = call_b.result(60s);

    for (auto* r : {&ra, &rb}) {
        const PodView& self = r == &ra ? a : b;
        const PodView& other = r == &ra ? b : a;
        const std::string pod = r == &ra ? "pod-a" : "pod-b";
        INFO(pod << " stream: " << r->body.substr(0, 2000));
        REQUIRE(r->status == 200);
        REQUIRE(r->lines.size() >= 3);
        const json& start = r->lines.front();
        CHECK(start["type"] == "start");
        CHECK(start["node"] == "test-node");
        CHECK(start["pod"] == pod);
        CHECK(start["netns"] == self.netns);
        CHECK(start["pod_ips"] == json({self.ip}));
        CHECK(start["host_network"] == false);
        CHECK(start["attached"].get<int>() > 0);
        const json& summary = r->lines.back();
        CHECK(summary["type"] == "summary");
        CHECK(summary["ended"] == "max_duration");

        auto events = of_type(*r, "event");
        CHECK(summary["events"] == events.size());
        REQUIRE(!events.empty());
        size_t in_pod = 0, outside = 0, to_pod = 0, from_pod = 0;
        for (const auto& e : events) {
            CHECK(e["node"] == "test-node");
            CHECK(e["namespace"] == "default");
            CHECK(e["pod"] == pod);
            CHECK(e["wall_ns"].get<int64_t>() > 1'600'000'000'000'000'000);
            CHECK(e["netns"] != other.netns);
            if (e.contains("tuple")) {
                CHECK(e["tuple"].value("saddr", "") != other.ip);
                CHECK(e["tuple"].value("daddr", "") != other.ip);
                to_pod += e["tuple"].value("daddr", "") == self.ip;
                from_pod += e["tuple"].value("saddr", "") == self.ip;
            }
            (e["netns"] == self.netns ? in_pod : outside)++;
        }
        // The whole trajectory: inside the pod's netns and on the node's side of the veth.
        CHECK(in_pod > 0);
        CHECK(outside > 0);
        CHECK(to_pod > 0);
        CHECK(from_pod > 0);

        // Heartbeats, and watermarks that hold: no event after a heartbeat is
        // at or below its watermark.
        auto beats = of_type(*r, "heartbeat");
        CHECK(beats.size() >= 4);
        int64_t mark = 0;
        for (const auto& l : r->lines) {
            if (l["type"] == "heartbeat") {
                CHECK(l["watermark_ns"].get<int64_t>() <= l["wall_ns"].get<int64_t>());
                CHECK(l["watermark_ns"].get<int64_t>() >= mark);
                mark = l["watermark_ns"].get<int64_t>();
            }
            if (l["type"] == "event") CHECK(l["wall_ns"].get<int64_t>() > mark);
        }
    }
    auto metrics = get(agent.port(), ca, &certs.alice, "/metrics");
    CHECK_THAT(metrics.body, Contains("pwru_agent_sessions_total 2\n") && Contains("pwru_agent_sessions_active 0\n"));
}

TEST_CASE("pwru-agent refuses bad clients at the handshake and bad requests with a reason", "[cri][agent]") {
    REQUIRE_CONTAINERD();
    ContainerdFixture cd;
    cd.run_pod("default", "pod-a");
    Certs certs;
    AgentProcess agent(certs.agent_args(cd.socket()));
    const std::string& ca = certs.ca.cert_path();
    const json req = {{"namespace", "default"}, {"pod", "pod-a"}, {"max_duration_s", 1}};

    for (const auto& [what, who] : std::vector<std::pair<std::string, const CertFiles*>>{
             {"no client certificate", nullptr},
             {"a certificate from another CA", &certs.alice_from_rogue},
             {"an expired certificate", &certs.alice_expired}}) {
        INFO(what);
        auto r = post_trace(agent.port(), ca, who, req);
        CHECK(r.status == 0);
        CHECK_FALSE(r.transport.empty());
    }

    auto denied = post_trace(agent.port(), ca, &certs.bob, req);
    CHECK(denied.status == 403);
    CHECK(denied.json()["status"] == 403);
    CHECK_THAT(denied.json()["error"].get<std::string>(), Contains("bob.example") && Contains("namespace default"));
    auto bob_node = post_trace(agent.port(), ca, &certs.bob, {{"node", true}});
    CHECK(bob_node.status == 403);

    auto missing = post_trace(agent.port(), ca, &certs.alice, {{"namespace", "default"}, {"pod", "nope"}});
    CHECK(missing.status == 404);
    CHECK_THAT(missing.json()["error"].get<std::string>(), Contains("default/nope"));

    struct Bad {
        json body;
        const char* reason;
    };
    for (const auto& bad : std::vector<Bad>{
             {{{"namespace", "default"}, {"pod", "pod-a"}, {"filter", "tcp and and"}}, "filter"},
             {{{"namespace", "default"}, {"pod", "pod-a"}, {"args", {"--no-such-flag"}}}, "--no-such-flag"},
             {{{"namespace", "default"}, {"pod", "pod-a"}, {"args", {"--output-file", "/tmp/x"}}}, "--output-file"},
             {{{"namespace", "default"}, {"pod", "pod-a"}, {"colour", 1}}, "colour"}}) {
        auto r = post_trace(agent.port(), ca, &certs.alice, bad.body);
        INFO(bad.body.dump() << " -> " << r.body);
        CHECK(r.status == 400);
        CHECK_THAT(r.json()["error"].get<std::string>(), Contains(bad.reason));
    }
    // Malformed JSON, sent raw.
    {
        httplib::SSLClient c("127.0.0.1", agent.port(), certs.alice.cert, certs.alice.key);
        c.set_ca_cert_path(ca.c_str());
        c.enable_server_certificate_verification(true);
        auto r = c.Post("/v1/trace", "{\"namespace\": ", "application/json");
        REQUIRE(r);
        CHECK(r->status == 400);
        CHECK_THAT(r->body, Contains("not valid JSON"));
    }
    // None of that crashed the agent or left a session behind.
    CHECK(agent.child().running());
    CHECK(get(agent.port(), ca, &certs.alice, "/healthz").status == 200);
    CHECK_THAT(get(agent.port(), ca, &certs.alice, "/metrics").body, Contains("pwru_agent_sessions_active 0\n"));

    // The runtime unreachable: 503 naming the socket.
    AgentProcess no_cri(certs.agent_args("/nonexistent/pwru-test-cri.sock"));
    auto r = post_trace(no_cri.port(), ca, &certs.alice, req);
    CHECK(r.status == 503);
    CHECK_THAT(r.json()["error"].get<std::string>(), Contains("/nonexistent/pwru-test-cri.sock"));
}

TEST_CASE("pwru-agent: a client hanging up mid-stream ends its session and every BPF link within a second",
          "[cri][agent]") {
    REQUIRE_CONTAINERD();
    ContainerdFixture cd;
    cd.run_pod("default", "pod-a");
    Certs certs;
    AgentProcess agent(certs.agent_args(cd.socket()));
    const std::string& ca = certs.ca.cert_path();
    const size_t baseline = bpf_objects_held_by(agent.pid());

    std::set<uint32_t> links;
    auto r = post_trace(agent.port(), ca, &certs.alice,
                        {{"namespace", "default"}, {"pod", "pod-a"}, {"max_duration_s", 60}}, [&](const json& j) {
                            if (j.value("type", "") != "start") return true;
                            links = bpf_links_held_by(agent.pid());
                            return false;  // hang up
                        });
    const auto hung_up = std::chrono::steady_clock::now();
    REQUIRE(r.status == 200);
    REQUIRE_FALSE(links.empty());
    for (uint32_t id : links) CHECK(kernel_has_link(id));
    while (!links_gone(agent.pid(), links) && std::chrono::steady_clock::now() - hung_up < 5s)
        std::this_thread::sleep_for(10ms);
    const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - hung_up).count();
    INFO("links gone after " << took << " s");
    CHECK(links_gone(agent.pid(), links));
    CHECK(took < 1.0);
    CHECK(bpf_objects_held_by(agent.pid()) == baseline);

    // Still serving, and serving traces.
    CHECK(get(agent.port(), ca, &certs.alice, "/healthz").status == 200);
    auto again = post_trace(agent.port(), ca, &certs.alice,
                            {{"namespace", "default"}, {"pod", "pod-a"}, {"max_duration_s", 1}});
    CHECK(again.status == 200);
    REQUIRE_FALSE(again.lines.empty());
    CHECK(again.lines.back()["ended"] == "max_duration");
}

TEST_CASE("pwru-agent: SIGTERM ends running traces with a summary, detaches and exits", "[cri][agent]") {
    REQUIRE_CONTAINERD();
    ContainerdFixture cd;
    cd.run_pod("default", "pod-a");
    Certs certs;
    AgentProcess agent(certs.agent_args(cd.socket()));
    const std::string& ca = certs.ca.cert_path();

    std::set<uint32_t> links;
    TraceCall call(agent.port(), ca, certs.alice, {{"namespace", "default"}, {"pod", "pod-a"}, {"max_duration_s", 60}},
                   [&](const json& j) {
                       if (j.value("type", "") == "start") links = bpf_links_held_by(agent.pid());
                       return true;
                   });
    REQUIRE(call.wait_started(60s));
    REQUIRE(::kill(agent.pid(), SIGTERM) == 0);
    HttpReply r = call.result(30s);
    REQUIRE(r.status == 200);
    REQUIRE_FALSE(r.lines.empty());
    CHECK(r.lines.back()["type"] == "summary");
    CHECK(r.lines.back()["ended"] == "shutdown");
    auto code = agent.child().wait(30s);
    REQUIRE(code);
    CHECK(*code == 0);
    REQUIRE_FALSE(links.empty());
    for (uint32_t id : links) CHECK_FALSE(kernel_has_link(id));
}

TEST_CASE("pwru-agent limits: sessions, event rate; hostNetwork pods are reported", "[cri][agent]") {
    REQUIRE_CONTAINERD();
    ContainerdFixture cd;
    cd.run_pod("default", "pod-a");
    cd.run_pod("default", "hostnet", /*host_network=*/true);
    auto cri = CriClient::connect(cd.socket());
    REQUIRE(cri);
    const PodView a = view(*cri, "default", "pod-a");
    Certs certs;
    auto args = certs.agent_args(cd.socket());
    args.insert(args.end(), {"--max-sessions", "1", "--max-event-rate", "5", "--max-duration", "30"});
    AgentProcess agent(args);
    const std::string& ca = certs.ca.cert_path();

    TraceCall call(agent.port(), ca, certs.alice,
                   {{"namespace", "default"}, {"pod", "pod-a"}, {"filter", "udp or icmp"}, {"max_duration_s", 3}});
    REQUIRE(call.wait_started(60s));
    // One session at a time here: the second is told to come back later.
    auto busy = post_trace(agent.port(), ca, &certs.alice, {{"namespace", "default"}, {"pod", "pod-a"}});
    CHECK(busy.status == 429);
    CHECK_THAT(busy.json()["error"].get<std::string>(), Contains("--max-sessions"));
    auto too_long = post_trace(agent.port(), ca, &certs.alice,
                               {{"namespace", "default"}, {"pod", "pod-a"}, {"max_duration_s", 31}});
    CHECK(too_long.status == 400);

    send_udp(a.ip, 40);  // dozens of events in under a second, against 5 per second
    HttpReply r = call.result(60s);
    REQUIRE(r.status == 200);
    const json& summary = r.lines.back();
    INFO(summary.dump());
    REQUIRE(summary["type"] == "summary");
    const auto events = of_type(r, "event").size();
    CHECK(summary["rate_limited"].get<uint64_t>() > 0);
    CHECK(events <= 5 + 5 * 4);  // a second of burst, then 5/s for at most ~4 s
    auto losses = of_type(r, "loss");
    REQUIRE_FALSE(losses.empty());
    CHECK(losses.back()["rate_limited"] == summary["rate_limited"]);
    CHECK_THAT(get(agent.port(), ca, &certs.alice, "/metrics").body,
               Contains("pwru_agent_lost_events_total{cause=\"rate_limited\"} " +
                        std::to_string(summary["rate_limited"].get<uint64_t>()) + "\n"));

    // hostNetwork: scoped by its host IPs with a warning, or refused when the
    // runtime reports none; never traced as if it had a netns of its own.
    auto host = cri->find_pod("default", "hostnet");
    REQUIRE(host);
    REQUIRE(host->host_network);
    auto h = post_trace(agent.port(), ca, &certs.alice,
                        {{"namespace", "default"}, {"pod", "hostnet"}, {"max_duration_s", 1}});
    INFO(h.body.substr(0, 1000));
    WARN("hostNetwork pod: the runtime reports " << host->ips.size() << " IP(s); agent answered " << h.status);
    if (host->ips.empty()) {
        CHECK(h.status == 422);
        CHECK_THAT(h.json()["error"].get<std::string>(), Contains("host network"));
    } else {
        REQUIRE(h.status == 200);
        CHECK(h.lines.front()["host_network"] == true);
        CHECK(h.lines.front()["netns"] == 0);
        CHECK_THAT(h.lines.front()["warning"].get<std::string>(), Contains("host network"));
    }
}

TEST_CASE("pwru-agent in RBAC mode: the user's token decides, through TokenReview and SubjectAccessReview",
          "[cri][agent]") {
    REQUIRE_CONTAINERD();
    ContainerdFixture cd;
    cd.run_pod("default", "pod-a");
    cd.run_pod("other", "pod-c");
    Certs certs;
    FakeKubeApi api(certs.ca.issue("kube-apiserver", {"DNS:localhost", "IP:127.0.0.1"}));
    api.allowed_ns = "default";
    const std::string token_file = (certs.dir.path / "sa-token").string();
    std::ofstream(token_file) << "agent-sa-token\n";
    AgentProcess agent({"--tls-cert", certs.server.cert, "--tls-key", certs.server.key, "--client-ca",
                        certs.ca.cert_path(), "--kube-api", "https://127.0.0.1:" + std::to_string(api.port),
                        "--kube-ca", certs.ca.cert_path(), "--kube-token-file", token_file, "--cri-socket",
                        cd.socket(), "--node-name", "test-node"});
    const std::string& ca = certs.ca.cert_path();

    // bob has no grant in any file here: RBAC on alice's token is what counts.
    auto ok = post_trace(agent.port(), ca, &certs.bob,
                         {{"namespace", "default"}, {"pod", "pod-a"}, {"max_duration_s", 1}, {"bearer_token", "alice-token"}});
    INFO(ok.body.substr(0, 500));
    REQUIRE(ok.status == 200);
    CHECK(ok.lines.front()["type"] == "start");
    CHECK(ok.lines.back()["ended"] == "max_duration");
    REQUIRE_FALSE(api.access_reviews.empty());
    CHECK(api.access_reviews.back()["spec"]["user"] == "alice");
    CHECK(api.access_reviews.back()["spec"]["resourceAttributes"]["namespace"] == "default");
    for (const auto& h : api.auth_headers) CHECK(h == "Bearer agent-sa-token");

    // The token in an Authorization header instead of the body.
    {
        httplib::SSLClient c("127.0.0.1", agent.port(), certs.bob.cert, certs.bob.key);
        c.set_ca_cert_path(ca.c_str());
        c.enable_server_certificate_verification(true);
        c.set_read_timeout(30);
        c.set_bearer_token_auth("alice-token");
        auto r = c.Post("/v1/trace", R"({"namespace":"default","pod":"pod-a","max_duration_s":1})", "application/json");
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK_THAT(r->body, Contains("\"ended\":\"max_duration\""));
    }
    auto other_ns = post_trace(agent.port(), ca, &certs.bob,
                               {{"namespace", "other"}, {"pod", "pod-c"}, {"bearer_token", "alice-token"}});
    CHECK(other_ns.status == 403);
    CHECK_THAT(other_ns.json()["error"].get<std::string>(), Contains("alice") && Contains("namespace other"));
    auto bad_token = post_trace(agent.port(), ca, &certs.bob,
                                {{"namespace", "default"}, {"pod", "pod-a"}, {"bearer_token", "stolen"}});
    CHECK(bad_token.status == 403);
    CHECK_THAT(bad_token.json()["error"].get<std::string>(), Contains("not accepted"));
    auto no_token = post_trace(agent.port(), ca, &certs.bob, {{"namespace", "default"}, {"pod", "pod-a"}});
    CHECK(no_token.status == 403);
    CHECK_THAT(no_token.json()["error"].get<std::string>(), Contains("bearer token"));
    // The certificate still gates the connection.
    CHECK(post_trace(agent.port(), ca, &certs.alice_from_rogue,
                     {{"namespace", "default"}, {"pod", "pod-a"}, {"bearer_token", "alice-token"}})
              .status == 0);
    // The API refusing the agent itself: 503, not a denial of the user.
    api.forbid_agent = true;
    auto api_down = post_trace(agent.port(), ca, &certs.bob,
                               {{"namespace", "default"}, {"pod", "pod-a"}, {"bearer_token", "alice-token"}});
    CHECK(api_down.status == 503);
    CHECK_THAT(api_down.json()["error"].get<std::string>(), Contains("HTTP 403"));
}
