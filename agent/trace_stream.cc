#include "agent/trace_stream.h"

#include <time.h>

#include <nlohmann/json.hpp>

#include "tracer/events/drop_verdict.h"
#include "tracer/events/loss_counters.h"
#include "tracer/kernel/log.h"

namespace pwru::agent {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Events are stamped (bpf_ktime_get_ns) a few microseconds before they are
// committed to the ring buffer; a drain that starts at T has therefore seen
// every event stamped before T minus this margin.
constexpr int64_t kWatermarkMarginNs = 20'000'000;
constexpr auto kHeartbeatEvery = std::chrono::milliseconds(500);
// Records taken from the ring buffer per step (a few MB of lines at most).
constexpr size_t kMaxRecordsPerStep = 4096;

uint64_t mono_now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

std::string port_list(const std::vector<ScopePort>& ports) {
    std::string s;
    for (const auto& p : ports)
        s += (s.empty() ? "" : ", ") + std::to_string(p.port) + "/" +
             (p.l4 == 17    ? "udp"
              : p.l4 == 132 ? "sctp"
                            : "tcp");
    return s;
}

nlohmann::json ports_json(const std::vector<ScopePort>& ports) {
    json j = json::array();
    for (const auto& p : ports)
        j.push_back({{"port", p.port}, {"protocol", p.l4 == 17 ? "udp" : p.l4 == 132 ? "sctp" : "tcp"}});
    return j;
}

Result<std::unique_ptr<TraceStream>> TraceStream::start(CliConfig cfg, StreamTarget target, StreamLimits limits,
                                                        Metrics& metrics, NodeNetns* node,
                                                        std::function<bool()> cancelled) {
    if (auto r = resolve_cli(cfg); !r) return std::unexpected(r.error());
    cfg.trace.cancelled = std::move(cancelled);
    cfg.trace.ringbuf_bytes = limits.ring_buffer_bytes;
    if (!target.pod.empty()) {
        PodScope scope;
        if (target.host_network) {
            // No netns or address of its own: the node's packets to or from its ports.
            scope.ports = target.ports;
        } else {
            scope.netns_inode = target.netns;
            for (const auto& ip : target.ips) {
                if (scope.addrs.size() == PWRU_SCOPE_ADDRS) break;
                scope.addrs.push_back(ip);
            }
        }
        cfg.trace.pod_scope = scope;
        // follow a packet that matched once across the veth, NAT, encapsulation
        cfg.trace.track_skb = true;
    }

    std::unique_ptr<TraceStream> s(new TraceStream());
    s->target_ = std::move(target);
    s->limits_ = limits;
    s->metrics_ = &metrics;
    if (node) {
        // Only this node's netns: on a shared kernel (kind) the other nodes'
        // agents report what happens in theirs.
        NodeNetnsSnapshot snap = node->snapshot();
        s->node_ = node;
        s->node_generation_ = snap.generation;
        cfg.trace.node_netns = s->node_set(snap);
        s->node_netns_count_ = cfg.trace.node_netns->size();
        if (!snap.warning.empty()) s->target_.warning += (s->target_.warning.empty() ? "" : "; ") + snap.warning;
    } else if (s->target_.host_network) {
        // --node-scope kernel: a hostNetwork pod's ports still mean this
        // node's netns only, not every container's on the kernel.
        cfg.trace.node_netns = std::set<uint32_t>{own_netns_inode()};
    }

    // --debug is not the agent's client's to give: the load error points at
    // the agent's log, which holds the verifier's last lines.
    cfg.trace.verifier_log_hint = "the verifier's last lines are in the agent's log on node " + s->target_.node;
    auto pipeline = TracePipeline::create(cfg.trace);
    if (!pipeline) return std::unexpected(pipeline.error());
    s->pipeline_ = std::move(*pipeline);
    // `ip proto 999`: accepted as pwru does, and said in the start record.
    for (const auto& w : s->pipeline_->session().filter_warnings())
        s->target_.warning += (s->target_.warning.empty() ? "" : "; ") + ("filter: " + w + "; check the expression");
    s->first_drops_.emplace(s->pipeline_->skb_ends());
    if (auto r = s->pipeline_->load(cfg.output); !r) return std::unexpected(r.error());
    auto stats = s->pipeline_->attach();
    if (!stats) return std::unexpected(stats.error());
    s->attach_ = *stats;
    metrics.add_attach(stats->seconds);
    s->pipeline_->start();

    s->started_ = s->tokens_at_ = Clock::now();
    s->last_heartbeat_ = s->started_ - kHeartbeatEvery;  // the first step sends one
    s->tokens_ = limits.max_event_rate;
    s->watermark_ns_ = s->wall_now() - kWatermarkMarginNs;
    return s;
}

TraceStream::~TraceStream() {
    if (pipeline_ && !detached_) pipeline_->detach_and_drain(nullptr);
}

std::set<uint32_t> TraceStream::node_set(const NodeNetnsSnapshot& snap) const {
    std::set<uint32_t> set = snap.netns;
    // The traced pod is this node's even before the next refresh lists it.
    if (target_.netns && !target_.host_network) set.insert(target_.netns);
    return set;
}

// Pods created or deleted while the trace runs join or leave the node scope.
void TraceStream::refresh_node_scope(std::vector<std::string>& out) {
    if (!node_ || detached_) return;
    NodeNetnsSnapshot snap = node_->snapshot();
    if (snap.generation == node_generation_) return;
    node_generation_ = snap.generation;
    auto set = node_set(snap);
    if (auto r = pipeline_->session().set_node_netns(set); !r) {
        spdlog::warn("node scope: {}", r.error().message());
        out.push_back(json{{"type", "warning"}, {"node", target_.node}, {"message", r.error().message()}}.dump());
        return;
    }
    node_netns_count_ = set.size();
}

int64_t TraceStream::wall_now() const { return pipeline_->decoder().clock().to_wall_ns(mono_now_ns()); }

std::string TraceStream::start_record() const {
    json j = {{"type", "start"},
              {"node", target_.node},
              {"namespace", target_.ns},
              {"pod", target_.pod},
              {"netns", target_.netns},
              {"pod_ips", target_.ips},
              {"pod_ports", ports_json(target_.ports)},
              {"host_network", target_.host_network},
              {"node_scope", node_ ? "cri" : "kernel"},
              {"node_netns", node_netns_count_},
              {"backend", backend_name(pipeline_->plan().backend)},
              {"attached", attach_.attached},
              {"ignored", attach_.ignored},
              {"attach_seconds", attach_.seconds},
              {"max_duration_s", limits_.max_duration_s},
              {"max_events", limits_.max_events},
              {"wall_ns", wall_now()}};
    if (!target_.warning.empty()) j["warning"] = target_.warning;
    return j.dump();
}

void TraceStream::on_event(const pwru_event& ev, const RecordExtras& extras, std::vector<std::string>& out) {
    if (done_ || sent_ >= limits_.max_events) return;
    // Token bucket, one second of burst: what is above the rate is counted, not kept.
    auto now = Clock::now();
    tokens_ = std::min(limits_.max_event_rate,
                       tokens_ + limits_.max_event_rate * std::chrono::duration<double>(now - tokens_at_).count());
    tokens_at_ = now;
    if (tokens_ < 1) {
        ++rate_limited_;
        metrics_->lost_rate_limited.fetch_add(1);
        return;
    }
    tokens_ -= 1;
    EventRecord rec = pipeline_->decode(ev, extras);
    rec.node = target_.node;
    rec.pod = target_.pod;
    // A packet's drop is its first verdict (drop_verdict.h), as in pwru's summary.
    if (first_drops_->add(rec)) ++drops_[{rec.func, rec.drop_reason}];
    json j = rec;
    j["type"] = "event";
    j["namespace"] = target_.ns;
    out.push_back(j.dump());
    ++sent_;
    metrics_->events_total.fetch_add(1);
}

void TraceStream::add_loss_record(std::vector<std::string>& out, bool force) {
    LossCounters c = pipeline_->counters();
    if (!force && c.ringbuf_full == reported_ringbuf_full_ && c.recursion_misses == reported_recursion_misses_ &&
        rate_limited_ == reported_rate_limited_)
        return;
    metrics_->lost_recursion.fetch_add(c.recursion_misses - reported_recursion_misses_);
    reported_recursion_misses_ = c.recursion_misses;
    metrics_->lost_ringbuf_full.fetch_add(c.ringbuf_full - reported_ringbuf_full_);
    reported_ringbuf_full_ = c.ringbuf_full;
    reported_rate_limited_ = rate_limited_;
    // pwru's loss record, and what only the agent knows.
    json record = loss_record(c);
    record["node"] = target_.node;
    record["rate_limited"] = rate_limited_;
    record["wall_ns"] = wall_now();
    out.push_back(record.dump());
}

std::vector<std::string> TraceStream::step(bool shutting_down) {
    std::vector<std::string> out;
    if (done_) return out;
    if (shutting_down) {
        finish("shutdown", out);
        return out;
    }
    const int64_t drain_start = wall_now();
    EventFn fn = [&](const pwru_event& ev, const RecordExtras& x) { on_event(ev, x, out); };
    // At most kMaxRecordsPerStep: `out` is held until the step returns, and
    // under a flood one unbounded poll keeps draining while the ring refills
    // (the agent's RSS grew with the flood). The rest waits in the ring
    // buffer, where an overflow is counted as loss.
    auto n = pipeline_->poll(100, fn, kMaxRecordsPerStep);
    if (!n) {
        out.push_back(json{{"type", "error"}, {"node", target_.node}, {"message", n.error().message()}}.dump());
        finish("error", out);
        return out;
    }
    // Only a poll that emptied the ring proves that nothing older than its
    // start is still to come.
    if (static_cast<size_t>(*n) < kMaxRecordsPerStep) watermark_ns_ = drain_start - kWatermarkMarginNs;
    add_loss_record(out, false);
    refresh_node_scope(out);

    pipeline_->refresh_clock_if_due();
    auto now = Clock::now();
    if (sent_ >= limits_.max_events) {
        finish("max_events", out);
    } else if (std::chrono::duration<double>(now - started_).count() >= limits_.max_duration_s) {
        finish("max_duration", out);
    } else if (now - last_heartbeat_ >= kHeartbeatEvery) {
        out.push_back(json{
            {"type", "heartbeat"}, {"node", target_.node}, {"wall_ns", wall_now()}, {"watermark_ns", watermark_ns_}}
                          .dump());
        last_heartbeat_ = now;
    }
    return out;
}

void TraceStream::finish(const std::string& why, std::vector<std::string>& out) {
    if (!detached_) {
        detached_ = true;
        // Traced before the detach: still part of the answer (within the limits).
        pipeline_->detach_and_drain([&](const pwru_event& ev, const RecordExtras& x) { on_event(ev, x, out); });
    }
    add_loss_record(out, false);
    LossCounters c = pipeline_->counters();
    json drops = json::array();
    for (const auto& [key, count] : drops_)
        drops.push_back({{"func", key.first}, {"reason", key.second}, {"count", count}});
    out.push_back(json{
        {"type", "summary"},
        {"node", target_.node},
        {"namespace", target_.ns},
        {"pod", target_.pod},
        {"events", sent_},
        {"ringbuf_full", c.ringbuf_full},
        {"recursion_misses", c.recursion_misses},
        {"rate_limited", rate_limited_},
        {"filtered_out", c.filtered_out},
        {"drops", drops},
        {"ended", why},
        {"wall_ns",
         wall_now()}}.dump());
    ended_ = why;
    done_ = true;
}

void TraceStream::abandon() {
    // Attachments first (Session::detach), then maps, ring buffer and fds:
    // nothing of this session outlives the client.
    pipeline_.reset();
    detached_ = true;
    ended_ = "client";
    done_ = true;
}

}  // namespace pwru::agent
