#include "tracer/kernel/drop_reasons.h"

#include <bpf/btf.h>

#include <cstdint>
#include <string_view>

#include "tracer/kernel/btf_discovery.h"

namespace pwru {
namespace {

// include/net/dropreason.h: the top 16 bits of a reason name its subsystem.
constexpr unsigned kSubsysShift = 16;
constexpr uint32_t kSubsysMask = 0xffff0000u;

// Calls fn(name, value) for each value of an ENUM or ENUM64 type.
template <typename Fn>
void for_each_enum_value(const struct btf* b, const struct btf_type* t, Fn&& fn) {
    const int n = btf_vlen(t);
    if (btf_is_enum(t)) {
        const struct btf_enum* e = btf_enum(t);
        for (int i = 0; i < n; ++i)
            fn(std::string_view(btf__name_by_offset(b, e[i].name_off)), uint64_t(uint32_t(e[i].val)));
    } else if (btf_is_enum64(t)) {
        const struct btf_enum64* e = btf_enum64(t);
        for (int i = 0; i < n; ++i)
            fn(std::string_view(btf__name_by_offset(b, e[i].name_off)), btf_enum64_value(&e[i]));
    }
}

const struct btf_type* find_enum(const struct btf* b, const char* name) {
    int id = btf__find_by_name_kind(b, name, BTF_KIND_ENUM);
    return id > 0 ? btf__type_by_id(b, id) : nullptr;
}

// Subsystem reasons live in their own enums (mac80211_drop_reason,
// ovs_drop_reason), built in or in a module; their values already include the
// subsystem bits, so they are added by value. Scanned: types [first_id, count).
void add_subsystem_enums(const struct btf* b, uint32_t first_id, std::unordered_map<uint32_t, std::string>& names) {
    const uint32_t count = btf__type_cnt(b);
    for (uint32_t id = first_id; id < count; ++id) {
        const struct btf_type* t = btf__type_by_id(b, id);
        if (!btf_is_any_enum(t)) continue;
        std::string_view name = btf__name_by_offset(b, t->name_off);
        if (!name.ends_with("_drop_reason") || name == "skb_drop_reason") continue;
        for_each_enum_value(b, t, [&](std::string_view value_name, uint64_t value) {
            if (value <= UINT32_MAX && (value & kSubsysMask)) names.try_emplace(uint32_t(value), value_name);
        });
    }
}

}  // namespace

Result<DropReasons> DropReasons::load(const std::string& kernel_btf, const std::string& module_btf_dir) {
    auto vmlinux = load_kernel_btf(kernel_btf);
    if (!vmlinux) return std::unexpected(vmlinux.error());
    const struct btf* b = vmlinux->get();

    DropReasons r;
    const struct btf_type* core = find_enum(b, "skb_drop_reason");
    if (!core) return r;  // kernels before 5.17: no reasons to name
    for_each_enum_value(b, core, [&](std::string_view name, uint64_t value) {
        // SKB_DROP_REASON_SUBSYS_MASK sits in this enum but is not a reason.
        if (!(value & kSubsysMask)) r.names_.try_emplace(uint32_t(value), name);
    });

    if (const struct btf_type* subsys = find_enum(b, "skb_drop_reason_subsys")) {
        constexpr std::string_view kPrefix = "SKB_DROP_REASON_";
        for_each_enum_value(b, subsys, [&](std::string_view name, uint64_t value) {
            if (name.starts_with(kPrefix)) name.remove_prefix(kPrefix.size());
            r.subsystems_.try_emplace(uint32_t(value), name);
        });
        add_subsystem_enums(b, 1, r.names_);
        // Best effort: a module BTF we cannot parse only costs its names.
        if (!module_btf_dir.empty()) {
            const uint32_t base_cnt = btf__type_cnt(b);
            for (const std::string& mod : list_module_btfs(module_btf_dir)) {
                if (auto mb = load_module_btf(module_btf_dir, mod, b))
                    add_subsystem_enums(mb->get(), base_cnt, r.names_);
            }
        }
    }
    return r;
}

std::string DropReasons::name(uint32_t value) const {
    if (auto it = names_.find(value); it != names_.end()) return it->second;
    const uint32_t low = value & ~kSubsysMask;
    if (uint32_t sub = value >> kSubsysShift; sub != 0) {
        auto it = subsystems_.find(sub);
        std::string subsys = it != subsystems_.end() ? it->second : "SUBSYS_" + std::to_string(sub);
        return subsys + ":" + std::to_string(low);
    }
    return "UNKNOWN(" + std::to_string(value) + ")";
}

}  // namespace pwru
