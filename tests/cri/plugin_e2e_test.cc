// kubectl-pwru end to end on one machine (issue #8): a real containerd with
// pod-a and pod-b, two real pwru-agent processes standing for node-a and
// node-b, a local API server (no kube-apiserver runs here) that places the
// pods on those nodes and port-forwards to the agents, and the real plugin
// binary merging both nodes' streams into one timeline while pod-a sends to
// pod-b. Bad targets (unknown, not scheduled, no agent, an agent that cannot
// be reached, one refusing our certificate) are one line each, and the good
// ones are still traced.
//
// Both agents share one kernel (as in a kind cluster), so each sees the same
// packets; their pod scopes (pod-a's netns or IP, pod-b's) decide what each
// node reports. The real-cluster path is the kind e2e's.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/cri_client.h"
#include "cri/agent_harness.h"
#include "cri/containerd_fixture.h"
#include "cri/pod_helpers.h"
#include "support/child_process.h"
#include "support/local_kube_api.h"
#include "support/netns_fixture.h"
#include "support/test_certs.h"
#include "support/test_files.h"

using namespace pwru::test;
using Catch::Matchers::Contains;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Each agent has its own certificate, for its node's name; the plugin checks
// each against --agent-server-name with {node} filled in.
constexpr const char* kAgentNameTemplate = "{node}.pwru-agent.pwru.svc";
std::string agent_dns_name(const std::string& node) { return node + ".pwru-agent.pwru.svc"; }

// One CA for the cluster (API server, agents, the plugin's client identity)
// and one the agents do not trust.
struct ClusterCerts {
    TempDir dir{"pwru-plugin-e2e"};
    TestCa ca{dir.path, "cluster"};
    TestCa rogue{dir.path, "rogue"};
    CertFiles api = ca.issue("kube-apiserver", {"IP:127.0.0.1"});
    CertFiles plugin = ca.issue("kubectl-pwru", {"URI:spiffe://test/kubectl-pwru"});
    std::string authz = (dir.path / "authz.json").string();
    std::string kubeconfig = (dir.path / "kubeconfig").string();

    ClusterCerts() {
        std::ofstream(authz) << R"({"clients":[{"identity":"spiffe://test/kubectl-pwru","namespaces":["default"]}]})";
    }
    // The certificate of the agent on `node` (and only that node).
    CertFiles agent_cert(const std::string& node) { return ca.issue("pwru-agent", {"DNS:" + agent_dns_name(node)}); }
    // An agent for `node` holding `cert`, trusting client certificates of `client_ca`.
    std::vector<std::string> agent_args(const std::string& cri_socket, const std::string& node, const CertFiles& cert,
                                        const std::string& client_ca) const {
        return {"--tls-cert",     cert.cert, "--tls-key",    cert.key,   "--client-ca", client_ca,
                "--authz-config", authz,     "--cri-socket", cri_socket, "--node-name", node};
    }
    void write_kubeconfig(const std::string& server, const std::string& token) const {
        std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\ncurrent-context: e2e\n"
                                  << "clusters:\n- name: e2e\n  cluster:\n    server: " << server
                                  << "\n    certificate-authority: " << ca.cert_path() << "\n"
                                  << "users:\n- name: e2e\n  user:\n    token: " << token << "\n"
                                  << "contexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: e2e\n"
                                  << "    namespace: default\n";
    }
    std::vector<std::string> plugin_args() const {
        return {PWRU_PLUGIN_BIN, "--kubeconfig",        kubeconfig,        "-n",       "default",
                "--tls-cert",    plugin.cert,           "--tls-key",       plugin.key, "--tls-ca",
                ca.cert_path(),  "--agent-server-name", kAgentNameTemplate};
    }
};

// An agent pod of the DaemonSet on `node`, its HTTPS port declared in the pod
// spec (each local agent has its own port), port-forwarded to that agent.
void add_agent_pod(LocalKubeApi& api, const std::string& node, const AgentProcess& agent) {
    const std::string name = "pwru-agent-" + node;
    api.add_pod("pwru", name, node, {{"app.kubernetes.io/name", "pwru-agent"}}, "127.0.0.1");
    api.add_container_port("pwru", name, "https", uint16_t(agent.port()));
    api.forward("pwru", name, uint16_t(agent.port()), uint16_t(agent.port()));
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

// A DNAT rule in the host's nat PREROUTING, as kube-proxy makes for a
// Service: `vip` (UDP) to `to`. Deleted again by the destructor.
struct HostDnat {
    std::vector<std::string> rule;
    HostDnat(const std::string& vip, const std::string& to)
        : rule{"PREROUTING", "-d", vip + "/32", "-p", "udp", "-j", "DNAT", "--to-destination", to} {
        std::vector<std::string> add{"iptables", "-w", "5", "-t", "nat", "-A"};
        add.insert(add.end(), rule.begin(), rule.end());
        run_checked(add);
    }
    ~HostDnat() {
        std::vector<std::string> del{"iptables", "-w", "5", "-t", "nat", "-D"};
        del.insert(del.end(), rule.begin(), rule.end());
        (void)run_command(del);
    }
};

// How many lines of `text` contain every one of `parts`.
size_t count_lines(const std::string& text, const std::vector<std::string>& parts) {
    size_t n = 0;
    for (const auto& l : lines_of(text)) {
        bool all = true;
        for (const auto& p : parts) all = all && l.find(p) != std::string::npos;
        n += all;
    }
    return n;
}

}  // namespace

