// Errors that come from a limit, not from the programs: the kernel refusing
// a load or an attach for want of file descriptors or memory. They name the
// limit, its values and what the user can change (issue #23, item 10: at
// the fd limit the agent said "the kernel rejected the probe programs (run
// with --debug)", which pointed at the verifier and at a flag clients lack).
#pragma once

#include <optional>
#include <string>

namespace pwru {

// For EMFILE, ENFILE and ENOMEM (positive or negative): one sentence naming
// the limit with its current values and the next step. nullopt for any other
// error. `doing`: what failed, e.g. "cannot load the probe programs".
std::optional<std::string> explain_resource_error(int err, const std::string& doing);

}  // namespace pwru
