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
#include "support/netns_fixture.h"
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
    send_udp(a.ip, 5);                   // node -> pod A
    send_udp(gateway, 3, a.netns_path);  // pod A -> node
    send_udp(b.ip, 5);                   // node -> pod B
    send_udp(gateway, 3, b.netns_path);  // pod B -> node
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

    // mTLS is not optional: without the client CA (or server certificate),
    // or with a file that is no CA, the agent does not start, naming the flag.
    for (const auto& [drop, why] : std::vector<std::pair<std::string, std::string>>{{"--client-ca", "--client-ca"},
                                                                                    {"--tls-cert", "--tls-cert"}}) {
        auto args = certs.agent_args(cd.socket());
        auto it = std::find(args.begin(), args.end(), drop);
        args.erase(it, it + 2);
        args.insert(args.begin(), PWRU_AGENT_BIN);
        auto run = run_command(args, 30s);
        INFO(drop << " missing: " << run.err);
        CHECK(run.exit_code == 2);
        CHECK_THAT(run.err, Contains(why));
    }
    {
        auto args = certs.agent_args(cd.socket());
        *(std::find(args.begin(), args.end(), "--client-ca") + 1) = certs.authz;  // JSON, not a PEM CA
        args.insert(args.begin(), PWRU_AGENT_BIN);
        args.insert(args.end(), {"--listen", "127.0.0.1:0"});
        auto run = run_command(args, 30s);
        INFO(run.err);
        CHECK(run.exit_code != 0);
        CHECK_FALSE(run.timed_out);
        CHECK_THAT(run.err, Contains("--client-ca " + certs.authz));
    }

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
    // The links go first, then the programs and maps (the session's teardown
    // order): wait for both, and both must be done within the second.
    auto released = [&] { return links_gone(agent.pid(), links) && bpf_objects_held_by(agent.pid()) == baseline; };
    while (!released() && std::chrono::steady_clock::now() - hung_up < 5s) std::this_thread::sleep_for(10ms);
    const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - hung_up).count();
    INFO("links, programs and maps released after " << took << " s");
    CHECK(links_gone(agent.pid(), links));
    CHECK(bpf_objects_held_by(agent.pid()) == baseline);
    CHECK(took < 1.0);

    // Still serving, and serving traces.
    CHECK(get(agent.port(), ca, &certs.alice, "/healthz").status == 200);
    auto again =
        post_trace(agent.port(), ca, &certs.alice, {{"namespace", "default"}, {"pod", "pod-a"}, {"max_duration_s", 1}});
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

TEST_CASE("pwru-agent limits: sessions, event rate; a hostNetwork pod without ports is refused", "[cri][agent]") {
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

    // hostNetwork without ports: nothing tells its packets from the node's;
    // refused, saying how to trace it instead (with ports: the next test).
    auto host = cri->find_pod("default", "hostnet");
    REQUIRE(host);
    REQUIRE(host->host_network);
    REQUIRE(host->ports.empty());
    auto h = post_trace(agent.port(), ca, &certs.alice,
                        {{"namespace", "default"}, {"pod", "hostnet"}, {"max_duration_s", 1}});
    INFO(h.body.substr(0, 1000));
    CHECK(h.status == 422);
    CHECK_THAT(h.json()["error"].get<std::string>(), Contains("default/hostnet") && Contains("host network") &&
                                                         Contains("\"node\": true") && Contains("port filter"));
}

