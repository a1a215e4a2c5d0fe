#include "kubectl-plugin/plugin_options.h"

#include <algorithm>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace pwru::plugin {

Result<PluginOptions> parse_plugin_options(const std::vector<std::string>& argv_in) {
    PluginOptions o;
    // Everything after `--` is the pcap filter, as with pwru itself.
    std::vector<std::string> argv;
    bool in_filter = false;
    for (const auto& a : argv_in) {
        if (!in_filter && a == "--") {
            in_filter = true;
            continue;
        }
        if (in_filter)
            o.filter += (o.filter.empty() ? "" : " ") + a;
        else
            argv.push_back(a);
    }

    CLI::App app{"kubectl pwru: where did my packet go, across a cluster", "kubectl-pwru"};
    app.set_help_flag();  // handled below, so that --help prints without an error path
    bool help = false;
    app.add_flag("-h,--help", help, "print this help");
    std::vector<std::string> targets;
    app.add_option("targets", targets, "pod/NAME, NAME, deploy|ds|sts|rs/NAME, node/NAME");
    app.add_option("-n,--namespace", o.kube.ns, "namespace of the targets (default: the context's)");
    app.add_option("-l,--selector", o.selector, "trace the pods matching this label selector");
    app.add_flag("-A,--all-namespaces", o.all_namespaces, "with -l: the matching pods in every namespace");
    app.add_option("--kubeconfig", o.kube.kubeconfig, "kubeconfig file (default: $KUBECONFIG, ~/.kube/config)");
    app.add_option("--context", o.kube.context, "kubeconfig context");
    app.add_option("--cluster", o.kube.cluster, "kubeconfig cluster");
    app.add_option("--user", o.kube.user, "kubeconfig user");
    app.add_option("--agent-namespace", o.agents.ns, "namespace of the pwru agents")->capture_default_str();
    app.add_option("--agent-selector", o.agents.selector, "label selector of the agent pods")->capture_default_str();
    auto* port_opt = app.add_option("--agent-port", o.agents.port,
                                    "the agents' HTTPS port (default: the agent pod's container port named https)")
                         ->capture_default_str();
    app.add_option("--agent-server-name", o.agents.server_name,
                   "the name the agents' certificates carry; {node} stands for the node's name "
                   "(per-node certificates, e.g. '{node}.pwru-agent.pwru.svc')")
        ->capture_default_str();
    app.add_flag("--direct", o.agents.direct, "connect to the agent pods' addresses instead of port-forwarding");
    app.add_option("--tls-cert", o.agents.tls_cert, "client certificate for the agents (PEM)");
    app.add_option("--tls-key", o.agents.tls_key, "its private key (PEM)");
    app.add_option("--tls-ca", o.agents.tls_ca, "CA of the agents' certificates (PEM)");
    app.add_option("--tls-dir", o.agents.tls_dir,
                   "a folder with tls.crt, tls.key and ca.crt (e.g. from the chart's Secret)");
    app.add_option("--max-duration", o.max_duration_s, "stop after this many seconds (0: the agents' limit)");
    app.add_option("--max-events", o.max_events, "events per target (0: the agents' limit)");
    // pwru's output flags: formatted here; the ones that change what is recorded also go to the agents.
    bool stack = false, caller = false, skb_cb = false;
    app.add_flag("--output-meta,!--no-output-meta", o.output.meta, "print NETNS MARK IFACE PROTO MTU LEN")
        ->default_val(true);
    app.add_flag("--output-tuple,!--no-output-tuple", o.output.tuple, "print the L3/L4 tuple")->default_val(true);
    app.add_flag("--output-tcp-flags", o.output.tcp_flags, "print TCP flags in the tuple");
    app.add_flag("--output-json", o.output.json, "one JSON object per event (with node and pod)");
    app.add_flag("--output-stack", stack, "the kernel stack of each event");
    app.add_flag("--output-caller", caller, "the calling function (CALLER column)");
    app.add_flag("--output-skb-cb", skb_cb, "skb->cb words");
    app.add_option("--timestamp", o.timestamp, "none, current, relative or absolute")
        ->check(CLI::IsMember({"none", "current", "relative", "absolute"}))
        ->capture_default_str();
    app.add_option("--output-limit-lines", o.limit_lines, "stop after this many events (0: no limit)");
    app.add_option("--ready-file", o.ready_file,
                   "write this file (the attached nodes, one per line) once every target's trace is attached");
    app.add_flag("--correlate", o.correlate,
                 "group each packet's events across nodes (IP ID, TCP seq/ack, length survive NAT) and report "
                 "which node saw it first and where it ended");
    app.add_flag("--summary,!--no-summary", o.summary, "per-node summary on exit")->default_val(true);
    app.add_flag("--version", o.version, "print the version");
    app.allow_extras();
    try {
        std::vector<std::string> rev(argv.rbegin(), argv.rend());
        app.parse(rev);
    } catch (const CLI::ParseError& e) {
        return bad_input(std::string(e.what()) + "; see kubectl pwru --help");
    }
    o.help = help;
    o.agents.port_given = port_opt->count() > 0;
    o.help_text = app.help();
    for (const auto& t : targets) {
        auto spec = parse_target(t);
        if (!spec) return std::unexpected(spec.error());
        o.targets.push_back(*spec);
    }
    // Extras are pwru flags for the agents (which refuse, with a reason, what they cannot do).
    for (const auto& x : app.remaining()) {
        if (x.empty() || x[0] != '-')
            return bad_input("unexpected '" + x +
                             "': the pcap filter goes after `--` (kubectl pwru pod/NAME -- 'tcp port 80')");
        o.agent_args.push_back(x);
    }
    o.output.caller = caller;
    o.output.skb_cb = skb_cb;
    o.output.node_columns = true;
    if (stack) o.agent_args.push_back("--output-stack");
    // --correlate matches overlay packets by their inner headers: the agents must record them.
    if (o.correlate && std::find(o.agent_args.begin(), o.agent_args.end(), "--output-tunnel") == o.agent_args.end())
        o.agent_args.push_back("--output-tunnel");
    if (caller) o.agent_args.push_back("--output-caller");
    if (skb_cb) o.agent_args.push_back("--output-skb-cb");
    if (o.timestamp == "none")
        o.output.timestamp = TimestampMode::None;
    else if (o.timestamp == "current")
        o.output.timestamp = TimestampMode::Current;
    else if (o.timestamp == "relative")
        o.output.timestamp = TimestampMode::Relative;
    else
        o.output.timestamp = TimestampMode::Absolute;
    if (!o.help && !o.version && o.targets.empty() && o.selector.empty())
        return bad_input("nothing to trace: name a target (pod/NAME, deploy/NAME, node/NAME) or -l SELECTOR");
    if (o.all_namespaces) {
        // As kubectl: a name is looked up in one namespace, never across all.
        for (const auto& t : o.targets)
            if (t.kind != "node")
                return bad_input("-A (all namespaces) goes with -l SELECTOR or node/NAME, not with " + t.kind + "/" +
                                 t.name + "; name its namespace with -n instead");
        if (!o.kube.ns.empty()) return bad_input("-A and -n " + o.kube.ns + " contradict each other; use one of them");
    }
    if (!o.agents.tls_dir.empty()) {
        if (o.agents.tls_cert.empty()) o.agents.tls_cert = o.agents.tls_dir + "/tls.crt";
        if (o.agents.tls_key.empty()) o.agents.tls_key = o.agents.tls_dir + "/tls.key";
        if (o.agents.tls_ca.empty()) o.agents.tls_ca = o.agents.tls_dir + "/ca.crt";
    }
    return o;
}

