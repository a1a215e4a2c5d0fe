// Detaching thousands of classic kprobes. Each one costs the kernel several
// serialized waits (measured on 6.12: synchronize_rcu_tasks_trace when the BPF
// program leaves the perf event, under bpf_event_mutex; synchronize_rcu when
// the perf event is released, under event_mutex; an ftrace code update to
// disarm; synchronize_rcu again in unregister_kprobe). One by one that is
// minutes for 1,500 kprobes. Closing from several threads keeps each of those
// stages busy at once, so the waits overlap.
#pragma once

#include <cstddef>
#include <vector>

#include "tracer/bpf_owners.h"
#include "tracer/kprobe_links.h"

namespace pwru {

// Threads that attach and detach classic kprobes and kprobe-multi links.
// PWRU_KPROBE_THREADS overrides (1 = one by one, the way to measure the gain).
unsigned kprobe_threads();
// The CPU the classic kprobes' perf events live on and their attach/detach
// threads run on; -1 (PWRU_KPROBE_PIN=0) to leave threads unpinned, events on CPU 0.
int kprobe_cpu();

struct TeardownStats {
    size_t links = 0;
    unsigned threads = 0;
    double disable_seconds = 0;  // PERF_EVENT_IOC_DISABLE of every kprobe
    double seconds = 0;          // all of it
};

// Disables every kprobe first (events stop at once), then closes the links
// and perf events on `threads` threads. Leaves `links` empty.
TeardownStats tear_down_kprobes(std::vector<KprobeLink>& links, unsigned threads, int cpu);

// bpf_link__destroy of every link on `threads` threads. Leaves `links` empty.
TeardownStats tear_down_links(std::vector<LinkPtr>& links, unsigned threads);

}  // namespace pwru
