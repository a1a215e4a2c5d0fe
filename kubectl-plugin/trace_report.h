// `kubectl pwru --report FILE.ndjson`: a recorded --output-json timeline
// read back, rendered as pwru's text table and summarized per node (events,
// drops with reason, function and node, losses) for a CI job's log. What
// e2e/kind-trace.sh collect runs, so the summary comes from the same event
// schema and trajectory code as pwru's own, not from a second parser in shell.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tracer/events/event_record.h"
#include "tracer/util/result.h"
#include "tracer/events/trajectory_summary.h"

namespace pwru::plugin {

// The inverse of OutputFormatter's JSON line (pwru's --output-json fields:
// "func" with the drop reason in parentheses, "iface" as "name:idx", the
// tuple's flags as text, the stack as one string).
Result<EventRecord> event_from_output_json(const nlohmann::json& j);

// One node's part of the timeline.
struct NodeReport {
    std::set<std::string> targets;  // "default/pod-a", "node/kind-worker"
    uint64_t events = 0, late = 0;
    std::string state;  // the last node_status ("connected", "ended", "error")
    std::vector<std::string> errors;
    // From kubectl-pwru's exit summary (its stderr); unknown when it never printed one.
    bool losses_known = false;
    uint64_t ringbuf_full = 0, rate_limited = 0;
    // A recorded timeline does not say which backend traced it.
    TrajectorySummary trajectories{skb_end_functions_any_backend()};
};

class TraceReport {
  public:
    // One line of the NDJSON file. Returns an error for a line that is not
    // one of kubectl-pwru's records (the caller counts and reports them).
    Result<void> add_line(const std::string& line);
    // kubectl-pwru's stderr: the per-node lines of its exit summary carry
    // the losses ("  node-a: 12 events (0 late), lost: 0 ring buffer full, ...").
    void add_plugin_log(const std::string& text);

    const std::map<std::string, NodeReport>& nodes() const { return nodes_; }
    // The summary as Markdown (GitHub's job summary renders it; plain text reads fine).
    std::string markdown() const;

  private:
    std::map<std::string, NodeReport> nodes_;
    uint64_t bad_lines_ = 0;
};

// --report FILE [--report-log FILE] [--report-text FILE]: summary on `out`.
// Exit codes: 0, 2 bad input (unreadable file, unknown flag).
int run_report(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace pwru::plugin
