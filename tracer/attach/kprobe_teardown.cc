#include "tracer/attach/kprobe_teardown.h"

#include <linux/perf_event.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>

#include "tracer/attach/parallel_for.h"

namespace pwru {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Enough to keep every serialized stage of the kernel's teardown busy; the
// threads sleep in the kernel most of the time, so more than the CPUs is fine.
constexpr unsigned kDefaultThreads = 16;
constexpr unsigned kMaxThreads = 256;

std::atomic<unsigned> g_kprobe_batch{0};

}  // namespace

void set_kprobe_batch(unsigned n) { g_kprobe_batch = std::min(n, kMaxThreads); }

unsigned kprobe_threads() {
    if (unsigned batch = g_kprobe_batch.load()) return batch;
    const char* env = std::getenv("PWRU_KPROBE_THREADS");
    if (!env || !*env) return kDefaultThreads;
    char* end = nullptr;
    unsigned long n = std::strtoul(env, &end, 10);
    if (*end != '\0' || n == 0) return kDefaultThreads;
    return static_cast<unsigned>(std::min<unsigned long>(n, kMaxThreads));
}

KprobePlacement kprobe_placement() {
    KprobePlacement p;
    p.threads = kprobe_threads();
    const char* enable = std::getenv("PWRU_KPROBE_ENABLE");
    p.enable_events = enable && std::string(enable) == "1";
    const char* env = std::getenv("PWRU_KPROBE_PIN");
    if (env && std::string(env) == "0") {
        p.cpus = {-1};
        p.threads_per_cpu = p.threads;
        return p;
    }
    // One CPU: spreading the events over both CPUs of the test VM was no faster
    // to attach and about 1.4x slower to detach (399 kprobes, same VM run); the
    // kernel's part is serialized anyway (ftrace_lock, event_mutex).
    p.cpus = {allowed_cpus().front()};
    p.threads_per_cpu = p.threads;
    return p;
}

std::vector<CpuGroup> spread_over_cpus(size_t n, const KprobePlacement& p) {
    std::vector<CpuGroup> groups(p.cpus.size());
    for (size_t g = 0; g < groups.size(); ++g) groups[g].cpu = p.cpus[g];
    for (size_t i = 0; i < n; ++i) groups[i % groups.size()].items.push_back(i);
    return groups;
}

TeardownStats tear_down_kprobes(std::vector<KprobeLink>& links, const KprobePlacement& p) {
    TeardownStats st{links.size(), p.threads, 0, 0};
    auto t0 = Clock::now();
    // Each link to the group of its event's CPU (one unpinned group if not pinned).
    std::vector<CpuGroup> groups(p.cpus.size());
    for (size_t g = 0; g < groups.size(); ++g) groups[g].cpu = p.cpus[g];
    for (size_t i = 0; i < links.size(); ++i) {
        size_t g = 0;
        while (g + 1 < groups.size() && groups[g].cpu != links[i].cpu) ++g;
        groups[g].items.push_back(i);
    }
    // Enabled events: stop them all first (one thread per CPU: these are quick).
    if (p.enable_events)
        run_on_cpus(groups, 1, [&](size_t i) {
            if (links[i].perf_event) ::ioctl(links[i].perf_event.get(), PERF_EVENT_IOC_DISABLE, 0);
        });
    st.disable_seconds = seconds_since(t0);
    run_on_cpus(groups, p.threads_per_cpu, [&](size_t i) {
        // The program leaves the event first, then the event (and its kprobe) goes.
        links[i].bpf_link.reset();
        links[i].perf_event.reset();
    });
    links.clear();
    st.seconds = seconds_since(t0);
    return st;
}

TeardownStats tear_down_links(std::vector<LinkPtr>& links, unsigned threads) {
    TeardownStats st{links.size(), threads, 0, 0};
    auto t0 = Clock::now();
    parallel_for(links.size(), threads, [&](size_t i) { links[i].reset(); });
    links.clear();
    st.seconds = seconds_since(t0);
    return st;
}

}  // namespace pwru
