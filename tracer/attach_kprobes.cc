// Mass attach of the kprobe backends (retsnoop's lessons): a function that
// cannot be probed is data (skipped and counted), never fatal; a kprobe.multi
// batch that fails is split in halves until the culprits are isolated.
#include <bpf/libbpf.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>

#include "tracer/kallsyms.h"
#include "tracer/kprobe_links.h"
#include "tracer/kprobe_teardown.h"
#include "tracer/log.h"
#include "tracer/parallel_for.h"
#include "tracer/pwru_skel.h"
#include "tracer/session.h"

namespace pwru {
namespace {

using Clock = std::chrono::steady_clock;

bpf_program* program_for(pwru_bpf* skel, const char* prefix, int pos) {
    std::string name = prefix + std::to_string(pos);
    return bpf_object__find_program_by_name(skel->obj, name.c_str());
}

// Errors that mean "this function cannot be probed", as pwru counts them.
bool is_unprobeable(int err) {
    return err == ENOENT || err == EADDRNOTAVAIL || err == EINVAL || err == ESRCH || err == EBUSY;
}

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

// One kprobe.multi target: the name (for reports), where it is when kallsyms
// shows addresses, and its cookie: the position of its skb argument, which
// the one kprobe_multi_skb program reads with bpf_get_attach_cookie().
struct MultiTarget {
    const char* name;
    unsigned long addr;  // 0: attach by name
    __u64 cookie;
};

class MultiAttacher {
  public:
    MultiAttacher(bpf_program* prog, AttachStats& st, std::vector<LinkPtr>& links)
        : prog_(prog), st_(st), links_(links) {}

    // Attaches all of `targets` as one link; on failure bisects to skip only the culprits.
    void attach(const std::vector<MultiTarget>& targets) {
        if (targets.empty()) return;
        LinkPtr link(open(targets));
        if (link) {
            links_.push_back(std::move(link));
            st_.attached += targets.size();
            return;
        }
        int err = errno;
        if (targets.size() == 1) {
            ++st_.ignored;
            st_.failures.push_back(std::string(targets[0].name) + ": " + std::strerror(err));
            return;
        }
        if (!is_unprobeable(err) && err != EOPNOTSUPP && err != EPERM) {
            // Not about one function (e.g. out of memory): no use splitting.
            st_.ignored += targets.size();
            st_.failures.push_back(std::to_string(targets.size()) + " functions: " + std::strerror(err));
            return;
        }
        ++st_.batch_splits;
        spdlog::debug("kprobe-multi: a batch of {} functions failed ({}): splitting it", targets.size(),
                      std::strerror(err));
        size_t half = targets.size() / 2;
        attach(std::vector<MultiTarget>(targets.begin(), targets.begin() + half));
        attach(std::vector<MultiTarget>(targets.begin() + half, targets.end()));
    }

  private:
    // By address when known: given names, the kernel resolves them by walking
    // every kernel symbol once per link (ftrace_lookup_symbols), seconds under
    // emulation; addresses it only sorts.
    bpf_link* open(const std::vector<MultiTarget>& targets) {
        std::vector<__u64> cookies;
        cookies.reserve(targets.size());
        for (const auto& t : targets) cookies.push_back(t.cookie);
        if (targets.front().addr != 0) {
            std::vector<unsigned long> addrs;
            addrs.reserve(targets.size());
            for (const auto& t : targets) addrs.push_back(t.addr);
            LIBBPF_OPTS(bpf_kprobe_multi_opts, opts, .addrs = addrs.data(), .cookies = cookies.data(),
                        .cnt = addrs.size());
            return bpf_program__attach_kprobe_multi_opts(prog_, nullptr, &opts);
        }
        std::vector<const char*> names;
        names.reserve(targets.size());
        for (const auto& t : targets) names.push_back(t.name);
        LIBBPF_OPTS(bpf_kprobe_multi_opts, opts, .syms = names.data(), .cookies = cookies.data(),
                    .cnt = names.size());
        return bpf_program__attach_kprobe_multi_opts(prog_, nullptr, &opts);
    }

    bpf_program* prog_;
    AttachStats& st_;
    std::vector<LinkPtr>& links_;
};

}  // namespace

Result<AttachStats> Session::attach_kprobe_multi(const ProgressFn& progress) {
    AttachStats st;
    auto t0 = Clock::now();
    // Addresses from kallsyms when it shows them (root, kptr_restrict < 2).
    auto ks = kallsyms();
    const Kallsyms* by_addr = ks && (*ks)->addresses_visible() ? ks->get() : nullptr;
    if (!by_addr) spdlog::debug("kprobe-multi: attaching by name (kallsyms shows no addresses)");
    // Every function in one link: the kernel's fixed cost per link (an ftrace
    // update on attach, an RCU grace period on detach) is paid once.
    std::vector<MultiTarget> targets;
    for (const auto& f : plan_.functions) {
        const auto cookie = static_cast<__u64>(f.skb_pos);
        if (!by_addr) {
            targets.push_back({f.name.c_str(), 0, cookie});
        } else if (auto addr = by_addr->address_of(f.name)) {
            targets.push_back({f.name.c_str(), static_cast<unsigned long>(*addr), cookie});
        } else {
            ++st.ignored;
            st.failures.push_back(f.name + ": not in /proc/kallsyms");
        }
    }
    MultiAttacher(skel_->progs.kprobe_multi_skb, st, links_).attach(targets);
    if (progress) progress(plan_.functions.size(), plan_.functions.size());
    take_libbpf_messages();
    st.threads = 1;
    st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return st;
}

Result<AttachStats> Session::attach_kprobes(const ProgressFn& progress) {
    AttachStats st;
    auto t0 = Clock::now();
    auto pmu = kprobe_pmu_type();
    if (!pmu) return std::unexpected(pmu.error());
    raise_nofile_limit(plan_.functions.size());
    int prog_fds[PWRU_MAX_SKB_POS + 1] = {};
    for (int pos = 1; pos <= PWRU_MAX_SKB_POS; ++pos) {
        bpf_program* p = program_for(skel_.get(), "kprobe_skb_", pos);
        prog_fds[pos] = p ? bpf_program__fd(p) : -1;
    }

    // Several in flight: each attach is mostly the kernel patching code
    // (ftrace) and waiting for the other CPUs, which a second caller overlaps.
    const size_t n = plan_.functions.size();
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
        const SkbFunction& f = plan_.functions[i];
        if (out_of_fds.load()) {
            errors[i] = EMFILE;
        } else if (auto link = open_kprobe_link(*pmu, prog_fds[f.skb_pos], f.name, event_cpu[i],
                                                placement.enable_events)) {
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
    for (size_t i = 0; i < n; ++i) {
        if (slots[i]) {
            kprobe_links_.push_back(std::move(*slots[i]));
            ++st.attached;
        } else {
            ++st.ignored;
            st.failures.push_back(plan_.functions[i].name + ": " + std::strerror(errors[i]));
        }
    }
    take_libbpf_messages();
    st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (out_of_fds.load())
        return fail("out of file descriptors after " + std::to_string(st.attached) +
                        " kprobes; raise the limit (ulimit -n) or use --filter-func",
                    EMFILE);
    return st;
}

}  // namespace pwru
