// The start-a-trace sequence that pwru (tracer_run.cc), pwru-agent
// (agent/trace_stream.cc) and the benches run, written once:
//   create()  plan: discovery, backend, the filter compiled (Session::create)
//   load()    names first (one /proc/kallsyms read shared with the session,
//             the drop reasons' names from BTF), then the object loaded and
//             the decoder made with its stack reader
//   attach(), start(), poll() / decode(), detach_and_drain()
// What each front end does with the records (pwru's output files and exit
// summary, the agent's stream and its limits) stays its own.
#pragma once

#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "tracer/events/event_record.h"
#include "tracer/events/loss_counters.h"
#include "tracer/events/output_format.h"
#include "tracer/output/event_decoder.h"
#include "tracer/session.h"
#include "tracer/trace_options.h"
#include "tracer/util/result.h"

namespace pwru {

class TracePipeline {
  public:
    // Touches no probe: `pwru --dry-run` prints plan() and stops here.
    static Result<std::unique_ptr<TracePipeline>> create(const TraceOptions& opts);

    Session& session() { return *session_; }
    const Plan& plan() const { return session_->plan(); }

    // Reads the names the decoder needs (a failure is a warning: addresses
    // and numbers are printed instead), then loads the programs. The
    // output's netns names and skb->cb columns come from `output`.
    Result<void> load(const OutputOptions& output);
    Result<AttachStats> attach(const ProgressFn& progress = nullptr) { return session_->attach(progress); }
    void start() { session_->start(); }

    // Session::poll: the raw records; decode() those that are kept.
    Result<int> poll(int timeout_ms, const EventFn& fn, size_t max_records = 0) {
        return session_->poll(timeout_ms, fn, max_records);
    }
    EventRecord decode(const pwru_event& ev, const RecordExtras& extras) { return decoder_->decode(ev, extras); }
    EventDecoder& decoder() { return *decoder_; }
    const EventDecoder& decoder() const { return *decoder_; }
    // The monotonic-to-wall offset read again every 10 s (the wall clock may
    // be stepped while a trace runs).
    void refresh_clock_if_due();

    LossCounters counters() const { return session_->counters(); }
    // Where a packet's trajectory ends on this backend (drop_verdict.h).
    std::set<std::string> skb_ends() const;

    // Stops the programs and destroys every attachment, then hands `drain`
    // (when given) the records traced before the detach: still part of the
    // answer.
    void detach_and_drain(const EventFn& drain);

  private:
    TracePipeline() = default;
    std::unique_ptr<Session> session_;
    std::unique_ptr<EventDecoder> decoder_;
    std::chrono::steady_clock::time_point last_clock_refresh_ = std::chrono::steady_clock::now();
};

}  // namespace pwru
