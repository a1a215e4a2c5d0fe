// e2e/kind-trace.sh (issue #11) end to end without kind: the script's own
// `start` and `collect`, with the chart install off, against what a kind
// cluster would offer it: two nodes on one kernel (each a netns with its own
// containerd, pod and pwru-agent, as node scope needs), the local API server
// (tests/support/local_kube_api) answering the real kubectl (discovery, nodes,
// the agent pods' Ready condition, the client certificate Secret) and the real
// kubectl-pwru (pods, selectors, port-forward). Traffic from pod-a to pod-b is
// dropped by iptables inside pod-b; the summary must name both nodes and the
// drop with its reason, function and node (node-b only), and no netns's
// events may come from two nodes (no doubling on a shared kernel). Also:
// collect after the trace died (a warning, exit 0), and start when one node's
// agent is not Ready (an error naming that node; collect still exits 0).
//
// What only a real kind run checks (the repository's kind-trace-example
// workflow): helm, kind load, the chart's Secret and DaemonSet, a real API
// server, the GitHub Action's steps and artifact upload.
#include <openssl/evp.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

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
#include "support/text_lines.h"

using namespace pwru::test;
using Catch::Matchers::Contains;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kScript = std::string(PWRU_SOURCE_DIR) + "/e2e/kind-trace.sh";

std::string base64(const std::string& s) {
    std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(s.data()), int(s.size()));
    out.resize(size_t(n));
    return out;
}

