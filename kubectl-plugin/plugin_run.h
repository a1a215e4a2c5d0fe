// kubectl-pwru's main job: resolve targets, find each node's agent, open the
// streams, merge them into one timeline, print it, and summarise per node.
#pragma once

#include <atomic>
#include <ostream>

#include "kubectl-plugin/kubeconfig.h"
#include "kubectl-plugin/plugin_options.h"

namespace pwru::plugin {

// Exit codes: 0 done, 1 nothing could be traced / runtime failure, 2 bad input.
int run_plugin(const PluginOptions& opts, const KubeEnvironment& env, std::ostream& out, std::ostream& err,
               const std::atomic<bool>& interrupted);

}  // namespace pwru::plugin
