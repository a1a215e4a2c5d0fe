// What `kubectl pwru` traces: the command line's targets (pod/NAME, NAME,
// deploy|ds|sts|rs/NAME, node/NAME, -l SELECTOR) resolved through the API to
// pods and the nodes they run on. A target that cannot be traced (unknown,
// not scheduled) is one clear line in `problems`; the others still go ahead.
#pragma once

#include <string>
#include <vector>

#include "kubectl-plugin/kube_api.h"
#include "tracer/events/event_record.h"
#include "tracer/util/result.h"

namespace pwru::plugin {

struct TargetSpec {
    std::string kind;  // "pod", "deploy", "ds", "sts", "rs", "node"
    std::string name;
};

// "pod/httpd", "pods/httpd", "httpd" (a pod), "deploy/web", "node/kind-worker".
Result<TargetSpec> parse_target(const std::string& arg);

// One stream to open: a pod on its node, or a whole node.
struct TraceTarget {
    std::string node;
    std::string ns, pod;  // empty for a node-wide trace
    std::vector<std::string> pod_ips;
    std::string label() const { return pod.empty() ? "node/" + node : ns + "/" + pod; }
};

// Every event of a target's stream says where it comes from: the node,
// namespace and pod the plugin asked that agent for (whatever the agent put).
void label_event(EventRecord& e, const TraceTarget& t);

struct ResolvedTargets {
    std::vector<TraceTarget> targets;
    std::vector<std::string> problems;  // one line each, for stderr
};

// `ns` empty: -l SELECTOR across all namespaces (-A).
ResolvedTargets resolve_targets(const KubeApi& api, const std::string& ns, const std::vector<TargetSpec>& specs,
                                const std::string& label_selector);

}  // namespace pwru::plugin