// What kubectl asks before `kubectl get`: the API's discovery documents, for
// the three resources the script reads.
void add_discovery(LocalKubeApi& api) {
    api.add_object("/api",
                   {{"kind", "APIVersions"},
                    {"versions", {"v1"}},
                    {"serverAddressByClientCIDRs",
                     {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", "127.0.0.1:" + std::to_string(api.port())}}}}});
    api.add_object("/apis", {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", json::array()}});
    auto res = [](const std::string& name, const std::string& kind, bool namespaced) {
        return json{{"name", name},
                    {"singularName", kind == "Pod"    ? "pod"
                                     : kind == "Node" ? "node"
                                                      : "secret"},
                    {"namespaced", namespaced},
                    {"kind", kind},
                    {"verbs", {"get", "list"}}};
    };
    api.add_object(
        "/api/v1",
        {{"kind", "APIResourceList"},
         {"apiVersion", "v1"},
         {"groupVersion", "v1"},
         {"resources", {res("pods", "Pod", true), res("nodes", "Node", false), res("secrets", "Secret", true)}}});
}

// The chart's client certificate Secret (tls.crt, tls.key, ca.crt).
void add_client_secret(LocalKubeApi& api, const CertFiles& client, const std::string& ca) {
    json data = {{"tls.crt", base64(read_file_text(client.cert))},
                 {"tls.key", base64(read_file_text(client.key))},
                 {"ca.crt", base64(read_file_text(ca))}};
    api.add_object("/api/v1/namespaces/pwru/secrets/pwru-client-tls",
                   {{"kind", "Secret"},
                    {"apiVersion", "v1"},
                    {"type", "kubernetes.io/tls"},
                    {"metadata", {{"name", "pwru-client-tls"}, {"namespace", "pwru"}}},
                    {"data", data}});
}

void add_nodes(LocalKubeApi& api, const std::vector<std::string>& nodes) {
    json items = json::array();
    for (const auto& n : nodes) items.push_back({{"kind", "Node"}, {"apiVersion", "v1"}, {"metadata", {{"name", n}}}});
    api.add_object(
        "/api/v1/nodes",
        {{"kind", "NodeList"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", "1"}}}, {"items", items}});
}

// An agent pod of the DaemonSet on `node`, its port declared and forwarded.
// An agent pod of the DaemonSet on `node`, its port declared and forwarded
// (into the node's netns, where the agent listens).
void add_agent_pod(LocalKubeApi& api, const std::string& node, const AgentProcess& agent, const std::string& netns) {
    const std::string name = "pwru-agent-" + node;
    api.add_pod("pwru", name, node, {{"app.kubernetes.io/name", "pwru-agent"}}, "127.0.0.1");
    api.add_container_port("pwru", name, "https", uint16_t(agent.port()));
    api.forward("pwru", name, uint16_t(agent.port()), uint16_t(agent.port()), netns);
}

// The script as CI would run it: kubectl and KUBECONFIG from the environment,
// a HOME of its own (kubectl's discovery cache), GITHUB_ACTIONS unset.
struct ScriptEnv {
    std::string kubeconfig, home, plugin = PWRU_PLUGIN_BIN;
    std::vector<std::string> argv(const std::string& mode, const fs::path& out_dir,
                                  const std::vector<std::string>& more,
                                  const std::vector<std::string>& env = {}) const {
        std::vector<std::string> a{
            "env", "-u", "GITHUB_ACTIONS", "-u", "GITHUB_STEP_SUMMARY", "KUBECONFIG=" + kubeconfig, "HOME=" + home};
        a.insert(a.end(), env.begin(), env.end());
        a.insert(a.end(), {kScript, mode, "--cluster", "", "--output-dir", out_dir.string(), "--plugin", plugin});
        a.insert(a.end(), more.begin(), more.end());
        return a;
    }
};

struct ScriptRun {
    int code = -1;
    std::string out, err, command;
};

ScriptRun run_script(const std::vector<std::string>& argv, std::chrono::seconds timeout = 180s) {
    ChildProcess p(argv);
    auto code = p.wait(timeout);
    return {code ? *code : -1, p.stdout_text(), p.stderr_text(), p.command_line()};
}

// For INFO(): what the script said.
std::string said(const ScriptRun& r) {
    return "script: " + r.command + " -> " + std::to_string(r.code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

// Kills a trace that start left running when the test ends early (collect
// stops it otherwise): it runs in a session of its own, outside any child's group.
struct TraceGuard {
    fs::path pid_file;
    ~TraceGuard() {
        std::string pid = read_file_text(pid_file);
        if (!pid.empty()) ::kill(std::stoi(pid), SIGKILL);
    }
};

}  // namespace

TEST_CASE(
    "kind-trace.sh: start attaches on every node, collect summarizes the drop per node; a dead trace or "
    "a node without a ready agent is a warning for collect",
    "[cri][kind-trace]") {
    REQUIRE_CONTAINERD();
    if (std::system("command -v kubectl >/dev/null") != 0) {
        WARN("SKIPPED: kubectl is not installed (scripts/install-deps.sh installs it)");
        return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    // Two nodes on one kernel, as kind's: each a netns with its own containerd
    // (its pods) and its own agent (hostNetwork), joined by a veth and routing
    // each other's pod subnet.
    NetnsPair nodes;
    ContainerdFixture cd_a({nodes.ns_path_a(), 0});
    ContainerdFixture cd_b({nodes.ns_path_b(), 1});
    for (const auto& [ns, peer_pods, peer] : {std::tuple{nodes.a(), cd_b.pod_ip_prefix(), nodes.addr_b()},
                                              std::tuple{nodes.b(), cd_a.pod_ip_prefix(), nodes.addr_a()}}) {
        REQUIRE(nodes.run_in(ns, {"sysctl", "-qw", "net.ipv4.ip_forward=1"}).ok());
        REQUIRE(nodes.run_in(ns, {"ip", "route", "add", peer_pods + "0/24", "via", peer}).ok());
    }
    cd_a.run_pod("default", "pod-a");
    cd_b.run_pod("default", "pod-b");
    auto cri_a = pwru::agent::CriClient::connect(cd_a.socket());
    auto cri_b = pwru::agent::CriClient::connect(cd_b.socket());
    REQUIRE(cri_a);
    REQUIRE(cri_b);
    const PodView a = view(*cri_a, "default", "pod-a");
    const PodView b = view(*cri_b, "default", "pod-b");

    AgentCerts certs;  // the agents' certificate names localhost; the client is alice
    AgentProcess agent_a(certs.agent_args(cd_a.socket(), "node-a"), nodes.ns_path_a());
    AgentProcess agent_b(certs.agent_args(cd_b.socket(), "node-b"), nodes.ns_path_b());

    TempDir dir{"pwru-kind-trace"};
    LocalKubeApi api(certs.ca.issue("kube-apiserver", {"IP:127.0.0.1"}), "ci-token");
    add_discovery(api);
    add_nodes(api, {"node-a", "node-b"});
    add_client_secret(api, certs.alice, certs.ca.cert_path());
    api.add_pod("default", "pod-a", "node-a", {{"tier", "web"}}, a.ip);
    api.add_pod("default", "pod-b", "node-b", {{"tier", "web"}}, b.ip);
    add_agent_pod(api, "node-a", agent_a, nodes.ns_path_a());
    add_agent_pod(api, "node-b", agent_b, nodes.ns_path_b());

    ScriptEnv env{(dir.path / "kubeconfig").string(), (dir.path / "home").string()};
    fs::create_directories(env.home);
    std::ofstream(env.kubeconfig) << "apiVersion: v1\nkind: Config\ncurrent-context: ci\n"
                                  << "clusters:\n- name: ci\n  cluster:\n    server: " << api.url()
                                  << "\n    certificate-authority: " << certs.ca.cert_path() << "\n"
                                  << "users:\n- name: ci\n  user:\n    token: ci-token\n"
                                  << "contexts:\n- name: ci\n  context:\n    cluster: ci\n    user: ci\n"
                                  << "    namespace: default\n";
    const std::vector<std::string> start_opts{
        "--install",       "false", "--selector",       "tier=web", "--filter",       "udp",
        "--ready-timeout", "30",    "--attach-timeout", "60",       "--pwru-options", "--agent-server-name localhost"};

    // pod-b drops UDP to its discard port: the drop happens inside pod-b's netns (node-b).
    {
        ChildProcess ipt({"nsenter", "--net=" + b.netns_path, "iptables", "-w", "5", "-A", "INPUT", "-p", "udp",
                          "--dport", "9", "-j", "DROP"});
        REQUIRE(ipt.wait(30s) == 0);
    }

    // ---- start -> traffic -> collect: both nodes and the drop in the summary ----
    {
        const fs::path out_dir = dir.path / "trace";
        TraceGuard guard{out_dir / ".kind-trace" / "pid"};
        const ScriptRun start = run_script(env.argv("start", out_dir, start_opts));
        INFO(said(start));
        REQUIRE(start.code == 0);
        // Attached on every node when start returns: the ready file lists them.
        CHECK_THAT(read_file_text(out_dir / "attached.txt"), Contains("node-a") && Contains("node-b"));
        CHECK_THAT(start.err, Contains("the pwru agent is ready on 2 node(s)"));
        CHECK_THAT(read_file_text(out_dir / "agents.txt"), Contains("pwru-agent-node-a"));

        send_udp(b.ip, 25, a.netns_path);  // pod-a -> pod-b:9, dropped in pod-b

        const ScriptRun collect = run_script(env.argv("collect", out_dir, {}));
        INFO(said(collect));
        REQUIRE(collect.code == 0);
        const std::string& out = collect.out;
        for (const char* f : {"trace.ndjson", "trace.txt", "summary.md", "kubectl-pwru.log", "attached.txt"})
            CHECK(fs::exists(out_dir / f));
        CHECK(read_file_text(out_dir / "summary.md") == out);  // the log shows the same summary
        CHECK_THAT(collect.err, !Contains("warning"));
        // Both nodes, with their targets, events and losses (from kubectl-pwru's exit summary).
        auto row = [&](const std::string& node, const std::string& pod) {
            auto rows = lines_with(out, "| " + node + " | default/" + pod + " | ");
            REQUIRE(rows.size() == 1);
            return rows.front();
        };
        CHECK_THAT(row("node-a", "pod-a"), !Contains("unknown") && Contains("| 0 | 0 |"));
        CHECK_THAT(row("node-b", "pod-b"), !Contains("unknown") && Contains("| 0 | 0 |"));
        // The drop, on node-b only (node scope: pod-b's netns is node-b's),
        // with its function and reason, and the packet's tuple.
        auto on_b = lines_with(out, "- **node-b**: ");
        REQUIRE(on_b.size() == 1);
        CHECK(lines_with(out, "- **node-a**: ").empty());
        CHECK_THAT(on_b.front(), Contains("dropped in nft_do_chain") && Contains("SKB_DROP_REASON_NETFILTER_DROP"));
        CHECK_THAT(out, Contains("e.g. " + a.ip + ":") && Contains("->" + b.ip + ":9(udp)"));
        // The text rendering has pwru's header with the node columns and both nodes' events.
        const std::string text = read_file_text(out_dir / "trace.txt");
        REQUIRE_FALSE(lines_with(text, "FUNC").empty());
        CHECK_THAT(lines_with(text, "FUNC").front(), Contains("NODE") && Contains("POD") && Contains("TIME"));
        CHECK(lines_with(text, " node-a ").size() > 0);
        CHECK(lines_with(text, " node-b ").size() > 0);
        CHECK(lines_with(text, "SKB_DROP_REASON_NETFILTER_DROP").size() > 0);
        // Not doubled: each netns's events come from one node only (on one
        // kernel, unscoped agents would both report every packet).
        std::map<uint32_t, std::set<std::string>> nodes_of_netns;
        std::istringstream ndjson(read_file_text(out_dir / "trace.ndjson"));
        for (std::string l; std::getline(ndjson, l);) {
            auto j = json::parse(l, nullptr, false);
            if (j.is_object() && j.contains("func")) nodes_of_netns[j.value("netns", 0u)].insert(j.value("node", ""));
        }
        CHECK(nodes_of_netns.size() >= 3);  // pod-a's, the nodes', pod-b's
        for (const auto& [netns, seen_by] : nodes_of_netns) {
            INFO("netns " << netns);
            CHECK(seen_by.size() == 1);
        }
        CHECK(nodes_of_netns[a.netns] == std::set<std::string>{"node-a"});
        CHECK(nodes_of_netns[b.netns] == std::set<std::string>{"node-b"});
        WARN("summary:\n" << out);
    }

    // ---- collect after the trace died: a warning, exit 0, the summary of what was recorded ----
    {
        const fs::path out_dir = dir.path / "dead";
        TraceGuard guard{out_dir / ".kind-trace" / "pid"};
        const ScriptRun start = run_script(env.argv("start", out_dir, start_opts));
        INFO(said(start));
        REQUIRE(start.code == 0);
        send_udp(b.ip, 5, a.netns_path);
        const int pid = std::stoi(read_file_text(out_dir / ".kind-trace" / "pid"));
        REQUIRE(::kill(pid, SIGKILL) == 0);
        // The wrapper records the exit status once it reaps it.
        for (int i = 0; i < 100 && !fs::exists(out_dir / ".kind-trace" / "exit"); ++i)
            std::this_thread::sleep_for(100ms);
        const ScriptRun collect = run_script(env.argv("collect", out_dir, {}));
        INFO(said(collect));
        REQUIRE(collect.code == 0);
        auto ended = lines_with(collect.err, "kind-trace: warning: the trace had already ended before collect");
        REQUIRE(ended.size() == 1);
        CHECK_THAT(ended.front(), Contains("status 137 (signal 9)"));
        CHECK_THAT(collect.out, Contains("Tracing problems") && Contains("unknown"));
        CHECK(fs::exists(out_dir / "summary.md"));
        // On GitHub the same warning is an annotation, and the summary goes to the job's page.
        const fs::path page = dir.path / "step-summary.md";
        const ScriptRun gh = run_script(
            env.argv("collect", out_dir, {}, {"GITHUB_ACTIONS=true", "GITHUB_STEP_SUMMARY=" + page.string()}));
        INFO(said(gh));
        REQUIRE(gh.code == 0);
        CHECK(lines_with(gh.out, "::warning title=kind-trace::the trace had already ended").size() == 1);
        CHECK_THAT(read_file_text(page), Contains("kubectl pwru: where the packets went"));
    }

    // ---- start when node-b's agent is not Ready: an error naming node-b; collect warns, exits 0 ----
    {
        api.set_pod_ready("pwru", "pwru-agent-node-b", false, "ImagePullBackOff");
        const fs::path out_dir = dir.path / "not-ready";
        auto opts = start_opts;
        opts.insert(opts.end(), {"--ready-timeout", "3"});
        const ScriptRun start = run_script(env.argv("start", out_dir, opts));
        INFO(said(start));
        CHECK(start.code == 1);
        auto lines =
            lines_with(start.err, "kind-trace: error: the pwru agent did not become ready within 3 s on 1 node(s)");
        REQUIRE(lines.size() == 1);
        CHECK_THAT(lines.front(),
                   Contains("node node-b: pod pwru/pwru-agent-node-b is Running (ImagePullBackOff), not Ready"));
        CHECK_THAT(lines.front(), !Contains("node node-a"));
        CHECK_FALSE(fs::exists(out_dir / ".kind-trace" / "pid"));  // no trace was started
        const ScriptRun collect = run_script(env.argv("collect", out_dir, {}));
        INFO(said(collect));
        REQUIRE(collect.code == 0);
        CHECK(lines_with(collect.err,
                         "kind-trace: warning: the trace was not started: the pwru agent did not become ready")
                  .size() == 1);
        CHECK_THAT(collect.out, Contains("Tracing problems"));
    }
    WARN("kind-trace test took " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
                                 << " s");
}