std::string agent_server_name(const AgentAccess& a, const std::string& node) {
    static const std::string placeholder = "{node}";
    std::string name = a.server_name;
    for (size_t at = name.find(placeholder); at != std::string::npos; at = name.find(placeholder, at + node.size()))
        name.replace(at, placeholder.size(), node);
    return name;
}

uint16_t agent_port_of(const AgentAccess& a, const PodInfo& agent_pod) {
    if (a.port_given) return a.port;
    for (const auto& [name, port] : agent_pod.tcp_ports)
        if (name == "https") return port;
    if (agent_pod.tcp_ports.size() == 1) return agent_pod.tcp_ports.front().second;
    return a.port;
}

std::string trace_request_body(const PluginOptions& o, const TraceTarget& t) {
    nlohmann::json j = {{"filter", o.filter}, {"args", o.agent_args}};
    if (t.pod.empty()) {
        j["node"] = true;
    } else {
        j["namespace"] = t.ns;
        j["pod"] = t.pod;
    }
    if (o.max_duration_s > 0) j["max_duration_s"] = o.max_duration_s;
    if (o.max_events > 0) j["max_events"] = o.max_events;
    if (!o.user_token.empty()) j["bearer_token"] = o.user_token;
    return j.dump();
}

}  // namespace pwru::plugin
