#include "tracer/kernel/btf_discovery.h"

#include <bpf/btf.h>
#include <re2/re2.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>
#include <system_error>

#include "pwru_abi.h"
#include "tracer/events/drop_verdict.h"

namespace pwru {

void BtfFree::operator()(struct btf* b) const noexcept { btf__free(b); }

Result<BtfPtr> load_kernel_btf(const std::string& path) {
    // libbpf 1.x returns NULL and sets errno; the file may be raw BTF or an ELF.
    struct btf* b = btf__parse(path.c_str(), nullptr);
    if (!b) {
        int err = errno;
        return fail("cannot read kernel BTF '" + path + "' (pass --kernel-btf FILE or enable CONFIG_DEBUG_INFO_BTF)",
                    err);
    }
    return BtfPtr(b);
}

Result<std::string> module_btf_path(const std::string& btf_dir, const std::string& name) {
    std::string path = btf_dir + "/" + name;
    // A '/' would escape btf_dir: no module is called that.
    if (name.empty() || name.find('/') != std::string::npos || name == "vmlinux" || !std::filesystem::exists(path))
        return std::unexpected(Error{
            ENOENT,
            "kernel module '" + name + "' has no BTF at " + path + "; check that it is loaded and listed in " + btf_dir,
            {},
            ErrorKind::NotFound});
    return path;
}

Result<BtfPtr> load_module_btf(const std::string& btf_dir, const std::string& name, const struct btf* vmlinux) {
    auto found = module_btf_path(btf_dir, name);
    if (!found) return std::unexpected(found.error());
    const std::string& path = *found;
    // btf__parse_split takes a non-const base but only reads it.
    struct btf* b = btf__parse_split(path.c_str(), const_cast<struct btf*>(vmlinux));
    if (!b) {
        int err = errno;
        return fail("cannot parse BTF of kernel module '" + name + "' at " + path +
                        "; does it belong to the kernel BTF in use (--kernel-btf)?",
                    err);
    }
    return BtfPtr(b);
}

std::vector<std::string> list_module_btfs(const std::string& btf_dir) {
    std::vector<std::string> mods;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(btf_dir, ec)) {
        std::string name = entry.path().filename().string();
        if (name != "vmlinux") mods.push_back(std::move(name));
    }
    std::sort(mods.begin(), mods.end());
    return mods;
}

namespace {

// Follows typedefs and const/volatile/restrict/type-tag to the named type.
// Bounded, so a corrupt file with a modifier cycle cannot hang us.
uint32_t skip_mods(const struct btf* b, uint32_t id) {
    for (int hops = 0; hops < 32 && id != 0; ++hops) {
        const struct btf_type* t = btf__type_by_id(b, id);
        if (!t || !(btf_is_mod(t) || btf_is_typedef(t))) return id;
        id = t->type;
    }
    return id;
}

std::string_view type_name(const struct btf* b, const struct btf_type* t) {
    const char* name = btf__name_by_offset(b, t->name_off);
    return name ? name : "";
}

bool is_skb_pointer(const struct btf* b, uint32_t id) {
    const struct btf_type* ptr = btf__type_by_id(b, skip_mods(b, id));
    if (!ptr || !btf_is_ptr(ptr)) return false;
    const struct btf_type* target = btf__type_by_id(b, skip_mods(b, ptr->type));
    // A module may only forward-declare sk_buff when its BTF was not deduplicated.
    bool is_struct = target && (btf_is_struct(target) || (btf_is_fwd(target) && !btf_kflag(target)));
    return is_struct && type_name(b, target) == "sk_buff";
}

bool is_drop_reason(const struct btf* b, uint32_t id) {
    const struct btf_type* t = btf__type_by_id(b, skip_mods(b, id));
    return t && btf_is_any_enum(t) && type_name(b, t) == "skb_drop_reason";
}

bool is_void_pointer(const struct btf* b, uint32_t id) {
    const struct btf_type* t = btf__type_by_id(b, skip_mods(b, id));
    return t && btf_is_ptr(t) && skip_mods(b, t->type) == 0;
}

// "Is type id N a struct sk_buff *", remembered per id: the same few pointer
// types appear in thousands of prototypes, and vmlinux has ~60k FUNCs to test.
// Ids below the vmlinux type count mean the same thing in every module's split
// BTF, so only the module part is forgotten when moving to the next module.
class SkbPointerMemo {
  public:
    void use(const struct btf* b, uint32_t base_cnt) {
        btf_ = b;
        memo_.resize(std::min<size_t>(memo_.size(), base_cnt));
        memo_.resize(btf__type_cnt(b), kUnknown);
    }
    bool operator()(uint32_t id) {
        if (id >= memo_.size()) return is_skb_pointer(btf_, id);
        if (memo_[id] == kUnknown) memo_[id] = is_skb_pointer(btf_, id) ? kYes : kNo;
        return memo_[id] == kYes;
    }

