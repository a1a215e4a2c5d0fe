// The exit summary of a run: per traced packet the path it took, as a
// compact list of functions, and for every dropped packet one line
// "dropped in FUNCTION at IFACE in NETNS: REASON".
//
// A "packet" is the run of events of one skb address until the skb is
// freed: kernel addresses are reused, so the free ends the trajectory. Where
// that is depends on the backend (skb_end_functions() in drop_verdict.h).
// What a drop is, and that a packet's drop is its FIRST verdict (never the
// frees after it), is drop_verdict.h's rule too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tracer/events/drop_verdict.h"
#include "tracer/events/event_record.h"

namespace pwru {

struct Trajectory {
    uint64_t skb = 0;
    std::string tuple;              // of its first event with one
    std::vector<std::string> path;  // functions, consecutive repeats folded
    bool dropped = false;           // its first drop verdict, if any
    std::string drop_line;          // "dropped in ... : REASON" of that verdict
};

class TrajectorySummary {
  public:
    explicit TrajectorySummary(std::set<std::string> end_functions = skb_end_functions(false), size_t max_kept = 10000)
        : end_functions_(std::move(end_functions)), max_kept_(max_kept) {}

    void add(const EventRecord& e);
    // Finished trajectories first, then the ones still open, in order of start.
    std::vector<Trajectory> trajectories() const;
    size_t dropped_count() const;

    // Human form (at most `max_paths` paths; every drop line).
    std::string text(size_t max_paths = 20) const;
    nlohmann::json json() const;

  private:
    void finish(uint64_t skb);

    std::set<std::string> end_functions_;
    size_t max_kept_;
    size_t overflow_ = 0;  // trajectories not kept once max_kept was reached
    std::vector<Trajectory> done_;
    std::unordered_map<uint64_t, size_t> open_;  // skb -> index into open_list_
    std::vector<Trajectory> open_list_;
};

// "dropped in FUNCTION at IFACE in NETNS: REASON" for a drop event.
std::string drop_line(const EventRecord& e);

}  // namespace pwru
