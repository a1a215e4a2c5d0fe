// A tracing session: plan -> load -> attach -> ready -> poll -> detach.
//
// The session owns the BPF object, its attachments (one owner per kind, made
// by tracer/attach/'s factories) and the ring buffer, and releases them in
// reverse order (attachments first, newest first, so no program runs while
// the rest goes away). Nothing is pinned: a killed process leaves nothing
// behind. session.cc plans, loads and polls; session_attach.cc attaches.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "pwru_abi.h"
#include "tracer/attach/attach_stats.h"
#include "tracer/attach/attachment.h"
#include "tracer/attach/plan.h"
#include "tracer/events/loss_counters.h"
#include "tracer/kernel/bpf_owners.h"
#include "tracer/kernel/bpf_prog_list.h"
#include "tracer/kernel/kallsyms.h"
#include "tracer/trace_options.h"
#include "tracer/util/result.h"

struct pwru_bpf;

namespace pwru {

// The optional parts of a record, null when not asked for.
struct RecordExtras {
    const pwru_field_values* fields = nullptr;  // --output-skb-metadata
    const pwru_bpfmap* bpfmap = nullptr;        // --output-bpfmap (filled when the event's flags say so)
    const pwru_stack* stack = nullptr;          // --output-stack / --output-caller (event.stack_frames of it)
    std::string_view skb_dump;                  // --output-skb: the text, not NUL-terminated
    std::string_view shinfo_dump;               // --output-skb-shared-info
    const pwru_packet* packet = nullptr;        // --output-pcap
};
using EventFn = std::function<void(const pwru_event&, const RecordExtras&)>;

class Session {
  public:
    // Discovers targets, chooses the backend, compiles and translates the
    // filter. Touches no probe yet: `pwru --dry-run` stops here.
    static Result<std::unique_ptr<Session>> create(const TraceOptions& opts);
    // The same for opts.backend without probing whether it attaches: lets
    // tests prove that every program variant passes this kernel's verifier.
    static Result<std::unique_ptr<Session>> create_unprobed(const TraceOptions& opts);
    ~Session();

    const Plan& plan() const { return plan_; }
    const TraceOptions& options() const { return opts_; }

    // Opens the object, writes the configuration, injects the filter, loads.
    Result<void> load();
    // Attaches every target. Fails (nothing left attached) when nothing at all attaches.
    Result<AttachStats> attach(const ProgressFn& progress = nullptr);
    // --filter-trace-tc / --filter-trace-xdp (after load(), before start()):
    // an fentry program on every loaded program of that kind. A kernel that
    // refuses fentry is reported in the stats (refused), not as an error.
    Result<BpfProgAttachStats> attach_bpf_programs(BpfProgKind kind);
    // --filter-non-skb-funcs (kprobe backends, after attach()): a kprobe on
    // each function that is not already traced as an skb function.
    Result<AttachStats> attach_non_skb_funcs();
    // --filter-track-skb (called by attach()): on the kprobe backends, a kprobe
    // and a kretprobe on each of kClonedBy, so that a tracked skb's clones and
    // copies are tracked too. A function that cannot be probed is a warning.
    // The tracepoint backend has no hook for them: a notice says so.
    void attach_clone_tracking();
    // The descriptor of a loaded program of the object, -1 when it is not loaded
    // (tests check which programs a configuration loads).
    int program_fd(const std::string& name) const;
    // Lets the programs emit events (set after attach: no half-attached trajectories).
    void start();
    // Waits up to timeout_ms for events and hands each to `fn`. Returns how many.
    // max_records > 0 stops after that many: the rest wait in the ring buffer
    // (whose overflow the programs count), so a caller that holds what it got
    // until the poll returns (pwru-agent) holds a bounded amount under a flood.
    Result<int> poll(int timeout_ms, const EventFn& fn, size_t max_records = 0);
    LossCounters counters() const;
    // pwru-agent's node scope (options().node_netns set, after load()): makes
    // `netns` the node's set of netns inodes, at run time.
    Result<void> set_node_netns(const std::set<uint32_t>& netns);
    // Stops events and destroys every attachment, newest first (kprobes in
    // parallel: see kprobe_teardown.h).
    void detach();

    // /proc/kallsyms, read once per session and shared (names for events and
    // stacks, kfree_skbmem for --filter-track-skb, addresses for kprobe-multi).
    Result<std::shared_ptr<const Kallsyms>> kallsyms();

    // Tests of the filter that can never be true (`ip proto 999`): cbpf_lint.h.
    const std::vector<std::string>& filter_warnings() const;

    // Number of instructions of each loaded program (after the filter splice).
    size_t max_program_insns() const { return max_insns_; }

  private:
    Session() = default;
    static Result<std::unique_ptr<Session>> create_for(const TraceOptions& opts, Backend backend,
                                                       const std::string& why);
    Result<void> configure();

    TraceOptions opts_;
    Plan plan_;
    std::set<uint32_t> node_netns_;  // what the node_netns map holds
    struct Filters;
    std::unique_ptr<Filters> filters_;
    std::unique_ptr<pwru_bpf, void (*)(pwru_bpf*)> skel_{nullptr, nullptr};
    // What attach() and the attach_* calls attached, in that order; detach()
    // destroys them newest first (tracer/attach/attachment.h).
    std::vector<std::unique_ptr<Attachment>> attachments_;
    RingBufferPtr ringbuf_;
    std::optional<Result<std::shared_ptr<const Kallsyms>>> kallsyms_;
    const EventFn* current_fn_ = nullptr;
    size_t poll_limit_ = 0;  // poll()'s max_records (0: none) and the records seen so far
    size_t polled_ = 0;
    size_t max_insns_ = 0;

    static int on_sample(void* ctx, void* data, size_t size);

    // --filter-trace-tc / -xdp: a copy of the object per traced program (it
    // shares the maps of skel_) with its fentry link (session_attach.cc).
    Result<std::unique_ptr<Attachment>> load_prog_tracer(const LoadedBpfProg& target, uint32_t index);
};

}  // namespace pwru
