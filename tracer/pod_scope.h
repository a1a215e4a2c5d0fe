// pwru-agent's pod scope written into the BPF configuration: the pod's netns
// inode and its addresses (bpf/skb_scope.bpf.h checks "netns matches OR an
// address matches"). The caller also sets TraceOptions::track_skb, so that an
// skb matched once is followed across the veth, NAT and encapsulation.
#pragma once

#include <optional>

#include "pwru_abi.h"
#include "tracer/util/result.h"
#include "tracer/trace_options.h"

namespace pwru {

// Fills cfg's scope fields from `scope` (nothing when unset). A bad address
// or more than PWRU_SCOPE_ADDRS of them is bad input.
Result<void> write_pod_scope(const std::optional<PodScope>& scope, pwru_config& cfg);

}  // namespace pwru
