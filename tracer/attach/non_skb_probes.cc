// --filter-non-skb-funcs: functions without an skb argument, probed like
// pwru does (one classic kprobe each) with the program that attributes them
// to the last selected skb seen on the same kernel stack.
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>

#include "tracer/attach/skb_probes.h"
#include "tracer/kernel/log.h"

namespace pwru {

Attached attach_non_skb_probes(bpf_program* prog, const std::vector<std::string>& names,
                               const std::vector<SkbFunction>& skb_functions) {
    Attached out;
    AttachStats& st = out.stats;
    auto t0 = std::chrono::steady_clock::now();
    auto links = std::make_unique<LinkSet>();
    std::set<std::string> skb_funcs;
    for (const auto& f : skb_functions) skb_funcs.insert(f.name);
    std::set<std::string> seen;
    for (const auto& name : names) {
        // Already traced with its skb (pwru skips these too), or listed twice.
        if (skb_funcs.count(name) || !seen.insert(name).second) continue;
        LinkPtr link(bpf_program__attach_kprobe(prog, false, name.c_str()));
        if (link) {
            links->add(std::move(link));
            ++st.attached;
        } else {
            ++st.ignored;
            st.failures.push_back(name + ": " + std::strerror(errno));
        }
    }
    take_libbpf_messages();
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.owner = std::move(links);
    return out;
}

}  // namespace pwru
