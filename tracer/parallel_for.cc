#include "tracer/parallel_for.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace pwru {

void parallel_for(size_t n, unsigned threads, const std::function<void(size_t)>& fn, int cpu) {
    if (cpu < 0 && (threads <= 1 || n <= 1)) {
        for (size_t i = 0; i < n; ++i) fn(i);
        return;
    }
    std::atomic<size_t> next{0};
    auto worker = [&] {
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            (void)sched_setaffinity(0, sizeof(set), &set);  // refused: run anywhere
        }
        for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
    };
    std::vector<std::jthread> pool;
    size_t count = std::max<size_t>(1, std::min<size_t>(threads, n));
    if (cpu < 0) --count;  // the caller is one of them
    pool.reserve(count);
    for (size_t t = 0; t < count; ++t) pool.emplace_back(worker);
    if (cpu < 0) worker();
}  // the jthreads join here

int first_allowed_cpu() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) return c;
    return 0;
}

}  // namespace pwru