TEST_CASE("pwru-agent: a hostNetwork pod is traced as the node's packets on its ports, with a warning",
          "[cri][agent]") {
    REQUIRE_CONTAINERD();
    NetnsPair net;  // a: the node (containerd, the agent, the hostNetwork pod); b: another host
    ContainerdFixture cd({net.ns_path_a()});
    cd.run_pod("default", "hostnet", /*host_network=*/true, {{/*UDP*/ 1, 18080, 18080}});
    auto cri = CriClient::connect(cd.socket());
    REQUIRE(cri);
    auto host = cri->find_pod("default", "hostnet");
    REQUIRE(host);
    CHECK(host->host_network);
    CHECK(host->netns_inode == net.netns_inode_a());
    CHECK(host->ports == std::vector<pwru::ScopePort>{{18080, 17}});

    Certs certs;
    AgentProcess agent(certs.agent_args(cd.socket()), net.ns_path_a());
    TraceCall call(agent.port(), certs.ca.cert_path(), certs.alice,
                   {{"namespace", "default"}, {"pod", "hostnet"}, {"filter", "udp or icmp"}, {"max_duration_s", 4}},
                   nullptr, net.ns_path_a());
    REQUIRE(call.wait_started(60s));
    send_udp("127.0.0.1", 10, net.ns_path_a(), 18080);  // the pod's port, on the node's loopback
    send_udp("127.0.0.1", 10, net.ns_path_a(), 18081);  // another port: the node's, not the pod's
    send_udp(net.addr_a(), 5, net.ns_path_b(), 18080);  // from another host to the pod's port
    HttpReply r = call.result(60s);
    INFO(r.body.substr(0, 3000));
    REQUIRE(r.status == 200);
    const json& start = r.lines.front();
    CHECK(start["host_network"] == true);
    CHECK(start["netns"] == 0);
    CHECK(start["pod_ports"] == json::parse(R"([{"port":18080,"protocol":"udp"}])"));
    CHECK_THAT(start["warning"].get<std::string>(), Contains("host network") && Contains("18080/udp"));
    CHECK(r.lines.back()["ended"] == "max_duration");

    size_t on_port = 0, from_b = 0, other_port = 0, other_netns = 0;
    for (const auto& e : of_type(r, "event")) {
        if (e["netns"] != net.netns_inode_a()) ++other_netns;  // b's side of the veth is not this node
        if (!e.contains("tuple")) continue;
        const auto& t = e["tuple"];
        if (t["sport"] == 18080 || t["dport"] == 18080)
            ++on_port;
        else
            ++other_port;
        if (t["saddr"] == net.addr_b()) ++from_b;
    }
    CHECK(on_port > 0);
    CHECK(from_b > 0);
    CHECK(other_port == 0);
    CHECK(other_netns == 0);
    // The agent's log says what the scope is, too.
    CHECK_THAT(agent.child().stderr_text(), Contains("uses the host network") && Contains("18080/udp"));
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
                        "--kube-ca", certs.ca.cert_path(), "--kube-token-file", token_file, "--cri-socket", cd.socket(),
                        "--node-name", "test-node"});
    const std::string& ca = certs.ca.cert_path();

    // bob has no grant in any file here: RBAC on alice's token is what counts.
    auto ok = post_trace(
        agent.port(), ca, &certs.bob,
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

TEST_CASE("pwru-agent loss: ring buffer full and over the rate, counted exactly against a lossless witness",
          "[cri][agent]") {
    REQUIRE_CONTAINERD();
    ContainerdFixture cd;
    cd.run_pod("default", "pod-a");
    auto cri = CriClient::connect(cd.socket());
    REQUIRE(cri);
    const PodView a = view(*cri, "default", "pod-a");
    Certs certs;
    const std::string& ca = certs.ca.cert_path();
    // Three agents trace the same pod: a one-page ring buffer (ring-buffer
    // loss), 50 events per second (rate loss), and the witness (8 MiB, no
    // practical rate limit) that sees everything.
    auto with = [&](std::vector<std::string> extra) {
        auto args = certs.agent_args(cd.socket());
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    };
    AgentProcess small(with({"--ring-buffer-size", "4096", "--max-event-rate", "1000000"}));
    AgentProcess slow(with({"--max-event-rate", "50"}));
    AgentProcess witness(with({"--max-event-rate", "1000000"}));
    const json req = {{"namespace", "default"}, {"pod", "pod-a"}, {"filter", "udp or icmp"}, {"max_duration_s", 4}};
    TraceCall small_call(small.port(), ca, certs.alice, req);
    TraceCall slow_call(slow.port(), ca, certs.alice, req);
    TraceCall witness_call(witness.port(), ca, certs.alice, req);
    for (auto* c : {&small_call, &slow_call, &witness_call}) REQUIRE(c->wait_started(60s));
    send_udp(a.ip, 400, "", 9, 0ms);  // a burst: thousands of events, far more than a page holds
    HttpReply rs = small_call.result(60s), rl = slow_call.result(60s), rw = witness_call.result(60s);

    auto summary_of = [](const HttpReply& r, const char* who) {
        INFO(who << ": " << r.body.substr(0, 1000));
        REQUIRE(r.status == 200);
        REQUIRE(r.lines.back()["type"] == "summary");
        const json s = r.lines.back();
        CHECK(s["events"] == of_type(r, "event").size());
        CHECK(s["recursion_misses"] == 0);
        // Loss records are cumulative, never decrease, and the last one is the summary's.
        uint64_t ring = 0, rate = 0;
        for (const auto& l : of_type(r, "loss")) {
            CHECK(l["ringbuf_full"].get<uint64_t>() >= ring);
            CHECK(l["rate_limited"].get<uint64_t>() >= rate);
            ring = l["ringbuf_full"];
            rate = l["rate_limited"];
        }
        CHECK(ring == s["ringbuf_full"]);
        CHECK(rate == s["rate_limited"]);
        return s;
    };
    const json ss = summary_of(rs, "one-page ring"), sl = summary_of(rl, "50/s"), sw = summary_of(rw, "witness");
    INFO("witness " << sw.dump() << "\none-page ring " << ss.dump() << "\n50/s " << sl.dump());
    REQUIRE(sw["ringbuf_full"] == 0);
    REQUIRE(sw["rate_limited"] == 0);
    const uint64_t traced = sw["events"];
    CHECK(traced > 1000);
    // Real ring-buffer loss, and delivered + lost is exactly what the kernel traced.
    CHECK(ss["ringbuf_full"].get<uint64_t>() > 0);
    CHECK(ss["rate_limited"] == 0);
    CHECK(ss["events"].get<uint64_t>() + ss["ringbuf_full"].get<uint64_t>() == traced);
    // Over the rate: counted as loss, the same way.
    CHECK(sl["rate_limited"].get<uint64_t>() > 0);
    CHECK(sl["ringbuf_full"] == 0);
    CHECK(sl["events"].get<uint64_t>() + sl["rate_limited"].get<uint64_t>() == traced);
    // /metrics says the same as the streams.
    const std::string ms = get(small.port(), ca, &certs.alice, "/metrics").body;
    CHECK_THAT(ms,
               Contains("pwru_agent_lost_events_total{cause=\"ringbuf_full\"} " + ss["ringbuf_full"].dump() + "\n") &&
                   Contains("pwru_agent_events_total " + ss["events"].dump() + "\n"));
    const std::string ml = get(slow.port(), ca, &certs.alice, "/metrics").body;
    CHECK_THAT(ml,
               Contains("pwru_agent_lost_events_total{cause=\"rate_limited\"} " + sl["rate_limited"].dump() + "\n") &&
                   Contains("pwru_agent_events_total " + sl["events"].dump() + "\n"));
    // A ring buffer size the kernel cannot take: the agent says so at start.
    auto bad = with({"--ring-buffer-size", "5000"});
    bad.insert(bad.begin(), PWRU_AGENT_BIN);
    auto r = run_command(bad, 30s);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("--ring-buffer-size 5000"));
}
