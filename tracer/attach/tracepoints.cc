// The tracepoint backend (no kprobes: this machine's kernel): one tp_btf
// program per skb tracepoint, its slot's configuration written at load.
#include <cerrno>
#include <chrono>
#include <cstring>

#include "tracer/attach/skb_probes.h"
#include "tracer/kernel/log.h"
#include "tracer/kernel/resource_errors.h"

namespace pwru {

Result<Attached> attach_tracepoints(bpf_object* obj, const std::vector<SkbTracepoint>& tracepoints,
                                    const ProgressFn& progress) {
    Attached out;
    AttachStats& st = out.stats;
    auto t0 = std::chrono::steady_clock::now();
    auto links = std::make_unique<LinkSet>();
    for (size_t i = 0; i < tracepoints.size(); ++i) {
        std::string prog_name = "tp_slot_" + std::to_string(i);
        bpf_program* p = bpf_object__find_program_by_name(obj, prog_name.c_str());
        if (!p) return fail("BPF object lacks program " + prog_name);
        LinkPtr link(bpf_program__attach_trace(p));
        if (link) {
            links->add(std::move(link));
            ++st.attached;
        } else {
            const int err = errno;
            // Out of descriptors or memory: the rest would fail the same way,
            // and a trace missing tracepoints must not look whole.
            if (auto limit = explain_resource_error(err, "cannot attach tracepoint " + std::to_string(i + 1) + " of " +
                                                             std::to_string(tracepoints.size()) + " (" +
                                                             tracepoints[i].name + ")")) {
                take_libbpf_messages();
                return fail(*limit);
            }
            ++st.ignored;
            st.failures.push_back(tracepoints[i].name + ": " + std::strerror(err));
        }
        if (progress) progress(i + 1, tracepoints.size());
    }
    take_libbpf_messages();
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.owner = std::move(links);
    return out;
}

}  // namespace pwru