  private:
    static constexpr int8_t kUnknown = -1, kNo = 0, kYes = 1;
    const struct btf* btf_ = nullptr;
    std::vector<int8_t> memo_;
};

// The FUNC_PROTO behind a FUNC, or behind a `btf_trace_*` typedef (a pointer to one).
const struct btf_type* func_proto(const struct btf* b, uint32_t id) {
    const struct btf_type* t = btf__type_by_id(b, skip_mods(b, id));
    if (t && btf_is_ptr(t)) t = btf__type_by_id(b, skip_mods(b, t->type));
    return t && btf_is_func_proto(t) ? t : nullptr;
}

// Appends the skb functions among the types [first_id, type count) of b.
void collect_functions(const struct btf* b, uint32_t first_id, const std::string& module, const RE2* filter,
                       SkbPointerMemo& is_skb, std::vector<SkbFunction>& out) {
    const uint32_t count = btf__type_cnt(b);
    for (uint32_t id = first_id; id < count; ++id) {
        const struct btf_type* t = btf__type_by_id(b, id);
        if (!btf_is_func(t)) continue;
        const struct btf_type* proto = func_proto(b, t->type);
        if (!proto) continue;
        const struct btf_param* params = btf_params(proto);
        const int nargs = std::min<int>(btf_vlen(proto), PWRU_MAX_SKB_POS);
        SkbFunction fn;
        for (int i = 0; i < nargs; ++i)
            if (!fn.skb_pos && is_skb(params[i].type)) fn.skb_pos = i + 1;
        if (!fn.skb_pos) continue;
        // Cheap tests first: the regex only sees the ~2k skb functions, not all 60k.
        std::string_view name = type_name(b, t);
        if (filter && !RE2::FullMatch(name, *filter)) continue;
        // A reason only where it is the drop verdict (drop_verdict.cc says why
        // an skb_drop_reason parameter alone is not: skb_release_data).
        if (function_reports_drop_reason(name))
            for (int i = 0; i < nargs && !fn.reason_pos; ++i)
                if (is_drop_reason(b, params[i].type)) fn.reason_pos = i + 1;
        fn.name = name;
        fn.module = module;
        out.push_back(std::move(fn));
    }
}

std::vector<std::string> selected_modules(const DiscoveryOptions& opts) {
    return opts.all_kmods ? list_module_btfs(opts.btf_dir) : opts.kmods;
}

// --filter-func compiled once; null when not given.
Result<std::unique_ptr<RE2>> compile_filter_func(const DiscoveryOptions& opts) {
    if (opts.filter_func.empty()) return nullptr;
    auto filter = std::make_unique<RE2>(opts.filter_func, RE2::Quiet);
    if (!filter->ok()) return bad_input("invalid --filter-func regex '" + opts.filter_func + "': " + filter->error());
    return filter;
}

}  // namespace

Result<std::vector<SkbFunction>> discover_skb_functions(const DiscoveryOptions& opts) {
    auto filter = compile_filter_func(opts);
    if (!filter) return std::unexpected(filter.error());
    const RE2* re = filter->get();

    auto vmlinux = load_kernel_btf(opts.kernel_btf);
    if (!vmlinux) return std::unexpected(vmlinux.error());
    const uint32_t base_cnt = btf__type_cnt(vmlinux->get());

    std::vector<SkbFunction> out;
    SkbPointerMemo is_skb;
    is_skb.use(vmlinux->get(), base_cnt);
    collect_functions(vmlinux->get(), 1, "", re, is_skb, out);

    for (const std::string& mod : selected_modules(opts)) {
        auto mb = load_module_btf(opts.btf_dir, mod, vmlinux->get());
        // With --all-kmods a module unloaded since the listing is simply gone.
        if (!mb && opts.all_kmods && mb.error().err == ENOENT) continue;
        if (!mb) return std::unexpected(mb.error());
        is_skb.use(mb->get(), base_cnt);
        collect_functions(mb->get(), base_cnt, mod, re, is_skb, out);
    }

    // Static functions share names across files; keep the first seen (vmlinux
    // before modules, as kallsyms lookups by name also prefer vmlinux).
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    out.erase(std::unique(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name == b.name; }),
              out.end());
    return out;
}

Result<std::vector<SkbTracepoint>> discover_skb_tracepoints(const DiscoveryOptions& opts) {
    // --filter-func selects tracepoints by name on the tracepoint backend.
    auto filter = compile_filter_func(opts);
    if (!filter) return std::unexpected(filter.error());
    auto vmlinux = load_kernel_btf(opts.kernel_btf);
    if (!vmlinux) return std::unexpected(vmlinux.error());
    const struct btf* b = vmlinux->get();
    constexpr std::string_view kPrefix = "btf_trace_";

    std::vector<SkbTracepoint> out;
    const uint32_t count = btf__type_cnt(b);
    for (uint32_t id = 1; id < count; ++id) {
        const struct btf_type* t = btf__type_by_id(b, id);
        if (!btf_is_typedef(t)) continue;
        std::string_view name = type_name(b, t);
        if (!name.starts_with(kPrefix)) continue;
        const struct btf_type* proto = func_proto(b, t->type);
        if (!proto) continue;
        // Parameter 0 is the tracepoint's `void *__data`, not a TP_PROTO argument.
        const struct btf_param* params = btf_params(proto);
        const int nparams = btf_vlen(proto);
        SkbTracepoint tp;
        for (int i = 1; i < nparams; ++i)
            if (tp.skb_arg < 0 && is_skb_pointer(b, params[i].type)) tp.skb_arg = i - 1;
        if (tp.skb_arg < 0) continue;
        tp.name = name.substr(kPrefix.size());
        if (*filter && !RE2::FullMatch(tp.name, **filter)) continue;
        if (tracepoint_reports_drop_reason(tp.name))
            for (int i = 1; i < nparams && tp.reason_arg < 0; ++i)
                if (is_drop_reason(b, params[i].type)) tp.reason_arg = i - 1;
        // Only these two are known to pass the caller's address right after the
        // skb; elsewhere a void * there means something else.
        const int after = tp.skb_arg + 2;  // params index of the argument after skb
        if (tracepoint_ends_skb(tp.name) && after < nparams && is_void_pointer(b, params[after].type))
            tp.location_arg = tp.skb_arg + 1;
        out.push_back(std::move(tp));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

}  // namespace pwru
