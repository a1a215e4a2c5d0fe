// The factories that attach the probes of the skb functions and tracepoints,
// one per backend, and the probes around them (clone tracking,
// --filter-non-skb-funcs). Each returns the owner of what it attached
// (attachment.h) with its stats; none knows the Session. The mass attaches
// follow retsnoop: a target that cannot be probed is skipped and counted, a
// kprobe-multi batch that fails is split until the culprits are isolated.
#pragma once

#include <bpf/libbpf.h>
#include <linux/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tracer/attach/attach_stats.h"
#include "tracer/attach/attachment.h"
#include "tracer/attach/plan.h"
#include "tracer/kernel/kallsyms.h"
#include "tracer/util/result.h"

namespace pwru {

struct Attached {
    std::unique_ptr<Attachment> owner;  // what attached (may hold none)
    AttachStats stats;
};

// ---- planning: pure, no kernel ---------------------------------------------

// One kprobe.multi target: the name (for reports), where it is when kallsyms
// shows addresses, and the position of its skb argument: which of the
// programs kprobe_multi_skb_1..5 (one link each) runs on it.
struct MultiTarget {
    std::string name;
    unsigned long addr = 0;  // 0: attach by name
    int skb_pos = 0;
};

struct MultiPlan {
    std::vector<MultiTarget> targets;
    std::vector<std::string> skipped;  // "name: not in /proc/kallsyms"
};

// By address when `by_addr` is given (kallsyms shows addresses): given names,
// the kernel resolves them by walking every kernel symbol once per link
// (ftrace_lookup_symbols), seconds under emulation; addresses it only sorts.
// A function kallsyms does not list is skipped then.
MultiPlan plan_kprobe_multi(const std::vector<SkbFunction>& functions, const Kallsyms* by_addr);

// ---- the factories ---------------------------------------------------------

// The tracepoint backend: program "tp_slot_<i>" of `obj` on tracepoints[i].
// Out of descriptors or memory is an error (a trace missing tracepoints must
// not look whole); another failure skips the tracepoint.
Result<Attached> attach_tracepoints(bpf_object* obj, const std::vector<SkbTracepoint>& tracepoints,
                                    const ProgressFn& progress);

// kprobe-multi: one link per skb position in use, prog_of(pos) on the targets
// whose skb is there (the kernel's fixed cost per link, an ftrace update on
// attach and an RCU grace period on detach, paid once per position, five at
// most). A position without a program skips its targets.
Attached attach_kprobe_multi(const std::function<bpf_program*(int skb_pos)>& prog_of, const MultiPlan& plan,
                             const ProgressFn& progress);

// Classic kprobes: prog_fds[pos] runs on the functions whose skb is argument
// pos (1..PWRU_MAX_SKB_POS); several attach in flight (kprobe_teardown.h).
// Running out of descriptors is an error naming the limit.
Result<Attached> attach_kprobes(const std::vector<int>& prog_fds, const std::vector<SkbFunction>& functions,
                                const ProgressFn& progress);

// The one factory the Session calls: the backend's attach of plan's targets,
// `kallsyms` for kprobe-multi's addresses (null: by name).
Result<Attached> attach_skb_probes(bpf_object* obj, const Plan& plan, const Kallsyms* kallsyms,
                                   const ProgressFn& progress);

// --filter-track-skb: a kprobe and a kretprobe on each function that makes
// a new skb from its first argument (kClonedBy in the .cc), and on veth's
// XDP receive (kVethRcv). A clone function that cannot be probed is a
// warning, said in the log; veth's (a module) is a note.
struct CloneProbes {
    bpf_program* clone_entry;   // kprobe_skb_clone_entry
    bpf_program* clone_return;  // kretprobe_skb_clone
    bpf_program* veth_entry;    // kprobe_veth_rcv_entry
    bpf_program* veth_return;   // kretprobe_veth_rcv
};
std::unique_ptr<Attachment> attach_clone_probes(const CloneProbes& progs);

// --filter-non-skb-funcs: `prog` as a kprobe on each of `names` that is not
// already traced as an skb function (listed in `skb_functions`).
Attached attach_non_skb_probes(bpf_program* prog, const std::vector<std::string>& names,
                               const std::vector<SkbFunction>& skb_functions);

}  // namespace pwru
