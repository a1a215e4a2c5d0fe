// Detaching thousands of classic kprobes. Each one costs the kernel several
// serialized steps (seen on 6.12 in the test VM's stacks: synchronize_rcu_tasks_trace
// when the BPF program leaves the perf event, under bpf_event_mutex;
// synchronize_rcu when the perf event is released, under event_mutex; an ftrace
// code update over every ftrace site to disarm, under ftrace_lock;
// synchronize_rcu again in unregister_kprobe). One by one that is minutes for
// 1,500 kprobes under emulation. Closing from several threads overlaps the
// waits, closing each from its event's CPU spares a cross-CPU call per kprobe;
// the ftrace updates stay one at a time, and they dominate: measured 1.2-2.5x
// over one by one (110-400 kprobes, same VM runs), not more.
#pragma once

#include <cstddef>
#include <vector>

#include "tracer/kernel/bpf_owners.h"
#include "tracer/attach/kprobe_links.h"
#include "tracer/attach/parallel_for.h"

namespace pwru {

// Threads that attach and detach classic kprobes and kprobe-multi links.
// --filter-kprobe-batch (set_kprobe_batch) first, then PWRU_KPROBE_THREADS
// (1 = one by one, the way to measure the gain), else 16.
unsigned kprobe_threads();

// pwru's --filter-kprobe-batch: a process-wide setting, as the flag is (0
// returns to the default). pwru attaches its batches one after the other;
// ours is the number in flight at once, which is what its batches buy.
void set_kprobe_batch(unsigned n);

// Where classic kprobes' perf events live and who works on them: by default
// every event on the first CPU we may use, attached and closed by threads
// pinned there. PWRU_KPROBE_PIN=0: events on CPU 0, threads unpinned (as
// libbpf does).
struct KprobePlacement {
    std::vector<int> cpus;  // {-1}: unpinned
    unsigned threads_per_cpu = 1;
    unsigned threads = 1;  // in all
    // Perf events enabled (as libbpf does; PWRU_KPROBE_ENABLE=1) or left
    // disabled (default: the program runs either way, see open_kprobe_link).
    bool enable_events = false;
};
KprobePlacement kprobe_placement();

// The work items 0..n-1 dealt over the placement's CPUs, round robin.
std::vector<CpuGroup> spread_over_cpus(size_t n, const KprobePlacement& p);

struct TeardownStats {
    size_t links = 0;
    unsigned threads = 0;
    double disable_seconds = 0;  // PERF_EVENT_IOC_DISABLE of every kprobe
    double seconds = 0;          // all of it
};

// Disables every enabled kprobe event first, then closes the links and perf
// events. Leaves `links` empty.
// Each link is closed from a thread on its event's CPU (when pinned).
TeardownStats tear_down_kprobes(std::vector<KprobeLink>& links, const KprobePlacement& p);

// bpf_link__destroy of every link on `threads` threads. Leaves `links` empty.
TeardownStats tear_down_links(std::vector<LinkPtr>& links, unsigned threads);

}  // namespace pwru
