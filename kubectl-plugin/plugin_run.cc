#include "kubectl-plugin/plugin_run.h"

#include <fstream>
#include <sstream>

#include "kubectl-plugin/agent_stream.h"
#include "kubectl-plugin/kube_api.h"
#include "kubectl-plugin/trace_session.h"

namespace pwru::plugin {
namespace {

Result<std::string> read_pem(const std::string& path, const std::string& flag) {
    if (path.empty())
        return bad_input(flag + " is required to reach the agents (or --tls-dir with tls.crt, tls.key, ca.crt)");
    std::ifstream in(path);
    if (!in) return bad_input("cannot read " + flag + " '" + path + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Our client certificate and the agents' CA, read once for every agent.
Result<TlsConfig> agent_tls(const AgentAccess& a) {
    TlsConfig t;
    auto cert = read_pem(a.tls_cert, "--tls-cert");
    if (!cert) return std::unexpected(cert.error());
    auto key = read_pem(a.tls_key, "--tls-key");
    if (!key) return std::unexpected(key.error());
    auto ca = read_pem(a.tls_ca, "--tls-ca");
    if (!ca) return std::unexpected(ca.error());
    t.cert_pem = *cert;
    t.key_pem = *key;
    t.ca_pem = *ca;
    t.cert_source = "the client certificate (--tls-cert " + a.tls_cert + ")";
    t.key_source = "the client key (--tls-key " + a.tls_key + ")";
    t.ca_source = "the agents' CA (--tls-ca " + a.tls_ca + ")";
    return t;
}

// The API server's address and credentials (kubeconfig or in-cluster).
Result<ApiAccess> cluster_access(const PluginOptions& o, const KubeEnvironment& env) {
    auto access = load_api_access(o.kube, env);
    if (!access) return access;
    if (auto r = resolve_credentials(*access); !r) {
        Error e = r.error();
        e.kind = ErrorKind::Failure;  // a credential plugin or token that failed at run time: 1, not 2
        return std::unexpected(e);
    }
    return access;
}

// The agent pod of the DaemonSet on the target's node, or one line saying
// why there is none.
Result<PodInfo> find_agent_pod(const KubeApi& api, const AgentAccess& a, const TraceTarget& t) {
    auto agents = api.list_pods(a.ns, a.selector, "spec.nodeName=" + t.node);
    if (agents && !agents->empty()) return agents->front();
    return fail(t.label() + ": no pwru agent on node " + t.node + " (" +
                (agents ? "no pod matches " + a.selector + " in namespace " + a.ns : agents.error().message()) +
                "); is the chart installed and the agent running there?");
}

// How to reach that agent: a TLS connection to its pod address (--direct),
// or through the API server's port-forward with TLS inside the tunnel.
Result<AgentConnector> agent_connector(const KubeApi& api, const AgentAccess& a, const TraceTarget& t,
                                       const PodInfo& agent, const TlsConfig& shared_tls) {
    const uint16_t port = agent_port_of(a, agent);
    // Each node's agent is checked against its own name, and a mismatch says which node.
    TlsConfig tls = shared_tls;
    tls.server_name = agent_server_name(a, t.node);
    tls.peer = "the agent on node " + t.node + " (" + a.ns + "/" + agent.name + ")";
    tls.server_name_source = "--agent-server-name '" + a.server_name + "'";
    if (a.direct) {
        if (agent.ips.empty()) return fail(t.label() + ": the agent pod " + agent.name + " has no address yet");
        std::string ip = agent.ips.front();
        return AgentConnector([ip, port, tls]() -> Result<AgentConnection> {
            auto c = TlsConnection::connect(ip, port, tls, 10000);
            if (!c) return std::unexpected(c.error());
            return AgentConnection{nullptr, std::move(*c)};
        });
    }
    std::string agent_ns = a.ns, agent_pod = agent.name;
    return AgentConnector([&api, agent_ns, agent_pod, port, tls]() -> Result<AgentConnection> {
        auto pf = PortForward::open(api, agent_ns, agent_pod, port, 10000);
        if (!pf) return std::unexpected(pf.error());
        auto c = TlsConnection::over_fd((*pf)->take_fd(), tls, 10000);
        if (!c) return std::unexpected(c.error());
        return AgentConnection{std::move(*pf), std::move(*c)};
    });
}

// A stream per target whose agent is found; the others are one line each on
// stderr. Returns how many could not be given a stream.
size_t add_agent_streams(const PluginOptions& o, const KubeApi& api, const std::vector<TraceTarget>& targets,
                         const TlsConfig& tls, TraceSession& session, std::ostream& err) {
    size_t untraced = 0;
    for (const auto& t : targets) {
        auto agent = find_agent_pod(api, o.agents, t);
        Result<AgentConnector> connect =
            agent ? agent_connector(api, o.agents, t, *agent, tls) : std::unexpected(agent.error());
        if (!connect) {
            err << "kubectl-pwru: " << connect.error().message() << "\n";
            ++untraced;
            continue;
        }
        session.add_stream(t, std::move(*connect));
    }
    return untraced;
}

}  // namespace

int run_plugin(const PluginOptions& options, const KubeEnvironment& env, std::ostream& out, std::ostream& err,
               const std::atomic<bool>& interrupted) {
    auto access = cluster_access(options, env);
    if (!access) {
        err << "kubectl-pwru: " << access.error().message() << "\n";
        return access.error().users_fault() ? 2 : 1;
    }
    // Agents in RBAC mode decide with the user's own token (docs/agent-api.md).
    PluginOptions o = options;
    o.user_token = access->bearer_token;
    auto tls = agent_tls(o.agents);
    if (!tls) {
        err << "kubectl-pwru: " << tls.error().message() << "\n";
        return 2;
    }
    KubeApi api(*access);
    const std::string ns = o.all_namespaces ? "" : o.kube.ns.empty() ? access->ns : o.kube.ns;

    ResolvedTargets resolved = resolve_targets(api, ns, o.targets, o.selector);
    for (const auto& p : resolved.problems) err << "kubectl-pwru: " << p << "\n";
    TraceSession session(o, out, err);
    // Targets that could not be traced (not found, no agent, refused, failed):
    // the others still are, and the exit code says that not everything was.
    const size_t untraced = resolved.problems.size() + add_agent_streams(o, api, resolved.targets, *tls, session, err);
    if (session.empty()) {
        err << "kubectl-pwru: nothing to trace: none of the targets could be traced (see above)\n";
        // Not one target named a scheduled pod (or node): the input was wrong.
        // Targets that resolved but whose agents could not be reached: 1.
        return resolved.targets.empty() && !resolved.problems.empty() ? 2 : 1;
    }
    session.run(interrupted);
    if (o.summary) session.print_summary();
    return untraced > 0 || session.failed() ? 1 : 0;
}

}  // namespace pwru::plugin
