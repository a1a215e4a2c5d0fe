// kubectl-pwru's command line: targets, Kubernetes access (kubectl's flags),
// how to reach the agents, pwru's output flags (formatted here), and the pwru
// flags passed through to the agents. Everything after `--` is the filter.
#pragma once

#include <string>
#include <vector>

#include "kubectl-plugin/kubeconfig.h"
#include "kubectl-plugin/targets.h"
#include "tracer/events/output_format.h"
#include "tracer/util/result.h"

namespace pwru::plugin {

struct AgentAccess {
    std::string ns = "pwru";                                     // the chart's default namespace
    std::string selector = "app.kubernetes.io/name=pwru-agent";  // the chart's DaemonSet pod labels
    uint16_t port = 4245;                                        // the agent's default --listen port
    bool port_given = false;                                     // --agent-port on the command line
    std::string server_name = "pwru-agent";  // the name in the agents' certificates; {node}: the node's
    bool direct = false;                     // node/pod addresses instead of port-forward
    std::string tls_cert, tls_key, tls_ca;   // our client certificate and the agents' CA
    std::string tls_dir;                     // tls.crt, tls.key, ca.crt (a Secret's layout)
};

struct PluginOptions {
    KubeconfigFlags kube;
    std::vector<TargetSpec> targets;
    std::string selector;         // -l
    bool all_namespaces = false;  // -A: -l across every namespace
    std::string filter;           // after --
    AgentAccess agents;
    OutputOptions output;
    std::string timestamp = "none";
    uint64_t limit_lines = 0;
    double max_duration_s = 0;  // 0: the agents' ceiling
    uint64_t max_events = 0;
    // Not an option: the user's Kubernetes bearer token from the kubeconfig
    // (static token, token file or exec credential plugin), sent to the agents
    // as bearer_token: agents in RBAC mode check the user's rights with it
    // (TokenReview + SubjectAccessReview). Empty for client-certificate users.
    std::string user_token;
    bool summary = true;
    bool correlate = false;               // --correlate: one packet across nodes (packet_correlation.h)
    std::string ready_file;               // written once every node's trace is attached (ready_file.h)
    std::vector<std::string> agent_args;  // pwru flags for the agents
    bool help = false, version = false;
    std::string help_text;
};

// The port to reach an agent pod on: --agent-port when given, else the pod's
// container port named "https", else its only TCP port, else the default.
// Reading the pod spec lets agents listen on any port (one per pod, even)
// without every user passing --agent-port.
uint16_t agent_port_of(const AgentAccess& a, const PodInfo& agent_pod);

// The name node's agent certificate must carry: --agent-server-name with
// every {node} replaced by the node's name (per-node certificates, so that one
// node's key cannot stand in for another node's agent).
std::string agent_server_name(const AgentAccess& a, const std::string& node);

Result<PluginOptions> parse_plugin_options(const std::vector<std::string>& argv);

// The JSON body of POST /v1/trace for one target (with o.user_token as
// bearer_token when there is one).
std::string trace_request_body(const PluginOptions& o, const TraceTarget& t);

}  // namespace pwru::plugin
