// One time-ordered timeline out of several agents' event streams.
//
// Each agent stream carries events (wall-clock nanoseconds, not necessarily in
// order: CPUs share one ring buffer) and heartbeats with a low watermark: "every
// event at or before this time has been sent". An event is released once no
// stream that is still heard from can send anything older, which is the
// smallest watermark among them. Three things keep that from stalling or
// growing without bound:
//   - a stream silent for `silence_ns` stops holding the others back and is
//     reported unavailable (Hubble Relay's in-band node status);
//   - nothing waits longer than `max_delay_ns` past its event time;
//   - past `max_buffered` held events, the oldest are released early.
// An event older than something already released is still shown, marked late:
// never dropped. Pure logic with the clock passed in, so tests drive time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tracer/events/event_record.h"

namespace pwru::plugin {

enum class StreamState { Connecting, Connected, Unavailable, Error, Ended };
const char* stream_state_name(StreamState s);

struct MergedItem {
    enum class Kind { Event, Status };
    Kind kind = Kind::Event;
    size_t stream = 0;
    EventRecord event;                            // Kind::Event
    bool late = false;                            // older than an event already released
    StreamState state = StreamState::Connecting;  // Kind::Status
    std::string message;                          // Kind::Status: why
};

class TimelineMerge {
  public:
    struct Options {
        int64_t max_delay_ns = 2'000'000'000;  // longest hold of an event past its time
        int64_t silence_ns = 5'000'000'000;    // no message this long: the stream stops holding
        size_t max_buffered = 1u << 16;        // events held across all streams
    };

    TimelineMerge() : TimelineMerge(Options{}) {}
    explicit TimelineMerge(Options opts) : opts_(opts) {}

    // A stream per agent connection; `name` is the node, for status messages.
    size_t add_stream(std::string name, int64_t now_ns);

    void on_event(size_t stream, EventRecord ev, int64_t now_ns);
    void on_heartbeat(size_t stream, int64_t watermark_ns, int64_t now_ns);
    // Connected / Unavailable / Error / Ended, with a reason for the user.
    void on_status(size_t stream, StreamState state, std::string message, int64_t now_ns);

    // Everything that may be shown now, in order: status changes first (as
    // they happened), then released events by time.
    std::vector<MergedItem> drain(int64_t now_ns);
    // At the end: everything still held, in order.
    std::vector<MergedItem> finish();

    size_t buffered() const { return heap_.size(); }
    size_t peak_buffered() const { return peak_buffered_; }
    const std::string& stream_name(size_t stream) const { return streams_.at(stream).name; }
    StreamState stream_state(size_t stream) const { return streams_.at(stream).state; }

  private:
    struct Stream {
        std::string name;
        StreamState state = StreamState::Connecting;
        int64_t watermark_ns = INT64_MIN;
        int64_t last_heard_ns = 0;
        bool silent = false;  // reported unavailable for silence, not by its agent
    };
    struct Held {
        int64_t ts;
        size_t stream;
        uint64_t seq;  // arrival order: stable among equal times
        EventRecord event;
    };
    struct Later {
        bool operator()(const Held& a, const Held& b) const {
            if (a.ts != b.ts) return a.ts > b.ts;
            return a.seq > b.seq;
        }
    };

    void heard(size_t stream, int64_t now_ns);
    void set_state(size_t stream, StreamState state, std::string message);
    void mark_silent_streams(int64_t now_ns);
    int64_t release_horizon(int64_t now_ns) const;
    void release_one(std::vector<MergedItem>& out);

    Options opts_;
    std::vector<Stream> streams_;
    std::vector<Held> heap_;           // a min-heap by (time, arrival) through Later
    std::vector<MergedItem> pending_;  // late events and status changes, in arrival order
    int64_t released_ns_ = INT64_MIN;  // time of the newest event released so far
    uint64_t seq_ = 0;
    size_t peak_buffered_ = 0;
};

}  // namespace pwru::plugin
