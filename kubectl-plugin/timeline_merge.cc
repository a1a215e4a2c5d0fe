#include "kubectl-plugin/timeline_merge.h"

#include <algorithm>
#include <utility>

namespace pwru::plugin {

const char* stream_state_name(StreamState s) {
    switch (s) {
        case StreamState::Connecting: return "connecting";
        case StreamState::Connected: return "connected";
        case StreamState::Unavailable: return "unavailable";
        case StreamState::Error: return "error";
        case StreamState::Ended: return "ended";
    }
    return "?";
}

size_t TimelineMerge::add_stream(std::string name, int64_t now_ns) {
    streams_.push_back(Stream{.name = std::move(name), .last_heard_ns = now_ns});
    return streams_.size() - 1;
}

void TimelineMerge::heard(size_t stream, int64_t now_ns) {
    Stream& s = streams_.at(stream);
    s.last_heard_ns = std::max(s.last_heard_ns, now_ns);
    if (s.silent) {
        // It speaks again: it holds the others back again from now on.
        s.silent = false;
        set_state(stream, StreamState::Connected, "heard from again");
    } else if (s.state == StreamState::Connecting) {
        set_state(stream, StreamState::Connected, "");
    }
}

void TimelineMerge::on_event(size_t stream, EventRecord ev, int64_t now_ns) {
    heard(stream, now_ns);
    const int64_t ts = ev.wall_ns;
    if (ts < released_ns_) {
        // Something newer went out already: show it now, marked, never drop it.
        pending_.push_back(
            MergedItem{.kind = MergedItem::Kind::Event, .stream = stream, .event = std::move(ev), .late = true});
        return;
    }
    heap_.push_back(Held{ts, stream, seq_++, std::move(ev)});
    std::push_heap(heap_.begin(), heap_.end(), Later{});
    // Bounded memory: past the cap the oldest goes out early, in order.
    while (heap_.size() > opts_.max_buffered) release_one(pending_);
    peak_buffered_ = std::max(peak_buffered_, heap_.size());
}

void TimelineMerge::on_heartbeat(size_t stream, int64_t watermark_ns, int64_t now_ns) {
    heard(stream, now_ns);
    Stream& s = streams_.at(stream);
    s.watermark_ns = std::max(s.watermark_ns, watermark_ns);
}

void TimelineMerge::on_status(size_t stream, StreamState state, std::string message, int64_t now_ns) {
    Stream& s = streams_.at(stream);
    s.last_heard_ns = std::max(s.last_heard_ns, now_ns);
    s.silent = false;
    set_state(stream, state, std::move(message));
}

void TimelineMerge::set_state(size_t stream, StreamState state, std::string message) {
    Stream& s = streams_.at(stream);
    if (s.state == state && message.empty()) return;
    s.state = state;
    pending_.push_back(
        MergedItem{.kind = MergedItem::Kind::Status, .stream = stream, .state = state, .message = std::move(message)});
}

void TimelineMerge::mark_silent_streams(int64_t now_ns) {
    for (size_t i = 0; i < streams_.size(); ++i) {
        Stream& s = streams_[i];
        bool live = s.state == StreamState::Connecting || s.state == StreamState::Connected;
        if (!live || s.silent || now_ns - s.last_heard_ns < opts_.silence_ns) continue;
        s.silent = true;
        const std::string secs = std::to_string((now_ns - s.last_heard_ns) / 1'000'000'000);
        // Before its start record the agent is loading and attaching (seconds
        // with thousands of kprobes): not the same as a stream gone quiet.
        set_state(i, StreamState::Unavailable,
                  s.state == StreamState::Connecting ? "no start record after " + secs + " s (still attaching?)"
                                                     : "no heartbeat for " + secs + " s");
    }
}

// The time up to which nothing older can still arrive from a stream that is
// heard from, capped so that no event waits longer than max_delay.
int64_t TimelineMerge::release_horizon(int64_t now_ns) const {
    int64_t horizon = INT64_MAX;
    for (const Stream& s : streams_) {
        bool holds = (s.state == StreamState::Connecting || s.state == StreamState::Connected) && !s.silent;
        if (holds) horizon = std::min(horizon, s.watermark_ns);
    }
    return std::max(horizon, now_ns - opts_.max_delay_ns);
}

void TimelineMerge::release_one(std::vector<MergedItem>& out) {
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    Held h = std::move(heap_.back());
    heap_.pop_back();
    released_ns_ = std::max(released_ns_, h.ts);
    out.push_back(MergedItem{.kind = MergedItem::Kind::Event, .stream = h.stream, .event = std::move(h.event)});
}

std::vector<MergedItem> TimelineMerge::drain(int64_t now_ns) {
    mark_silent_streams(now_ns);
    std::vector<MergedItem> out = std::move(pending_);
    pending_.clear();
    const int64_t horizon = release_horizon(now_ns);
    while (!heap_.empty() && heap_.front().ts <= horizon) release_one(out);
    return out;
}

std::vector<MergedItem> TimelineMerge::finish() {
    std::vector<MergedItem> out = std::move(pending_);
    pending_.clear();
    while (!heap_.empty()) release_one(out);
    return out;
}

}  // namespace pwru::plugin
