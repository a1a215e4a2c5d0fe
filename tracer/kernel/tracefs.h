// tracefs: where it is mounted (mounting it when root and nobody did), and the
// functions it lets kprobes attach to.
#pragma once

#include <optional>
#include <string>
#include <unordered_set>

#include "tracer/util/result.h"

namespace pwru {

// The tracefs mount point in use: /sys/kernel/tracing, else
// /sys/kernel/debug/tracing. When neither is a tracefs and we are root, mounts
// tracefs at /sys/kernel/tracing and leaves it mounted (harmless, and the perf
// tracepoint backend needs it). nullopt if there is none and we cannot mount.
std::optional<std::string> tracefs_dir();

// The same, with the reason when there is none (errno of the mount attempt,
// EPERM when not root).
Result<std::string> find_or_mount_tracefs();

// The functions listed in <tracefs>/available_filter_functions, bare names
// (the " [module]" and any further columns dropped). An Error (with errno)
// when it cannot be read: callers say so and go on with the BTF list alone.
Result<std::unordered_set<std::string>> read_available_filter_functions();

}  // namespace pwru
