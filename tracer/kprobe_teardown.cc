#include "tracer/kprobe_teardown.h"

#include <linux/perf_event.h>
#include <sys/ioctl.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "tracer/parallel_for.h"

namespace pwru {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Enough to keep every serialized stage of the kernel's teardown busy; the
// threads sleep in the kernel most of the time, so more than the CPUs is fine.
constexpr unsigned kDefaultThreads = 16;
constexpr unsigned kMaxThreads = 256;

}  // namespace

unsigned kprobe_threads() {
    const char* env = std::getenv("PWRU_KPROBE_THREADS");
    if (!env || !*env) return kDefaultThreads;
    char* end = nullptr;
    unsigned long n = std::strtoul(env, &end, 10);
    if (*end != '\0' || n == 0) return kDefaultThreads;
    return static_cast<unsigned>(std::min<unsigned long>(n, kMaxThreads));
}

int kprobe_cpu() {
    const char* env = std::getenv("PWRU_KPROBE_PIN");
    if (env && std::string(env) == "0") return -1;
    return first_allowed_cpu();
}

TeardownStats tear_down_kprobes(std::vector<KprobeLink>& links, unsigned threads, int cpu) {
    TeardownStats st{links.size(), threads, 0, 0};
    auto t0 = Clock::now();
    parallel_for(links.size(), 1, [&](size_t i) {
        if (links[i].perf_event) ::ioctl(links[i].perf_event.get(), PERF_EVENT_IOC_DISABLE, 0);
    }, cpu);
    st.disable_seconds = seconds_since(t0);
    parallel_for(links.size(), threads, [&](size_t i) {
        // The program leaves the event first, then the event (and its kprobe) goes.
        links[i].bpf_link.reset();
        links[i].perf_event.reset();
    }, cpu);
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
