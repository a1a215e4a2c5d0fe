// --filter-non-skb-funcs: functions without an skb argument, probed like
// pwru does (one classic kprobe each) with the program that attributes them
// to the last selected skb seen on the same kernel stack.
#include <bpf/libbpf.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>

#include "tracer/log.h"
#include "tracer/pwru_skel.h"
#include "tracer/session.h"

namespace pwru {

Result<AttachStats> Session::attach_non_skb_funcs() {
    if (!skel_) return fail("attach_non_skb_funcs before load");
    if (plan_.backend == Backend::Tracepoint)
        return fail("--filter-non-skb-funcs needs kprobes, which this kernel lacks (tracing its tracepoints instead)");
    AttachStats st;
    auto t0 = std::chrono::steady_clock::now();
    std::set<std::string> skb_funcs;
    for (const auto& f : plan_.functions) skb_funcs.insert(f.name);
    std::set<std::string> seen;
    for (const auto& name : opts_.non_skb_funcs) {
        // Already traced with its skb (pwru skips these too), or listed twice.
        if (skb_funcs.count(name) || !seen.insert(name).second) continue;
        LinkPtr link(bpf_program__attach_kprobe(skel_->progs.kprobe_non_skb, false, name.c_str()));
        if (link) {
            non_skb_links_.push_back(std::move(link));
            ++st.attached;
        } else {
            ++st.ignored;
            st.failures.push_back(name + ": " + std::strerror(errno));
        }
    }
    take_libbpf_messages();
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return st;
}

}  // namespace pwru
