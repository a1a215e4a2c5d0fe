// The agent's counters, served as Prometheus text on GET /metrics.
// Plain atomics: every session thread adds to them without a lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace pwru::agent {

struct Metrics {
    std::atomic<uint64_t> sessions_active{0};
    std::atomic<uint64_t> sessions_total{0};     // streams started (200 sent)
    std::atomic<uint64_t> sessions_refused{0};   // requests answered with an error status
    std::atomic<uint64_t> events_total{0};       // event records sent
    std::atomic<uint64_t> lost_ringbuf_full{0};  // the kernel's ring buffer was full
    std::atomic<uint64_t> lost_rate_limited{0};  // above --max-event-rate
    std::atomic<uint64_t> lost_recursion{0};     // the kernel skipped our program (BPF recursion)
    std::atomic<uint64_t> attach_count{0};
    std::atomic<uint64_t> attach_micros_total{0};  // sum of attach times

    void add_attach(double seconds) {
        attach_count.fetch_add(1);
        attach_micros_total.fetch_add(static_cast<uint64_t>(seconds * 1e6));
    }
    // Prometheus text exposition format 0.0.4, names prefixed pwru_agent_.
    std::string text() const;
};

}  // namespace pwru::agent
