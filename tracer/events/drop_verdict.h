// What counts as a drop, in one place for the tracer's summary, its JSON, the
// agent's stream and kubectl-pwru's report: only what the kernel itself calls
// a drop, and for a packet only its first such verdict.
//
// A reason is shown (and a packet called dropped) only where the value is the
// kernel's drop verdict: the kfree_skb tracepoint's reason and the reason
// argument of the drop functions named in drop_verdict.cc. Any other function
// with an `enum skb_drop_reason` parameter (skb_release_data, skb_release_all,
// __napi_kfree_skb, ...) gets a value that is not a verdict (on 6.12 every
// __kfree_skb passes SKB_DROP_REASON_NOT_SPECIFIED down to skb_release_data),
// and a static function's real calling convention may differ from its BTF
// prototype, so its "reason" register may hold anything.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>

#include "tracer/events/event_record.h"

namespace pwru {

// A kernel function whose `enum skb_drop_reason` argument is the drop verdict
// (the kprobe backends decode it; every other function is shown without one).
bool function_reports_drop_reason(std::string_view func);

// A tracepoint whose `enum skb_drop_reason` argument is the drop verdict.
bool tracepoint_reports_drop_reason(std::string_view tracepoint);

// A reason name that means dropped: not empty, not SKB_CONSUMED, not
// SKB_NOT_DROPPED_YET (the enum's two values that are not drops).
bool is_drop_reason(std::string_view reason);
inline bool is_drop(const EventRecord& e) { return is_drop_reason(e.drop_reason); }

// The last event of an skb: after it the address may hold another packet.
// kprobes: kfree_skbmem (the drop and release functions run before it);
// tracepoints: kfree_skb and consume_skb (the skb is freed right after).
bool tracepoint_ends_skb(std::string_view tracepoint);
std::set<std::string> skb_end_functions(bool tracepoint_backend);
// Both backends' end functions, for a reader that cannot tell them apart
// (kubectl-pwru's report of a recorded timeline).
std::set<std::string> skb_end_functions_any_backend();

// Per skb, its first drop verdict: add() says whether this event is it.
// Later drops of the same packet (a drop function calling another one, the
// frees after it) are not new drops. The skb is forgotten at its end function.
class FirstDropVerdict {
  public:
    explicit FirstDropVerdict(std::set<std::string> end_functions) : end_functions_(std::move(end_functions)) {}
    // True when e is a drop and the first of its skb since the skb was last ended.
    bool add(const EventRecord& e);
    size_t remembered() const { return dropped_.size(); }

    // Bound on the skbs remembered: an skb whose end was filtered out or lost
    // would stay forever; past the bound all are forgotten (at worst a later
    // drop of one of them counts again).
    static constexpr size_t kMaxRemembered = 65536;

  private:
    std::set<std::string> end_functions_;
    std::unordered_set<uint64_t> dropped_;  // skbs whose verdict was given
};

}  // namespace pwru
