// kprobe-multi: one link per position of the skb argument, for every skb
// function at that position.
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

#include "tracer/attach/skb_probes.h"
#include "tracer/kernel/log.h"

namespace pwru {
namespace {

// Errors that mean "this function cannot be probed", as pwru counts them.
bool is_unprobeable(int err) {
    return err == ENOENT || err == EADDRNOTAVAIL || err == EINVAL || err == ESRCH || err == EBUSY;
}

class MultiAttacher {
  public:
    MultiAttacher(bpf_program* prog, AttachStats& st, KprobeMultiLinks& links) : prog_(prog), st_(st), links_(links) {}

    // Attaches all of `targets` as one link; on failure bisects to skip only the culprits.
    void attach(const std::vector<MultiTarget>& targets) {
        if (targets.empty()) return;
        LinkPtr link(open(targets));
        if (link) {
            links_.add(std::move(link));
            st_.attached += targets.size();
            return;
        }
        int err = errno;
        if (targets.size() == 1) {
            ++st_.ignored;
            st_.failures.push_back(targets[0].name + ": " + std::strerror(err));
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
    bpf_link* open(const std::vector<MultiTarget>& targets) {
        if (targets.front().addr != 0) {
            std::vector<unsigned long> addrs;
            addrs.reserve(targets.size());
            for (const auto& t : targets) addrs.push_back(t.addr);
            LIBBPF_OPTS(bpf_kprobe_multi_opts, opts, .addrs = addrs.data(), .cnt = addrs.size());
            return bpf_program__attach_kprobe_multi_opts(prog_, nullptr, &opts);
        }
        std::vector<const char*> names;
        names.reserve(targets.size());
        for (const auto& t : targets) names.push_back(t.name.c_str());
        LIBBPF_OPTS(bpf_kprobe_multi_opts, opts, .syms = names.data(), .cnt = names.size());
        return bpf_program__attach_kprobe_multi_opts(prog_, nullptr, &opts);
    }

    bpf_program* prog_;
    AttachStats& st_;
    KprobeMultiLinks& links_;
};

}  // namespace

MultiPlan plan_kprobe_multi(const std::vector<SkbFunction>& functions, const Kallsyms* by_addr) {
    MultiPlan plan;
    plan.targets.reserve(functions.size());
    for (const auto& f : functions) {
        if (!by_addr) {
            plan.targets.push_back({f.name, 0, f.skb_pos});
        } else if (auto addr = by_addr->address_of(f.name)) {
            plan.targets.push_back({f.name, static_cast<unsigned long>(*addr), f.skb_pos});
        } else {
            plan.skipped.push_back(f.name + ": not in /proc/kallsyms");
        }
    }
    return plan;
}

Attached attach_kprobe_multi(const std::function<bpf_program*(int skb_pos)>& prog_of, const MultiPlan& plan,
                             const ProgressFn& progress) {
    auto t0 = std::chrono::steady_clock::now();
    auto links = std::make_unique<KprobeMultiLinks>();
    Attached out;
    out.stats.ignored = plan.skipped.size();
    out.stats.failures = plan.skipped;
    std::map<int, std::vector<MultiTarget>> by_pos;
    for (const auto& t : plan.targets) by_pos[t.skb_pos].push_back(t);
    for (const auto& [pos, targets] : by_pos) {
        bpf_program* prog = prog_of(pos);
        if (!prog) {
            out.stats.ignored += targets.size();
            out.stats.failures.push_back(std::to_string(targets.size()) + " functions with the skb at argument " +
                                         std::to_string(pos) + ": no program for that position");
            continue;
        }
        MultiAttacher(prog, out.stats, *links).attach(targets);
    }
    const size_t total = plan.targets.size() + plan.skipped.size();
    if (progress) progress(total, total);
    take_libbpf_messages();
    out.stats.threads = 1;
    out.stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.owner = std::move(links);
    return out;
}

}  // namespace pwru
