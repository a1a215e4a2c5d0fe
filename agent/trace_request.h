// The body of POST /v1/trace, parsed and checked (docs/agent-api.md):
// what to trace, with which pwru flags, for how long. Pure: no system access,
// so every bad request is caught (400) before the runtime or the kernel is asked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tracer/cli_options.h"
#include "tracer/util/result.h"

namespace pwru::agent {

// JSON nesting a request body may have (it needs two: the object and its
// "args" array); deeper is a 400, and the deeper values are never built.
inline constexpr int kMaxRequestJsonDepth = 8;

// The agent's ceilings; a request may ask for less, never more.
struct RequestLimits {
    double max_duration_s = 600;
    uint64_t max_events = 1'000'000;
};

struct TraceRequest {
    std::string ns, pod;     // pod == "" with node_wide
    bool node_wide = false;  // "node": true, or no pod: every packet on the node
    std::string filter;      // pcap expression, "" = everything in scope
    std::vector<std::string> args;
    double max_duration_s = 0;  // clamped to the limits
    uint64_t max_events = 0;
    std::string bearer_token;  // RBAC mode: the user's token
    CliConfig cli;             // args parsed by pwru's own parser, filter included
};

// Parses the JSON body. Errors are bad_input with a one-line reason that
// names the field or flag at fault.
Result<TraceRequest> parse_trace_request(const std::string& body, const RequestLimits& limits);

// The pwru flags the agent refuses (they name files or namespaces on the
// node, or only make sense for a local terminal), each with the reason.
const std::vector<std::pair<std::string, std::string>>& refused_flags();

}  // namespace pwru::agent
