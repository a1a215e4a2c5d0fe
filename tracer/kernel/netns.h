// Resolving the user's netns / interface / mark arguments into what the BPF
// filters compare: a netns inode, an ifindex, a mark and mask.
#pragma once

#include <cstdint>
#include <string>

#include "tracer/util/result.h"

namespace pwru {

// --filter-mark: the skb's mark, compared under the mask.
struct MarkFilter {
    uint32_t mark = 0;
    uint32_t mask = 0xffffffff;
};

struct NetnsRef {
    uint32_t inode = 0;
    std::string path;  // a path that opens it ("" when only the inode is known)
};

// "/proc/PID/ns/net", "/run/netns/NAME", any nsfs path, or "inode:N".
Result<NetnsRef> parse_netns(const std::string& arg);
// The calling process's own network namespace.
Result<NetnsRef> current_netns();
// The ifindex of `ifname` inside `ns` (entered from a short-lived thread,
// since setns changes only the calling thread).
Result<uint32_t> resolve_ifindex(const std::string& ifname, const NetnsRef& ns);
// "MARK" or "MARK/MASK", each decimal or 0x-hex.
Result<MarkFilter> parse_mark(const std::string& arg);

// Root, or CAP_BPF + CAP_PERFMON (+ CAP_NET_ADMIN), or CAP_SYS_ADMIN.
Result<void> check_privileges();

}  // namespace pwru
