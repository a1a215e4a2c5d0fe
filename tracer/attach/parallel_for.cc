#include "tracer/attach/parallel_for.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <thread>

namespace pwru {

void parallel_for(size_t n, unsigned threads, const std::function<void(size_t)>& fn) {
    if (threads <= 1 || n <= 1) {
        for (size_t i = 0; i < n; ++i) fn(i);
        return;
    }
    std::atomic<size_t> next{0};
    auto worker = [&] {
        for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
    };
    std::vector<std::jthread> pool;
    size_t extra = std::min<size_t>(threads, n) - 1;  // the caller is one of them
    pool.reserve(extra);
    for (size_t t = 0; t < extra; ++t) pool.emplace_back(worker);
    worker();
}  // the jthreads join here

void run_on_cpus(const std::vector<CpuGroup>& groups, unsigned threads_per_group,
                 const std::function<void(size_t)>& fn) {
    std::deque<std::atomic<size_t>> next(groups.size());  // atomics neither copy nor move
    std::vector<std::jthread> pool;
    for (size_t g = 0; g < groups.size(); ++g) {
        size_t count = std::min<size_t>(std::max(1u, threads_per_group), groups[g].items.size());
        for (size_t t = 0; t < count; ++t) {
            pool.emplace_back([&, g] {
                const CpuGroup& group = groups[g];
                if (group.cpu >= 0) {
                    cpu_set_t set;
                    CPU_ZERO(&set);
                    CPU_SET(group.cpu, &set);
                    (void)sched_setaffinity(0, sizeof(set), &set);  // refused: run anywhere
                }
                for (size_t i = next[g].fetch_add(1); i < group.items.size(); i = next[g].fetch_add(1))
                    fn(group.items[i]);
            });
        }
    }
}  // the jthreads join here

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &set)) cpus.push_back(c);
    if (cpus.empty()) cpus.push_back(0);
    return cpus;
}

}  // namespace pwru
