#include "kubectl-plugin/targets.h"

#include <set>

namespace pwru::plugin {

Result<TargetSpec> parse_target(const std::string& arg) {
    auto slash = arg.find('/');
    if (slash == std::string::npos) {
        if (arg.empty()) return bad_input("an empty target; name a pod, e.g. pod/httpd");
        return TargetSpec{"pod", arg};
    }
    std::string kind = arg.substr(0, slash), name = arg.substr(slash + 1);
    if (name.empty() || name.find('/') != std::string::npos)
        return bad_input("target '" + arg + "' is not KIND/NAME (e.g. pod/httpd, deploy/web, node/worker-1)");
    static const std::vector<std::pair<std::set<std::string>, std::string>> kinds = {
        {{"pod", "pods", "po"}, "pod"},
        {{"deploy", "deployment", "deployments"}, "deploy"},
        {{"ds", "daemonset", "daemonsets"}, "ds"},
        {{"sts", "statefulset", "statefulsets"}, "sts"},
        {{"rs", "replicaset", "replicasets"}, "rs"},
        {{"node", "nodes", "no"}, "node"},
    };
    for (const auto& [aliases, canonical] : kinds)
        if (aliases.contains(kind)) return TargetSpec{canonical, name};
    return bad_input("target kind '" + kind + "' is not supported; use pod/, deploy/, ds/, sts/, rs/ or node/");
}

namespace {

void add_pod(const PodInfo& p, ResolvedTargets& out, std::set<std::string>& seen) {
    std::string key = p.ns + "/" + p.name;
    if (!seen.insert(key).second) return;
    if (p.node.empty()) {
        out.problems.push_back("pod " + key + " is not scheduled on a node yet (phase " +
                               (p.phase.empty() ? "unknown" : p.phase) + "); trace it once it runs");
        return;
    }
    out.targets.push_back(TraceTarget{p.node, p.ns, p.name, p.ips});
}

}  // namespace

void label_event(EventRecord& e, const TraceTarget& t) {
    e.node = t.node;
    e.pod = t.pod;
    e.pod_namespace = t.ns;
}

ResolvedTargets resolve_targets(const KubeApi& api, const std::string& ns, const std::vector<TargetSpec>& specs,
                                const std::string& label_selector) {
    ResolvedTargets out;
    std::set<std::string> seen;
    auto add_selected = [&](const std::string& selector, const std::string& what) {
        auto pods = api.list_pods(ns, selector);
        if (!pods) {
            out.problems.push_back(what + ": " + pods.error().message());
        } else if (pods->empty()) {
            out.problems.push_back(what + ": no pods " + (ns.empty() ? "in any namespace" : "in namespace " + ns) +
                                   " match " + selector);
        } else {
            for (const auto& p : *pods) add_pod(p, out, seen);
        }
    };
    for (const auto& s : specs) {
        if (s.kind == "pod") {
            auto p = api.get_pod(ns, s.name);
            if (!p)
                out.problems.push_back("pod/" + s.name + ": " + p.error().message());
            else
                add_pod(*p, out, seen);
        } else if (s.kind == "node") {
            if (seen.insert("node/" + s.name).second) out.targets.push_back(TraceTarget{s.name, "", "", {}});
        } else {
            auto sel = api.workload_selector(s.kind, ns, s.name);
            if (!sel)
                out.problems.push_back(s.kind + "/" + s.name + ": " + sel.error().message());
            else
                add_selected(*sel, s.kind + "/" + s.name);
        }
    }
    if (!label_selector.empty()) add_selected(label_selector, "-l " + label_selector);
    return out;
}

}  // namespace pwru::plugin
