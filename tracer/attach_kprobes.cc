// Mass attach of the kprobe backends (retsnoop's lessons): a function that
// cannot be probed is data (skipped and counted), never fatal; a kprobe.multi
// batch that fails is split in halves until the culprits are isolated.
#include <bpf/libbpf.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include "tracer/pwru_skel.h"
#include "tracer/log.h"
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

class MultiAttacher {
  public:
    MultiAttacher(bpf_program* prog, AttachStats& st, std::vector<LinkPtr>& links)
        : prog_(prog), st_(st), links_(links) {}

    // Attaches all of `names`; on failure bisects to skip only the culprits.
    void attach(std::vector<const char*> names) {
        if (names.empty()) return;
        LIBBPF_OPTS(bpf_kprobe_multi_opts, opts, .syms = names.data(), .cnt = names.size());
        LinkPtr link(bpf_program__attach_kprobe_multi_opts(prog_, nullptr, &opts));
        if (link) {
            links_.push_back(std::move(link));
            st_.attached += names.size();
            return;
        }
        int err = errno;
        if (names.size() == 1) {
            ++st_.ignored;
            st_.failures.push_back(std::string(names[0]) + ": " + std::strerror(err));
            return;
        }
        if (!is_unprobeable(err) && err != EOPNOTSUPP && err != EPERM) {
            // Not about one function (e.g. out of memory): no use splitting.
            st_.ignored += names.size();
            st_.failures.push_back(std::to_string(names.size()) + " functions: " + std::strerror(err));
            return;
        }
        size_t half = names.size() / 2;
        attach(std::vector<const char*>(names.begin(), names.begin() + half));
        attach(std::vector<const char*>(names.begin() + half, names.end()));
    }

  private:
    bpf_program* prog_;
    AttachStats& st_;
    std::vector<LinkPtr>& links_;
};

}  // namespace

Result<AttachStats> Session::attach_kprobe_multi(const ProgressFn& progress) {
    AttachStats st;
    auto t0 = Clock::now();
    size_t done = 0;
    for (int pos = 1; pos <= PWRU_MAX_SKB_POS; ++pos) {
        std::vector<const char*> names;
        for (const auto& f : plan_.functions)
            if (f.skb_pos == pos) names.push_back(f.name.c_str());
        if (names.empty()) continue;
        MultiAttacher(program_for(skel_.get(), "kprobe_multi_skb_", pos), st, links_).attach(names);
        done += names.size();
        if (progress) progress(done, plan_.functions.size());
    }
    take_libbpf_messages();
    st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return st;
}

Result<AttachStats> Session::attach_kprobes(const ProgressFn& progress) {
    AttachStats st;
    auto t0 = Clock::now();
    raise_nofile_limit(plan_.functions.size());
    for (size_t i = 0; i < plan_.functions.size(); ++i) {
        const SkbFunction& f = plan_.functions[i];
        LinkPtr link(bpf_program__attach_kprobe(program_for(skel_.get(), "kprobe_skb_", f.skb_pos), false,
                                                f.name.c_str()));
        if (link) {
            links_.push_back(std::move(link));
            ++st.attached;
        } else {
            int err = errno;
            ++st.ignored;
            st.failures.push_back(f.name + ": " + std::strerror(err));
            if (err == EMFILE) {
                take_libbpf_messages();
                return fail("out of file descriptors after " + std::to_string(st.attached) +
                                " kprobes; raise the limit (ulimit -n) or use --filter-func",
                            err);
            }
        }
        if (progress && ((i + 1) % 64 == 0 || i + 1 == plan_.functions.size()))
            progress(i + 1, plan_.functions.size());
    }
    take_libbpf_messages();
    st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return st;
}

}  // namespace pwru
