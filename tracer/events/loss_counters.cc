#include "tracer/events/loss_counters.h"

#include <nlohmann/json.hpp>

namespace pwru {

nlohmann::json loss_record(const LossCounters& c) {
    return {{"type", "loss"},
            {"ringbuf_full", c.ringbuf_full},
            {"ringbuf_full_per_cpu", c.ringbuf_full_per_cpu},
            {"recursion_misses", c.recursion_misses},
            {"events", c.events},
            {"filtered_out", c.filtered_out},
            {"filter_nonlinear", c.filter_nonlinear}};
}

}  // namespace pwru
