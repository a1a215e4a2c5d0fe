// One kubectl-pwru run once the agents are found: a stream per target, the
// k-way merge of their messages, the timeline printed as it is released,
// the in-band node status, --ready-file, and the per-node exit summary.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "kubectl-plugin/agent_stream.h"
#include "kubectl-plugin/packet_correlation.h"
#include "kubectl-plugin/plugin_options.h"
#include "kubectl-plugin/ready_file.h"
#include "kubectl-plugin/timeline_merge.h"
#include "tracer/events/output_format.h"

namespace pwru::plugin {

// What the exit summary says about one node.
struct NodeTally {
    uint64_t events = 0, late = 0, ringbuf_full = 0, rate_limited = 0;
    std::map<std::string, uint64_t> drops;  // "func: reason" -> count
    std::string state = "connecting", last_message;
};

class TraceSession {
  public:
    TraceSession(const PluginOptions& o, std::ostream& out, std::ostream& err);
    ~TraceSession();

    // A stream to open for `target` through `connect`.
    void add_stream(const TraceTarget& target, AgentConnector connect);
    bool empty() const { return streams_.empty(); }

    // Starts every stream and prints the merged timeline until all have
    // closed, the user interrupts, --output-limit-lines is reached, or the
    // agents overrun --max-duration.
    void run(const std::atomic<bool>& interrupted);
    void print_summary();
    // Streams that failed (each already a line on stderr), or the ready
    // file could not be written.
    bool failed() const { return failed_streams_ > 0 || ready_file_failed_; }

  private:
    void stop_all();
    void wait_for_messages();
    void apply(StreamMessage& m);
    void on_start(const StreamMessage& m, int64_t now);
    void on_summary(const StreamMessage& m, int64_t now);
    void write_ready_file_when_due();
    void print(const std::vector<MergedItem>& items);
    void print_status(const MergedItem& it);
    void print_event(const MergedItem& it);
    void print_trajectories(const std::vector<PacketTrajectory>& done);
    bool past_hard_deadline() const;
    const TraceTarget& target_of(size_t stream) const { return streams_.at(stream)->target(); }

    const PluginOptions& o_;
    std::ostream& out_;
    std::ostream& err_;
    MessageQueue queue_;
    TimelineMerge merge_;
    std::vector<std::unique_ptr<AgentStream>> streams_;
    std::map<std::string, NodeTally> tally_;
    std::set<std::string> pod_namespaces_;  // of the pod targets
    std::set<size_t> agent_went_;           // streams whose agent shut down before the user stopped
    OutputFormatter fmt_;
    ReadyFile ready_;
    std::optional<PacketCorrelator> correlator_;  // --correlate
    int64_t newest_event_ns_ = INT64_MIN;
    uint64_t trajectories_ = 0, multi_node_trajectories_ = 0;
    const int64_t t0_;
    std::chrono::steady_clock::time_point hard_deadline_ = std::chrono::steady_clock::time_point::max();
    uint64_t printed_ = 0;
    size_t failed_streams_ = 0;
    size_t open_streams_ = 0;
    bool stopping_ = false;
    bool ready_file_failed_ = false;
};

int64_t wall_now_ns();

}  // namespace pwru::plugin
