// kubectl-pwru's main job: resolve targets, find each node's agent, open the
// streams, merge them into one timeline, print it, and summarise per node.
#pragma once

#include <atomic>
#include <ostream>

#include "kubectl-plugin/kubeconfig.h"
#include "kubectl-plugin/plugin_options.h"

namespace pwru::plugin {

// Exit codes: 0 every target traced until its trace ended; 1 some target
// could not be traced (no agent on its node, the agent refused or failed, not
// scheduled, not found) while the others were, or a runtime failure; 2 bad
// input (flags, kubeconfig, TLS files), or no target resolved to a pod on a
// node (all unknown or unscheduled). Each untraced target is one line on stderr.
int run_plugin(const PluginOptions& opts, const KubeEnvironment& env, std::ostream& out, std::ostream& err,
               const std::atomic<bool>& interrupted);

}  // namespace pwru::plugin
