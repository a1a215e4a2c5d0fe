#include "kubectl-plugin/trace_session.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pwru::plugin {

int64_t wall_now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

TraceSession::TraceSession(const PluginOptions& o, std::ostream& out, std::ostream& err)
    : o_(o), out_(out), err_(err), fmt_(o.output), ready_(o.ready_file, 0), t0_(wall_now_ns()) {
    if (o.correlate) correlator_.emplace();
}

TraceSession::~TraceSession() {
    stop_all();
    queue_.close();
    streams_.clear();  // joins the threads
}

void TraceSession::add_stream(const TraceTarget& target, AgentConnector connect) {
    size_t id = merge_.add_stream(target.node, wall_now_ns());
    streams_.push_back(
        std::make_unique<AgentStream>(id, target, std::move(connect), trace_request_body(o_, target), queue_));
    tally_[target.node];
    if (!target.pod.empty()) pod_namespaces_.insert(target.ns);
}

void TraceSession::stop_all() {
    if (stopping_) return;
    stopping_ = true;
    for (auto& s : streams_) s->stop();
}

bool TraceSession::past_hard_deadline() const { return std::chrono::steady_clock::now() > hard_deadline_; }

void TraceSession::run(const std::atomic<bool>& interrupted) {
    for (auto& s : streams_) s->start();
    ready_ = ReadyFile(o_.ready_file, streams_.size());
    open_streams_ = streams_.size();
    OutputOptions shown = o_.output;
    shown.pod_with_namespace = pod_namespaces_.size() > 1;  // POD alone would be ambiguous
    fmt_ = OutputFormatter(shown);
    if (!o_.output.json) out_ << fmt_.header() << "\n";
    // The agents end their traces after --max-duration; should one not (a cut
    // tunnel that never errors), the plugin still ends: attach time plus a margin.
    if (o_.max_duration_s > 0)
        hard_deadline_ =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(o_.max_duration_s * 1000) + 60'000);
    auto deadline_after_stop = std::chrono::steady_clock::time_point::max();
    while (open_streams_ > 0) {
        if (interrupted && !stopping_) stop_all();
        if (!stopping_ && past_hard_deadline()) {
            err_ << "kubectl-pwru: not every agent ended its trace within --max-duration plus 60 s; stopping\n";
            stop_all();
        }
        if (stopping_ && deadline_after_stop == std::chrono::steady_clock::time_point::max())
            deadline_after_stop = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        if (std::chrono::steady_clock::now() > deadline_after_stop) break;
        wait_for_messages();
        print(merge_.drain(wall_now_ns()));
        // A packet is reported once nothing of it can still arrive: a
        // window after its last event, counted from the newest event shown
        // or, when the nodes are quiet, from the merge's longest hold.
        if (correlator_)
            print_trajectories(correlator_->close_idle(
                std::max(newest_event_ns_, wall_now_ns() - TimelineMerge::Options{}.max_delay_ns)));
        write_ready_file_when_due();
    }
    stop_all();
    queue_.close();
    print(merge_.finish());
    if (correlator_) print_trajectories(correlator_->close_all());
    streams_.clear();  // joins the threads
}

// Takes the streams' messages for up to 100 ms: a steady flow of events (no
// 100 ms gap) would otherwise keep this reading and print nothing until it stops.
void TraceSession::wait_for_messages() {
    const auto batch_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
    StreamMessage m;
    while (std::chrono::steady_clock::now() < batch_end && queue_.pop(m, 100)) {
        apply(m);
        if (open_streams_ == 0) break;
    }
}

void TraceSession::apply(StreamMessage& m) {
    const int64_t now = wall_now_ns();
    NodeTally& nt = tally_[target_of(m.stream).node];
    switch (m.kind) {
        case StreamMessage::Kind::Event:
            label_event(m.event, target_of(m.stream));
            merge_.on_event(m.stream, std::move(m.event), now);
            break;
        case StreamMessage::Kind::Heartbeat: merge_.on_heartbeat(m.stream, m.watermark_ns, now); break;
        case StreamMessage::Kind::Start: on_start(m, now); break;
        case StreamMessage::Kind::Loss:
            nt.ringbuf_full = m.record.value("ringbuf_full", nt.ringbuf_full);
            nt.rate_limited = m.record.value("rate_limited", nt.rate_limited);
            break;
        case StreamMessage::Kind::Summary: on_summary(m, now); break;
        case StreamMessage::Kind::Error:
            ready_.on_failed(m.stream);
            merge_.on_status(m.stream, StreamState::Error, m.message, now);
            break;
        case StreamMessage::Kind::Closed:
            ready_.on_failed(m.stream);
            --open_streams_;
            if (merge_.stream_state(m.stream) != StreamState::Ended &&
                merge_.stream_state(m.stream) != StreamState::Error && !agent_went_.contains(m.stream))
                merge_.on_status(m.stream, StreamState::Ended, m.message, now);
            break;
    }
}

// The agent attached: the node is connected, with what it attached.
void TraceSession::on_start(const StreamMessage& m, int64_t now) {
    ready_.on_attached(m.stream, target_of(m.stream).node);
    merge_.on_status(m.stream, StreamState::Connected,
                     fmt::format("{} functions attached with {} in {:.1f} s", m.record.value("attached", 0),
                                 m.record.value("backend", "?"), m.record.value("attach_seconds", 0.0)) +
                         (m.record.contains("warning") ? "; " + m.record.value("warning", "") : ""),
                     now);
}

