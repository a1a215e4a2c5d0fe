// One remote trace: a tracer Session scoped to a pod (or the whole node),
// turned into the NDJSON records of docs/agent-api.md. The HTTP layer calls
// step() from its writer thread until done(); nothing is queued between the
// ring buffer and the socket, so a slow client costs ring-buffer loss (which
// the kernel counts), never agent memory.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/metrics.h"
#include "agent/node_netns.h"
#include "tracer/cli_options.h"
#include "tracer/events/drop_verdict.h"
#include "tracer/util/result.h"
#include "tracer/trace_pipeline.h"

namespace pwru::agent {

// What is traced, as the records name it.
struct StreamTarget {
    std::string node;
    std::string ns, pod;  // "" for node-wide
    uint32_t netns = 0;   // the pod's netns inode (0: node-wide or hostNetwork)
    std::vector<std::string> ips;
    bool host_network = false;
    std::vector<ScopePort> ports;  // hostNetwork: the pod's ports, its scope
    std::string warning;           // said in the start record (hostNetwork)
};

struct StreamLimits {
    double max_duration_s = 600;
    uint64_t max_events = 1'000'000;
    double max_event_rate = 10'000;         // events per second sent; the rest counted as rate_limited
    uint32_t ring_buffer_bytes = 8u << 20;  // the kernel ring buffer of the trace
};

// "80/tcp, 53/udp": for messages.
std::string port_list(const std::vector<ScopePort>& ports);

class TraceStream {
  public:
    // Builds, loads and attaches the Session (pod scope from `target` when it
    // names a pod; node scope from `node`, null = every netns of the kernel,
    // kept current while the trace runs). Bad filter/flags: a bad_input
    // Error (the caller answers 400).
    // `cancelled` (the client hung up) stops a slow filter compile at once.
    static Result<std::unique_ptr<TraceStream>> start(CliConfig cfg, StreamTarget target, StreamLimits limits,
                                                      Metrics& metrics, NodeNetns* node = nullptr,
                                                      std::function<bool()> cancelled = {});
    ~TraceStream();  // detaches (if finish() did not)

    // The first line: what was attached.
    std::string start_record() const;
    // Waits up to ~100 ms for events; returns the lines to send now (events,
    // a loss record when losses grew, a heartbeat at least twice a second).
    // When the session ends (limit, duration, `shutting_down`, an error) the
    // lines end with the summary and done() becomes true.
    std::vector<std::string> step(bool shutting_down);
    // The client went away: detach now, no more lines.
    void abandon();
    bool done() const { return done_; }
    const std::string& ended() const { return ended_; }

  private:
    TraceStream() = default;
    void on_event(const pwru_event& ev, const RecordExtras& extras, std::vector<std::string>& out);
    void finish(const std::string& why, std::vector<std::string>& out);
    void add_loss_record(std::vector<std::string>& out, bool force);
    int64_t wall_now() const;
    std::set<uint32_t> node_set(const NodeNetnsSnapshot& snap) const;
    void refresh_node_scope(std::vector<std::string>& out);

    StreamTarget target_;
    NodeNetns* node_ = nullptr;
    uint64_t node_generation_ = 0;
    size_t node_netns_count_ = 0;
    StreamLimits limits_;
    Metrics* metrics_ = nullptr;
    std::unique_ptr<TracePipeline> pipeline_;
    AttachStats attach_;
    std::chrono::steady_clock::time_point started_, last_heartbeat_;
    double tokens_ = 0;
    std::chrono::steady_clock::time_point tokens_at_;
    uint64_t sent_ = 0, rate_limited_ = 0;
    uint64_t reported_ringbuf_full_ = 0, reported_rate_limited_ = 0, reported_recursion_misses_ = 0;
    int64_t watermark_ns_ = 0;
    std::map<std::pair<std::string, std::string>, uint64_t> drops_;  // (func, reason) -> count
    std::optional<FirstDropVerdict> first_drops_;                    // set once the backend is known
    bool detached_ = false, done_ = false;
    std::string ended_;
};

}  // namespace pwru::agent
