// Runs fn(0..n-1) on a few threads, each taking the next index. For kernel
// calls that mostly sleep (RCU grace periods, ftrace code patching): several
// in flight let their waits overlap.
#pragma once

#include <cstddef>
#include <functional>

namespace pwru {

// Returns when every fn(i) has returned. With cpu < 0 and threads <= 1, runs
// in the caller, in order. With cpu >= 0 the work runs on threads pinned to
// that CPU (the caller's own affinity is left alone); if the pin is refused,
// they run unpinned.
void parallel_for(size_t n, unsigned threads, const std::function<void(size_t)>& fn, int cpu = -1);

// The first CPU this process may run on (0 when that cannot be read).
int first_allowed_cpu();

}  // namespace pwru
