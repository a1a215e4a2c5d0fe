// One owner type per libbpf object (bpftrace's habit): a move-only
// std::unique_ptr whose deleter is the matching destroy function. Nothing is
// pinned, so a killed process leaves nothing attached.
#pragma once

#include <bpf/libbpf.h>

#include <memory>

#include "tracer/util/unique_fd.h"  // UniqueFd, for the objects libbpf hands out as fds

namespace pwru {

struct LinkDeleter {
    void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

struct RingBufferDeleter {
    void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferDeleter>;

// A bpftool skeleton (pwru_bpf, features_bpf, ...): Skel__destroy as deleter.
template <typename Skel, void (*Destroy)(Skel*)>
struct SkeletonDeleter {
    void operator()(Skel* s) const { Destroy(s); }
};
template <typename Skel, void (*Destroy)(Skel*)>
using SkeletonPtr = std::unique_ptr<Skel, SkeletonDeleter<Skel, Destroy>>;

}  // namespace pwru
