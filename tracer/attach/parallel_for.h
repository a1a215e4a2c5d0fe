// Runs work items on a few threads. For kernel calls that mostly wait (RCU
// grace periods, code patching on every CPU): several in flight let their
// waits overlap.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

namespace pwru {

// fn(0..n-1), each thread taking the next index; returns when all returned.
// threads <= 1 runs in the caller, in order.
void parallel_for(size_t n, unsigned threads, const std::function<void(size_t)>& fn);

// Items bound to a CPU: run by threads pinned to it (cpu < 0: unpinned).
struct CpuGroup {
    int cpu = -1;
    std::vector<size_t> items;
};

// fn(item) for every item of every group, `threads_per_group` threads per group,
// each pinned to its group's CPU (if the pin is refused, it runs unpinned). The
// caller's own affinity is left alone. Returns when all returned.
void run_on_cpus(const std::vector<CpuGroup>& groups, unsigned threads_per_group,
                 const std::function<void(size_t)>& fn);

// The CPUs this process may run on, in order (just {0} when that cannot be read).
std::vector<int> allowed_cpus();

}  // namespace pwru