// The agent's last record: its final loss counters and drops, for the exit summary.
void TraceSession::on_summary(const StreamMessage& m, int64_t now) {
    NodeTally& nt = tally_[target_of(m.stream).node];
    nt.ringbuf_full = std::max<uint64_t>(nt.ringbuf_full, m.record.value("ringbuf_full", uint64_t{0}));
    nt.rate_limited = std::max<uint64_t>(nt.rate_limited, m.record.value("rate_limited", uint64_t{0}));
    if (m.record.contains("drops"))
        for (const auto& d : m.record["drops"])
            nt.drops[d.value("func", "?") + ": " + d.value("reason", "?")] += d.value("count", uint64_t{0});
    const std::string ended = m.record.value("ended", "?");
    if (ended == "shutdown" && !stopping_) {
        // The agent went while the user's trace runs (its pod deleted, restarted
        // or evicted): for the user the node is gone, not done.
        agent_went_.insert(m.stream);
        merge_.on_status(m.stream, StreamState::Unavailable,
                         "its agent shut down mid-trace (pod deleted, restarted or evicted); no longer traced", now);
        return;
    }
    merge_.on_status(m.stream, StreamState::Ended, "trace ended (" + ended + ")", now);
}

// Called after the batch's status lines are out: a reader of FILE finds the
// nodes' "connected" lines already printed.
void TraceSession::write_ready_file_when_due() {
    if (!ready_.due()) return;
    if (auto r = ready_.write(); !r) {
        err_ << "kubectl-pwru: " << r.error().message() << "\n";
        ready_file_failed_ = true;
        stop_all();
    }
}

void TraceSession::print(const std::vector<MergedItem>& items) {
    for (const auto& it : items) {
        if (it.kind == MergedItem::Kind::Status)
            print_status(it);
        else
            print_event(it);
    }
    out_.flush();
}

void TraceSession::print_status(const MergedItem& it) {
    const TraceTarget& t = target_of(it.stream);
    NodeTally& nt = tally_[t.node];
    nt.state = stream_state_name(it.state);
    if (!it.message.empty()) nt.last_message = it.message;
    if (it.state == StreamState::Error) {
        // For the user, on stderr like the other problems; stdout keeps the in-band status.
        err_ << "kubectl-pwru: " << t.label() << " on node " << t.node << ": " << it.message << "\n";
        ++failed_streams_;
    }
    if (o_.output.json) {
        nlohmann::json j = {{"node_status", stream_state_name(it.state)}, {"node", t.node}, {"target", t.label()}};
        if (!it.message.empty()) j["message"] = it.message;
        out_ << j.dump() << "\n";
    } else {
        out_ << "# " << t.node << " (" << t.label() << "): " << stream_state_name(it.state)
             << (it.message.empty() ? "" : ": " + it.message) << "\n";
    }
}

void TraceSession::print_event(const MergedItem& it) {
    if (o_.limit_lines && printed_ >= o_.limit_lines) return;
    NodeTally& nt = tally_[target_of(it.stream).node];
    ++nt.events;
    if (it.late) ++nt.late;
    std::string line = fmt_.format(it.event);
    if (correlator_) {
        // The trajectory each event belongs to: its summary line follows later.
        const uint64_t id = correlator_->add(it.event);
        newest_event_ns_ = std::max(newest_event_ns_, it.event.wall_ns);
        if (o_.output.json && !line.empty() && line.back() == '}')
            line.insert(line.size() - 1, ",\"trajectory\":" + std::to_string(id));
    }
    if (it.late) {
        if (o_.output.json && !line.empty() && line.back() == '}')
            line.insert(line.size() - 1, ",\"late\":true");
        else if (!o_.output.json)
            line += "  (late)";
    }
    out_ << line << "\n";
    if (++printed_ == o_.limit_lines) stop_all();
}

void TraceSession::print_trajectories(const std::vector<PacketTrajectory>& done) {
    for (const auto& t : done) {
        ++trajectories_;
        if (t.nodes.size() > 1) ++multi_node_trajectories_;
        out_ << (o_.output.json ? t.json().dump() : t.text()) << "\n";
    }
    out_.flush();
}

void TraceSession::print_summary() {
    err_ << fmt::format("kubectl-pwru: {:.1f} s\n", double(wall_now_ns() - t0_) / 1e9);
    if (correlator_)
        err_ << fmt::format("  {} packets, {} of them seen on more than one node\n", trajectories_,
                            multi_node_trajectories_);
    for (const auto& [node, nt] : tally_) {
        err_ << fmt::format("  {}: {} events ({} late), lost: {} ring buffer full, {} over the rate limit; {}{}\n",
                            node, nt.events, nt.late, nt.ringbuf_full, nt.rate_limited, nt.state,
                            nt.last_message.empty() ? "" : " (" + nt.last_message + ")");
        for (const auto& [what, n] : nt.drops) err_ << fmt::format("    dropped x{}: {}\n", n, what);
    }
}

}  // namespace pwru::plugin
