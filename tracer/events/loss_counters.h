// What the kernel side counted: events sent, events lost (and why), hits the
// filters turned away. One shape for pwru's and pwru-agent's loss records.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace pwru {

struct LossCounters {
    uint64_t events = 0;
    uint64_t ringbuf_full = 0;
    std::vector<uint64_t> ringbuf_full_per_cpu;  // index = CPU
    // Hits the kernel did not run our program for, because a BPF program was
    // already running on that CPU (the kernel's per-program recursion_misses).
    uint64_t recursion_misses = 0;
    uint64_t filtered_out = 0;
    uint64_t filter_nonlinear = 0;  // filter needed bytes in paged fragments: no match

    uint64_t lost() const { return ringbuf_full + recursion_misses; }
};

// {"type":"loss", "ringbuf_full", "ringbuf_full_per_cpu", "recursion_misses",
// "events", "filtered_out", "filter_nonlinear"}: pwru's record as is; the agent
// adds its node, its rate-limited count and the time.
nlohmann::json loss_record(const LossCounters& c);

}  // namespace pwru
