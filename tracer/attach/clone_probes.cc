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
#include <fmt/format.h>

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

// veth_xdp_rcv_skb(rq, skb, ...) returns the skb an XDP program on a veth
// let through: the old one, or a copy with room for XDP (made inside it, in
// veth_convert_skb_to_xdp_buff since Linux 5.19, which pwru probes; that one
// is inlined in Debian's 6.12, this one is not).
constexpr const char* kVethRcv = "veth_xdp_rcv_skb";

// A kprobe at fn's entry and a kretprobe at its return, into links; 0 or
// the errno of what failed (then neither stays).
int attach_pair(LinkSet& links, bpf_program* entry_prog, bpf_program* ret_prog, const char* fn) {
    LinkPtr entry(bpf_program__attach_kprobe(entry_prog, false, fn));
    if (!entry) return errno;
    LinkPtr ret(bpf_program__attach_kprobe(ret_prog, true, fn));
    if (!ret) return errno;
    links.add(std::move(entry));
    links.add(std::move(ret));
    return 0;
}

}  // namespace

std::unique_ptr<Attachment> attach_clone_probes(const CloneProbes& progs) {
    auto links = std::make_unique<LinkSet>();
    std::string failed;
    size_t attached = 0;
    for (const char* fn : kClonedBy) {
        if (int err = attach_pair(*links, progs.clone_entry, progs.clone_return, fn); err)
            failed += std::string(failed.empty() ? "" : ", ") + fn + " (" + std::strerror(err) + ")";
        else
            ++attached;
    }
    // veth's XDP path may rebuild the skb (pwru v1.0.7 follows it): in the
    // veth module, absent until a veth exists, so its absence is no warning.
    const int veth_err = attach_pair(*links, progs.veth_entry, progs.veth_return, kVethRcv);
    take_libbpf_messages();
    if (!failed.empty()) spdlog::warn("--filter-track-skb will not follow the clones and copies made by {}", failed);
    spdlog::info("Following clones and copies of tracked skbs at {} of {} functions{}", attached, std::size(kClonedBy),
                 veth_err ? fmt::format(" (not through veth's XDP path: {} cannot be probed: {})", kVethRcv,
                                        std::strerror(veth_err))
                          : std::string(" and through veth's XDP path"));
    return links;
}

}  // namespace pwru