TEST_CASE("kubectl-pwru merges two nodes' agents into one timeline; bad targets are one line each", "[cri][plugin]") {
    REQUIRE_CONTAINERD();
    const auto t0 = std::chrono::steady_clock::now();
    ContainerdFixture cd;
    cd.run_pod("default", "pod-a");
    cd.run_pod("default", "pod-b");
    auto cri = pwru::agent::CriClient::connect(cd.socket());
    REQUIRE(cri);
    const PodView a = view(*cri, "default", "pod-a");
    const PodView b = view(*cri, "default", "pod-b");

    ClusterCerts certs;
    // node-a and node-b trust the cluster CA; node-r's agent trusts only the
    // rogue CA, so it refuses the plugin's certificate in the handshake;
    // node-m's agent holds node-a's certificate, not its own.
    const CertFiles cert_a = certs.agent_cert("node-a");
    AgentProcess agent_a(certs.agent_args(cd.socket(), "node-a", cert_a, certs.ca.cert_path()));
    AgentProcess agent_b(certs.agent_args(cd.socket(), "node-b", certs.agent_cert("node-b"), certs.ca.cert_path()));
    AgentProcess agent_r(certs.agent_args(cd.socket(), "node-r", certs.agent_cert("node-r"), certs.rogue.cert_path()));
    AgentProcess agent_m(certs.agent_args(cd.socket(), "node-m", cert_a, certs.ca.cert_path()));

    LocalKubeApi api(certs.api, "e2e-token");
    api.add_pod("default", "pod-a", "node-a", {{"app", "a"}}, a.ip);
    api.add_pod("default", "pod-b", "node-b", {{"app", "b"}}, b.ip);
    api.add_pod("default", "pending", "", {{"app", "p"}}, "");                  // not scheduled
    api.add_pod("default", "pod-c", "node-c", {{"app", "c"}}, "10.197.250.3");  // no agent on node-c
    api.add_pod("default", "pod-r", "node-r", {{"app", "r"}}, "10.197.250.4");  // its agent refuses us
    add_agent_pod(api, "node-a", agent_a);
    add_agent_pod(api, "node-b", agent_b);
    add_agent_pod(api, "node-r", agent_r);
    api.add_pod("default", "pod-m", "node-m", {{"app", "m"}}, "10.197.250.6");  // its agent has node-a's certificate
    add_agent_pod(api, "node-m", agent_m);
    // node-d's agent pod exists but its port-forward fails (no agent behind it).
    api.add_pod("default", "pod-d", "node-d", {{"app", "d"}}, "10.197.250.5");
    api.add_pod("pwru", "pwru-agent-node-d", "node-d", {{"app.kubernetes.io/name", "pwru-agent"}}, "127.0.0.1");
    certs.write_kubeconfig(api.url(), "e2e-token");

    // ---- one JSON run over port-forwards, with every kind of bad target ----
    {
        auto args = certs.plugin_args();
        const std::string ready = (certs.dir.path / "plugin-ready").string();
        args.insert(args.end(),
                    {"pod/pod-a", "pod/pod-b", "pod/nope", "pod/pending", "pod/pod-c", "pod/pod-r", "pod/pod-d",
                     "pod/pod-m", "--output-json", "--max-duration", "6", "--ready-file", ready, "--", "udp or icmp"});
        ChildProcess plugin(args);
        // --ready-file: written once both good agents sent their start
        // record, although node-r and node-d failed; it lists the attached
        // nodes only. Their "connected" lines (the start records) are printed
        // before it appears, never after.
        const bool is_ready = plugin.wait_for_file(ready, 60s);
        const std::string out_at_ready = plugin.stdout_text();
        INFO("stdout: " << plugin.stdout_text().substr(0, 3000) << "\nstderr: " << plugin.stderr_text());
        REQUIRE(is_ready);
        CHECK(read_file_text(ready) == "node-a\nnode-b\n");
        CHECK(count_lines(out_at_ready, {R"("node":"node-a","node_status":"connected")", "functions attached"}) == 1);
        CHECK(count_lines(out_at_ready, {R"("node":"node-b","node_status":"connected")", "functions attached"}) == 1);
        CHECK_FALSE(std::filesystem::exists(ready + ".tmp"));
        send_udp(b.ip, 100, a.netns_path);  // pod-a -> pod-b for 2 s, and pod-b's ICMP answers
        // A live timeline: events are printed while the traces still run,
        // during a steady flow, not held until the streams end.
        CHECK(plugin.running());
        CHECK(count_lines(plugin.stdout_text(), {R"("func":)"}) > 0);
        auto code = plugin.wait(60s);
        REQUIRE(code);
        const std::string out = plugin.stdout_text(), err = plugin.stderr_text();
        // Documented: some targets could not be traced, the others were.
        CHECK(*code == 1);

        // One line each, naming the target and what to do.
        CHECK(count_lines(err, {"kubectl-pwru: ", R"(pods "nope" not found)"}) == 1);
        CHECK(count_lines(err, {"kubectl-pwru: ", "default/pending", "not scheduled"}) == 1);
        CHECK(count_lines(err, {"kubectl-pwru: ", "default/pod-c", "no pwru agent on node node-c"}) == 1);
        CHECK(count_lines(err, {"kubectl-pwru: ", "default/pod-r", "node-r", "refused the TLS handshake",
                                "--tls-cert " + certs.plugin.cert}) == 1);
        CHECK(count_lines(
                  err, {"kubectl-pwru: ", "default/pod-d", "node-d", "port-forward to pwru/pwru-agent-node-d"}) == 1);
        // Per-node certificates: node-m's agent shows node-a's, and the line
        // says which node, which name was expected, and which it carries.
        CHECK(count_lines(err, {"kubectl-pwru: ", "default/pod-m", "the agent on node node-m (pwru/pwru-agent-node-m)",
                                "does not carry the name node-m.pwru-agent.pwru.svc", "DNS:node-a.pwru-agent.pwru.svc",
                                "--agent-server-name '{node}.pwru-agent.pwru.svc'"}) == 1);
        // The exit summary names both traced nodes.
        CHECK(count_lines(err, {"  node-a: ", " events "}) == 1);
        CHECK(count_lines(err, {"  node-b: ", " events "}) == 1);

        std::map<std::string, size_t> per_node;
        std::map<std::string, size_t> a_to_b;  // node -> events of pod-a's UDP to pod-b
        std::vector<std::string> order;        // node of each event, in output order
        int64_t last = INT64_MIN;
        size_t late = 0;
        for (const auto& l : lines_of(out)) {
            auto j = json::parse(l, nullptr, false);
            INFO(l);
            REQUIRE(j.is_object());
            REQUIRE(j.contains("node"));              // every line says which node: events and node status alike
            if (j.contains("node_status")) continue;  // in-band node status
            REQUIRE(j.contains("func"));
            REQUIRE(j.contains("node"));
            REQUIRE(j.contains("pod"));
            CHECK(j["namespace"] == "default");
            REQUIRE(j.contains("wall_ns"));
            const std::string node = j["node"];
            CHECK(j["pod"] == (node == "node-a" ? "pod-a" : "pod-b"));
            CHECK((node == "node-a" || node == "node-b"));
            ++per_node[node];
            order.push_back(node);
            const int64_t t = j["wall_ns"];
            if (j.value("late", false)) {
                ++late;
            } else {
                CHECK(t >= last);  // one timeline, ordered by the events' own (wall) times
                last = std::max(last, t);
            }
            if (j.contains("tuple") && j["tuple"]["saddr"] == a.ip && j["tuple"]["daddr"] == b.ip &&
                j["tuple"]["proto"] == 17)
                ++a_to_b[node];
        }
        CHECK(per_node["node-a"] > 0);
        CHECK(per_node["node-b"] > 0);
        CHECK(a_to_b["node-a"] > 0);
        CHECK(a_to_b["node-b"] > 0);
        // Merged, not concatenated: the same packets seen on both nodes interleave.
        size_t switches = 0;
        for (size_t i = 1; i < order.size(); ++i) switches += order[i] != order[i - 1];
        CHECK(switches >= 2);
        WARN("the plugin's stderr:\n" << err);
        WARN("JSON run: " << per_node["node-a"] << " events from node-a, " << per_node["node-b"] << " from node-b, "
                          << switches << " node switches, " << late << " late");
    }

    // ---- text mode, --direct to the agent pods' addresses and declared ports ----
    {
        auto args = certs.plugin_args();
        args.insert(args.end(), {"pod/pod-a", "pod/pod-b", "--direct", "--timestamp", "absolute", "--max-duration", "3",
                                 "--", "udp or icmp"});
        const size_t requests_before = api.requests().size();
        ChildProcess plugin(args);
        const bool connected =
            plugin.wait_for_stdout({"# node-a (default/pod-a): connected", "# node-b (default/pod-b): connected"}, 60s);
        INFO("stdout: " << plugin.stdout_text().substr(0, 3000) << "\nstderr: " << plugin.stderr_text());
        REQUIRE(connected);
        send_udp(b.ip, 5, a.netns_path);
        auto code = plugin.wait(60s);
        REQUIRE(code);
        CHECK(*code == 0);  // every target traced to its end
        const auto out = lines_of(plugin.stdout_text());
        REQUIRE_FALSE(out.empty());
        CHECK_THAT(out.front(), Contains("TIME") && Contains("NODE") && Contains("POD") && Contains("FUNC"));
        CHECK(count_lines(plugin.stdout_text(), {"node-a", "pod-a", a.ip + ":"}) > 0);
        CHECK(count_lines(plugin.stdout_text(), {"node-b", "pod-b", b.ip + ":"}) > 0);
        CHECK(count_lines(plugin.stderr_text(), {"  node-a: "}) == 1);
        CHECK(count_lines(plugin.stderr_text(), {"  node-b: "}) == 1);
        // --direct never asked the API server for a port-forward.
        const auto seen = api.requests();
        for (size_t i = requests_before; i < seen.size(); ++i) CHECK_THAT(seen[i], !Contains("/portforward"));
    }
    // ---- --correlate: one packet across both nodes, through a Service-like DNAT ----
    {
        // pod-a sends to a virtual address that the host rewrites to pod-b in
        // PREROUTING (kube-proxy's DNAT on the client's node). node-b's agent
        // (pod-b's netns or IP) sees each datagram only from the rewrite on;
        // node-a's (pod-a's) from pod-a's socket: node-a's hop comes first.
        const std::string third = a.ip.substr(a.ip.find('.', 3) + 1, a.ip.rfind('.') - a.ip.find('.', 3) - 1);
        const std::string vip = "10.196." + third + ".9";
        run_checked({"ip", "route", "add", vip + "/32", "via", cd.pod_ip_prefix() + "1"}, 10s, a.netns_path);
        HostDnat dnat(vip, b.ip);
        const std::string ready = (certs.dir.path / "correlate-ready").string();
        auto args = certs.plugin_args();
        args.insert(args.end(), {"pod/pod-a", "pod/pod-b", "--correlate", "--output-json", "--max-duration", "4",
                                 "--ready-file", ready, "--", "udp"});
        ChildProcess plugin(args);
        INFO("stdout: " << plugin.stdout_text().substr(0, 3000) << "\nstderr: " << plugin.stderr_text());
        REQUIRE(plugin.wait_for_file(ready, 60s));
        send_udp_connected(vip, 20, a.netns_path);
        auto code = plugin.wait(60s);
        REQUIRE(code);
        CHECK(*code == 0);
        size_t a_then_b = 0, trajectories = 0, tagged_events = 0;
        for (const auto& l : lines_of(plugin.stdout_text())) {
            auto j = json::parse(l, nullptr, false);
            REQUIRE(j.is_object());
            if (j.contains("func")) tagged_events += j.contains("trajectory");
            if (!j.contains("nodes")) continue;
            ++trajectories;
            INFO(l);
            // Both nodes' hops of one datagram, matched across the DNAT:
            // node-a's first event still has the virtual address, node-b
            // only ever saw pod-b's.
            if (j["nodes"] == json::array({"node-a", "node-b"}) && j["first"]["node"] == "node-a" &&
                j["first"].value("tuple", "").find("->" + vip + ":9") != std::string::npos) {
                ++a_then_b;
                CHECK(j["fingerprint"].contains("ip_id"));
                CHECK(j["fingerprint"]["payload_len"] == 4);
                CHECK(j["last"].value("tuple", "").find("->" + b.ip + ":9") != std::string::npos);
                CHECK(j["dropped"]["drop_reason"] == "SKB_DROP_REASON_NO_SOCKET");  // nothing listens on pod-b's port 9
            }
        }
        CHECK(tagged_events > 0);
        CHECK(a_then_b > 0);
        WARN("--correlate: " << trajectories << " packets, " << a_then_b << " seen on node-a then node-b");
    }

    // ---- nothing resolves to a scheduled pod: bad input, exit 2 ----
    {
        auto args = certs.plugin_args();
        args.insert(args.end(), {"pod/nope", "pod/pending", "--max-duration", "2"});
        ChildProcess plugin(args);
        auto code = plugin.wait(30s);
        INFO("stderr: " << plugin.stderr_text());
        REQUIRE(code);
        CHECK(*code == 2);
        CHECK(count_lines(plugin.stderr_text(), {"kubectl-pwru: ", R"(pods "nope" not found)"}) == 1);
        CHECK(count_lines(plugin.stderr_text(), {"kubectl-pwru: nothing to trace"}) == 1);
    }
    WARN("plugin e2e took " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s");
}
