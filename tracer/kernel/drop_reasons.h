// Names of the kernel's drop reasons (`enum skb_drop_reason`), read from the
// running kernel's BTF so they match this kernel, not the one we were built on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "tracer/util/result.h"

namespace pwru {

class DropReasons {
  public:
    // Core reasons come from `enum skb_drop_reason` in kernel_btf. Reasons of
    // subsystems (value >> 16 != 0: mac80211, openvswitch) come from enums
    // named `*_drop_reason` whose values carry those high bits, in kernel_btf
    // and in the module BTF of module_btf_dir (pass "" to skip modules, e.g.
    // when kernel_btf is not the running kernel's). A kernel without the enum
    // gives an empty table; only an unreadable kernel_btf is an error.
    static Result<DropReasons> load(const std::string& kernel_btf = "/sys/kernel/btf/vmlinux",
                                    const std::string& module_btf_dir = "/sys/kernel/btf");

    // "SKB_DROP_REASON_NETFILTER_DROP"; a subsystem value without a name
    // "SUBSYS_<SUBSYS NAME or number>:<low 16 bits>"; otherwise "UNKNOWN(<n>)".
    std::string name(uint32_t value) const;
    size_t size() const { return names_.size(); }  // named values, core and subsystem
    bool empty() const { return names_.empty(); }

  private:
    std::unordered_map<uint32_t, std::string> names_;
    std::unordered_map<uint32_t, std::string> subsystems_;  // 2 -> "SUBSYS_OPENVSWITCH"
};

}  // namespace pwru
