// --filter-track-skb follows an skb's clones and copies, as pwru does (its
// fexit on skb_clone and skb_copy). fentry/fexit are not on every kernel that
// has kprobes, so: a kprobe at the entry (stashes the old skb) and a kretprobe
// (tracks the new one when the old one is tracked); see bpf/pwru.bpf.c.
// Classic kprobes on both kprobe backends: four functions attach in
// milliseconds, and one pair of programs serves both.
#include <cerrno>
#include <cstring>
#include <string>

#include "tracer/attach/skb_probes.h"
#include "tracer/kernel/log.h"

namespace pwru {
namespace {

// Functions that return a new skb made from their first argument, on the
// paths pwru traces: skb_clone (taps on transmit: dev_queue_xmit_nit; TCP's
// transmit of its queued skbs; packet sockets; bridges flooding), skb_copy
// (pwru's second one), __pskb_copy_fclone (pskb_copy: TCP retransmits of an
// skb still cloned, nf_dup / TEE), skb_copy_expand (tunnels and drivers that
// need more room).
constexpr const char* kClonedBy[] = {"skb_clone", "skb_copy", "__pskb_copy_fclone", "skb_copy_expand"};

}  // namespace

std::unique_ptr<Attachment> attach_clone_probes(bpf_program* entry_prog, bpf_program* ret_prog) {
    auto links = std::make_unique<LinkSet>();
    std::string failed;
    size_t attached = 0;
    for (const char* fn : kClonedBy) {
        LinkPtr entry(bpf_program__attach_kprobe(entry_prog, false, fn));
        int err = entry ? 0 : errno;
        LinkPtr ret;
        if (entry) {
            ret.reset(bpf_program__attach_kprobe(ret_prog, true, fn));
            if (!ret) err = errno;
        }
        if (entry && ret) {
            links->add(std::move(entry));
            links->add(std::move(ret));
            ++attached;
        } else {
            failed += std::string(failed.empty() ? "" : ", ") + fn + " (" + std::strerror(err) + ")";
        }
    }
    take_libbpf_messages();
    if (!failed.empty()) spdlog::warn("--filter-track-skb will not follow the clones and copies made by {}", failed);
    spdlog::info("Following clones and copies of tracked skbs at {} of {} functions", attached, std::size(kClonedBy));
    return links;
}

}  // namespace pwru
