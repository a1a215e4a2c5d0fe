#include "agent/metrics.h"

#include <fmt/format.h>

namespace pwru::agent {
namespace {

void metric(std::string& out, const char* name, const char* type, const char* help, const std::string& value,
            const char* labels = "") {
    out += fmt::format("# HELP pwru_agent_{} {}\n# TYPE pwru_agent_{} {}\npwru_agent_{}{} {}\n", name, help, name, type,
                       name, labels, value);
}

}  // namespace

std::string Metrics::text() const {
    std::string out;
    metric(out, "sessions_active", "gauge", "Trace sessions streaming now.", std::to_string(sessions_active.load()));
    metric(out, "sessions_total", "counter", "Trace sessions started.", std::to_string(sessions_total.load()));
    metric(out, "sessions_refused_total", "counter", "Trace requests answered with an error status.",
           std::to_string(sessions_refused.load()));
    metric(out, "events_total", "counter", "Event records streamed to clients.", std::to_string(events_total.load()));
    out +=
        "# HELP pwru_agent_lost_events_total Events not streamed, by cause.\n"
        "# TYPE pwru_agent_lost_events_total counter\n";
    out += fmt::format("pwru_agent_lost_events_total{{cause=\"ringbuf_full\"}} {}\n", lost_ringbuf_full.load());
    out += fmt::format("pwru_agent_lost_events_total{{cause=\"rate_limited\"}} {}\n", lost_rate_limited.load());
    out += fmt::format("pwru_agent_lost_events_total{{cause=\"bpf_recursion\"}} {}\n", lost_recursion.load());
    out +=
        "# HELP pwru_agent_attach_seconds Time to attach a session's probes.\n"
        "# TYPE pwru_agent_attach_seconds summary\n";
    out += fmt::format("pwru_agent_attach_seconds_sum {:.6f}\n", static_cast<double>(attach_micros_total.load()) / 1e6);
    out += fmt::format("pwru_agent_attach_seconds_count {}\n", attach_count.load());
    return out;
}

}  // namespace pwru::agent
