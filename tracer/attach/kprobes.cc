// Classic kprobes (kernels before 5.18, or without kprobe-multi): one perf
// event and one BPF link per function, several attached in flight.
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>

#include "pwru_abi.h"
#include "tracer/attach/kprobe_teardown.h"
#include "tracer/attach/parallel_for.h"
#include "tracer/attach/skb_probes.h"
#include "tracer/kernel/log.h"

namespace pwru {
namespace {

// Classic kprobes take two descriptors each: the default soft limit of 1024
// runs out past about 500 functions.
void raise_nofile_limit(size_t needed) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    rlim_t want = std::min<rlim_t>(rl.rlim_max, needed * 2 + 1024);
    if (rl.rlim_cur >= want) return;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        spdlog::warn("cannot raise the open-file limit to {}: {}", want, std::strerror(errno));
}

}  // namespace

Result<Attached> attach_kprobes(const std::vector<int>& prog_fds, const std::vector<SkbFunction>& functions,
                                const ProgressFn& progress) {
    Attached out;
    AttachStats& st = out.stats;
    auto t0 = std::chrono::steady_clock::now();
    auto pmu = kprobe_pmu_type();
    if (!pmu) return std::unexpected(pmu.error());
    raise_nofile_limit(functions.size());
    auto prog_fd = [&](int pos) { return pos >= 0 && static_cast<size_t>(pos) < prog_fds.size() ? prog_fds[pos] : -1; };

    // Several in flight: each attach is mostly the kernel patching code
    // (ftrace) and waiting for the other CPUs, which a second caller overlaps.
    const size_t n = functions.size();
    std::vector<std::optional<KprobeLink>> slots(n);
    std::vector<int> errors(n, 0);
    std::atomic<bool> out_of_fds{false};
    std::atomic<size_t> done{0};
    std::mutex progress_mutex;
    const KprobePlacement placement = kprobe_placement();
    st.threads = placement.threads;
    std::vector<CpuGroup> groups = spread_over_cpus(n, placement);
    std::vector<int> event_cpu(n, 0);
    for (const auto& g : groups)
        for (size_t i : g.items) event_cpu[i] = g.cpu < 0 ? 0 : g.cpu;
    auto attach_one = [&](size_t i) {
        const SkbFunction& f = functions[i];
        if (out_of_fds.load()) {
            errors[i] = EMFILE;
        } else if (auto link =
                       open_kprobe_link(*pmu, prog_fd(f.skb_pos), f.name, event_cpu[i], placement.enable_events)) {
            slots[i] = std::move(*link);
        } else {
            errors[i] = link.error().err;
            if (errors[i] == EMFILE) out_of_fds = true;
        }
        size_t d = done.fetch_add(1) + 1;
        if (progress && (d % 64 == 0 || d == n)) {
            std::lock_guard lock(progress_mutex);
            progress(d, n);
        }
    };
    if (st.threads <= 1 && groups.size() == 1 && groups[0].cpu < 0)
        for (size_t i = 0; i < n; ++i) attach_one(i);  // one by one, in the caller (as libbpf users do)
    else
        run_on_cpus(groups, placement.threads_per_cpu, attach_one);
    auto links = std::make_unique<KprobeSet>();
    for (size_t i = 0; i < n; ++i) {
        if (slots[i]) {
            links->add(std::move(*slots[i]));
            ++st.attached;
        } else {
            ++st.ignored;
            st.failures.push_back(functions[i].name + ": " + std::strerror(errors[i]));
        }
    }
    take_libbpf_messages();
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // What attached is detached on the way out (links' destructor).
    if (out_of_fds.load())
        return fail("out of file descriptors after " + std::to_string(st.attached) +
                        " kprobes; raise the limit (ulimit -n) or use --filter-func",
                    EMFILE);
    out.owner = std::move(links);
    return out;
}

}  // namespace pwru
