#include "tracer/attach/skb_probes.h"

#include "pwru_abi.h"
#include "tracer/kernel/log.h"

namespace pwru {

Result<Attached> attach_skb_probes(bpf_object* obj, const Plan& plan, const Kallsyms* kallsyms,
                                   const ProgressFn& progress) {
    switch (plan.backend) {
        case Backend::Tracepoint: return attach_tracepoints(obj, plan.tracepoints, progress);
        case Backend::KprobeMulti: {
            // Addresses from kallsyms when it shows them (root, kptr_restrict < 2).
            const Kallsyms* by_addr = kallsyms && kallsyms->addresses_visible() ? kallsyms : nullptr;
            if (!by_addr) spdlog::debug("kprobe-multi: attaching by name (kallsyms shows no addresses)");
            auto prog_of = [obj](int pos) {
                std::string name = "kprobe_multi_skb_" + std::to_string(pos);
                return bpf_object__find_program_by_name(obj, name.c_str());
            };
            return attach_kprobe_multi(prog_of, plan_kprobe_multi(plan.functions, by_addr), progress);
        }
        case Backend::Kprobe: {
            // One program per skb position in use (loaded by the session's configure()).
            std::vector<int> prog_fds(PWRU_MAX_SKB_POS + 1, -1);
            for (int pos = 1; pos <= PWRU_MAX_SKB_POS; ++pos) {
                std::string name = "kprobe_skb_" + std::to_string(pos);
                if (bpf_program* p = bpf_object__find_program_by_name(obj, name.c_str()))
                    prog_fds[pos] = bpf_program__fd(p);
            }
            return attach_kprobes(prog_fds, plan.functions, progress);
        }
        case Backend::Auto: break;
    }
    return fail(std::string("no attach for backend ") + backend_name(plan.backend));
}

}  // namespace pwru
