#include "tracer/events/trajectory_summary.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tracer/events/drop_verdict.h"
#include "tracer/events/output_format.h"

namespace pwru {
namespace {

// The function part of "nft_do_chain+0x46f [mod]".
std::string function_of(const std::string& location) { return location.substr(0, location.find_first_of("+ ")); }

}  // namespace

std::string drop_line(const EventRecord& e) {
    // The tracepoint's location names the function that dropped it. A probed
    // drop function (sk_skb_reason_drop) is itself the place, unless its caller
    // is known (--output-caller): that is where the kernel dropped it.
    std::string where = !e.location.empty()                                         ? function_of(e.location)
                        : !e.caller.empty() && function_reports_drop_reason(e.func) ? e.caller
                                                                                    : e.func;
    std::string iface = e.ifname.empty() ? std::to_string(e.ifindex) : e.ifname + ":" + std::to_string(e.ifindex);
    return "dropped in " + where + " at " + iface + " in netns " + std::to_string(e.netns) + ": " + e.drop_reason;
}

void TrajectorySummary::add(const EventRecord& e) {
    auto it = open_.find(e.skb);
    if (it == open_.end()) {
        if (done_.size() + open_list_.size() >= max_kept_) {
            ++overflow_;
            return;
        }
        it = open_.emplace(e.skb, open_list_.size()).first;
        open_list_.push_back(Trajectory{e.skb, {}, {}, false, {}});
    }
    Trajectory& t = open_list_[it->second];
    if (t.tuple.empty() && e.has_tuple) t.tuple = tuple_string(e, false);
    if (t.path.empty() || t.path.back() != e.func) t.path.push_back(e.func);
    // The packet's drop is its first verdict: what follows it (another drop
    // function it calls, the frees) does not move the place or the reason.
    if (is_drop(e) && !t.dropped) {
        t.dropped = true;
        t.drop_line = drop_line(e);
    }
    if (end_functions_.count(e.func)) finish(e.skb);
}

void TrajectorySummary::finish(uint64_t skb) {
    auto it = open_.find(skb);
    if (it == open_.end()) return;
    size_t idx = it->second;
    done_.push_back(std::move(open_list_[idx]));
    open_.erase(it);
    // Keep open_list_ dense: move the last open trajectory into the hole.
    if (idx != open_list_.size() - 1) {
        open_list_[idx] = std::move(open_list_.back());
        open_[open_list_[idx].skb] = idx;
    }
    open_list_.pop_back();
}

std::vector<Trajectory> TrajectorySummary::trajectories() const {
    std::vector<Trajectory> all = done_;
    all.insert(all.end(), open_list_.begin(), open_list_.end());
    return all;
}

size_t TrajectorySummary::dropped_count() const {
    size_t n = 0;
    for (const auto& t : done_) n += t.dropped;
    for (const auto& t : open_list_) n += t.dropped;
    return n;
}

std::string TrajectorySummary::text(size_t max_paths) const {
    auto all = trajectories();
    std::string out = "Trajectories: " + std::to_string(all.size()) + " packets, " + std::to_string(dropped_count()) +
                      " dropped" + (overflow_ ? " (" + std::to_string(overflow_) + " more not kept)" : "") + "\n";
    size_t shown = 0;
    for (const auto& t : all) {
        if (shown++ >= max_paths) {
            out += "  ... " + std::to_string(all.size() - max_paths) + " more\n";
            break;
        }
        out += fmt::format("  {:#x} {}:", t.skb, t.tuple);
        for (size_t i = 0; i < t.path.size(); ++i) out += (i ? " > " : " ") + t.path[i];
        out += "\n";
    }
    for (const auto& t : all)
        if (t.dropped) out += "  " + t.drop_line + "\n";
    return out;
}

nlohmann::json TrajectorySummary::json() const {
    nlohmann::json packets = nlohmann::json::array();
    for (const auto& t : trajectories()) {
        nlohmann::json p{{"skb", fmt::format("{:#x}", t.skb)}, {"tuple", t.tuple}, {"path", t.path}};
        if (t.dropped) p["drop"] = t.drop_line;
        packets.push_back(std::move(p));
    }
    return {{"type", "summary"}, {"packets", std::move(packets)}, {"not_kept", overflow_}};
}

}  // namespace pwru
