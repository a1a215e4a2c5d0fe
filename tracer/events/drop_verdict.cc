#include "tracer/events/drop_verdict.h"

#include <algorithm>
#include <array>

namespace pwru {
namespace {

// The drop functions: their `enum skb_drop_reason` argument is the verdict the
// kernel gives the packet (the value the kfree_skb tracepoint then reports).
// All are exported (EXPORT_SYMBOL), so modules call them: they keep the
// standard calling convention their BTF prototype describes, which a static
// function need not (gcc's IPA may drop or reorder its arguments).
// - kfree_skb_reason(skb, reason): since 5.17 (c504e5c2f964 "net: skb:
//   introduce kfree_skb_reason()"); from 6.11 a static inline wrapper of
//   sk_skb_reason_drop(NULL, skb, reason), so only older kernels have it to probe.
// - sk_skb_reason_drop(sk, skb, reason): since 6.11 (ba8de796baf4 "net:
//   introduce sk_skb_reason_drop function"); kfree_skb() and kfree_skb_reason()
//   end there. cilium/pwru shows a reason on these two only.
// - kfree_skb_list_reason(segs, reason): the verdict of a list of segments
//   (kfree_skb_list() passes NOT_SPECIFIED: a drop).
// - dev_kfree_skb_any_reason / dev_kfree_skb_irq_reason(skb, reason): the
//   drivers' drop (dev_consume_skb_*() passes SKB_CONSUMED: not a drop); the
//   irq variant defers the free to net_tx_action, which never calls the two above.
// Subsystems with their own reasons (openvswitch, mac80211) pass them through
// kfree_skb_reason() / sk_skb_reason_drop(); their own helpers are static inline.
// Deliberately NOT here, although their BTF has an skb_drop_reason parameter:
// skb_release_data, skb_release_all (static; on 6.12 every __kfree_skb() passes
// them SKB_DROP_REASON_NOT_SPECIFIED, whatever happened to the packet),
// __napi_kfree_skb (a release after the verdict was traced), tcp_drop_reason
// (static; it calls sk_skb_reason_drop, which reports the verdict).
constexpr std::array<std::string_view, 5> kDropFunctions = {"kfree_skb_reason", "sk_skb_reason_drop",
                                                            "kfree_skb_list_reason", "dev_kfree_skb_any_reason",
                                                            "dev_kfree_skb_irq_reason"};

}  // namespace

bool function_reports_drop_reason(std::string_view func) {
    return std::find(kDropFunctions.begin(), kDropFunctions.end(), func) != kDropFunctions.end();
}

// kfree_skb(skb, location, reason[, rx_sk]): the reason since 5.17. Its twin
// consume_skb has none (a consumed packet is not dropped).
bool tracepoint_reports_drop_reason(std::string_view tracepoint) { return tracepoint == "kfree_skb"; }

bool is_drop_reason(std::string_view reason) {
    return !reason.empty() && reason != "SKB_CONSUMED" && reason != "SKB_NOT_DROPPED_YET";
}

bool tracepoint_ends_skb(std::string_view tracepoint) {
    return tracepoint == "kfree_skb" || tracepoint == "consume_skb";
}

std::set<std::string> skb_end_functions(bool tracepoint_backend) {
    if (tracepoint_backend) return {"kfree_skb", "consume_skb"};
    return {"kfree_skbmem"};
}

std::set<std::string> skb_end_functions_any_backend() {
    std::set<std::string> all = skb_end_functions(true);
    all.merge(skb_end_functions(false));
    return all;
}

bool FirstDropVerdict::add(const EventRecord& e) {
    bool first = false;
    if (is_drop(e)) {
        if (dropped_.size() >= kMaxRemembered) dropped_.clear();
        first = dropped_.insert(e.skb).second;
    }
    if (end_functions_.count(e.func)) dropped_.erase(e.skb);
    return first;
}

}  // namespace pwru
