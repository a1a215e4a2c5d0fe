// BTF discovery on the live kernel BTF (what pwru would trace here) and on
// small BTF files written by the test, for what the live kernel lacks: module
// BTF, skb beyond argument 5, duplicate names, forward-declared sk_buff.
#include <bpf/btf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "support/test_files.h"
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "tracer/kernel/btf_discovery.h"
#include "tracer/events/drop_verdict.h"

using namespace pwru;
using pwru::test::TempDir;
using pwru::test::write_btf;

namespace {

const SkbFunction* find_fn(const std::vector<SkbFunction>& fns, const std::string& name) {
    auto it = std::lower_bound(fns.begin(), fns.end(), name,
                               [](const SkbFunction& f, const std::string& n) { return f.name < n; });
    return it != fns.end() && it->name == name ? &*it : nullptr;
}

bool kernel_at_least(int major, int minor) {
    struct utsname u {};
    int ma = 0, mi = 0;
    return ::uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &ma, &mi) == 2 &&
           (ma > major || (ma == major && mi >= minor));
}

// Adds `void name(params...)` and returns nothing: the tests look them up by name.
void add_func(struct btf* b, const char* name, std::initializer_list<int> param_types) {
    int proto = btf__add_func_proto(b, 0);
    for (int type : param_types) REQUIRE(btf__add_func_param(b, "", type) == 0);
    REQUIRE(btf__add_func(b, name, BTF_FUNC_GLOBAL, proto) > 0);
}

// A tiny "vmlinux" and a module "mymod" split on it, in dir/vmlinux and dir/mymod.
struct SyntheticKernel {
    TempDir dir{"pwru-btf"};
    std::string vmlinux = (dir.path / "vmlinux").string();

    SyntheticKernel() {
        BtfPtr base(btf__new_empty());
        struct btf* b = base.get();
        int int_t = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
        int skb = btf__add_struct(b, "sk_buff", 232);
        int skb_ptr = btf__add_ptr(b, skb);
        int const_skb_ptr = btf__add_ptr(b, btf__add_const(b, skb));
        int skb_ptr_typedef = btf__add_typedef(b, "skb_ptr_t", skb_ptr);
        int reason = btf__add_enum(b, "skb_drop_reason", 4);
        REQUIRE(btf__add_enum_value(b, "SKB_DROP_REASON_NOT_SPECIFIED", 2) == 0);
        int void_ptr = btf__add_ptr(b, 0);

        add_func(b, "first", {skb_ptr});
        add_func(b, "const_second", {int_t, const_skb_ptr});
        add_func(b, "typedef_fifth_reason", {int_t, int_t, reason, int_t, skb_ptr_typedef});
        // A drop function (drop_verdict.cc): its reason is the verdict.
        add_func(b, "sk_skb_reason_drop", {void_ptr, skb_ptr, reason});
        // 6.12's static skb_release_data(skb, reason, napi_safe): not a verdict.
        add_func(b, "skb_release_data", {skb_ptr, reason, int_t});
        add_func(b, "sixth", {int_t, int_t, int_t, int_t, int_t, skb_ptr});
        add_func(b, "no_skb", {int_t, void_ptr});
        add_func(b, "dup", {skb_ptr});
        add_func(b, "dup", {int_t, skb_ptr});

        // Tracepoints: void (*)(void *__data, TP_PROTO args...).
        auto add_tp = [&](const char* name, std::initializer_list<int> args) {
            int proto = btf__add_func_proto(b, 0);
            REQUIRE(btf__add_func_param(b, "__data", void_ptr) == 0);
            for (int type : args) REQUIRE(btf__add_func_param(b, "", type) == 0);
            REQUIRE(btf__add_typedef(b, name, btf__add_ptr(b, proto)) > 0);
        };
        add_tp("btf_trace_kfree_skb", {skb_ptr, void_ptr, reason});
        add_tp("btf_trace_lookalike", {skb_ptr, void_ptr, reason});
        add_tp("btf_trace_second_const", {int_t, const_skb_ptr});
        add_tp("btf_trace_no_skb", {int_t});
        write_btf(b, vmlinux);

        BtfPtr mod(btf__new_empty_split(b));
        struct btf* m = mod.get();
        add_func(m, "mod_third", {int_t, int_t, skb_ptr});
        // A module whose BTF was not deduplicated against vmlinux may only see a FWD.
        add_func(m, "mod_fwd", {btf__add_ptr(m, btf__add_fwd(m, "sk_buff", BTF_FWD_STRUCT))});
        add_func(m, "first", {int_t, skb_ptr});  // same name as a vmlinux function
        write_btf(m, dir.path / "mymod");
    }

    DiscoveryOptions options() const {
        DiscoveryOptions o;
        o.kernel_btf = vmlinux;
        o.btf_dir = dir.path.string();
        return o;
    }
};

}  // namespace

TEST_CASE("discover_skb_functions finds the skb functions of the live kernel", "[unit]") {
    auto start = std::chrono::steady_clock::now();
    auto fns = discover_skb_functions({});
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    REQUIRE(fns.has_value());
    WARN("discovered " << fns->size() << " skb functions in /sys/kernel/btf/vmlinux in " << ms.count() << " ms");
    CHECK(fns->size() > 1000);
    CHECK(std::is_sorted(fns->begin(), fns->end(), [](const auto& a, const auto& b) { return a.name <= b.name; }));
    CHECK(std::all_of(fns->begin(), fns->end(),
                      [](const SkbFunction& f) { return f.skb_pos >= 1 && f.skb_pos <= 5 && f.module.empty(); }));

    const SkbFunction* ip_rcv = find_fn(*fns, "ip_rcv");
    REQUIRE(ip_rcv);
    CHECK(ip_rcv->skb_pos == 1);
    CHECK(ip_rcv->reason_pos == 0);
    const SkbFunction* netif = find_fn(*fns, "__netif_receive_skb");
    REQUIRE(netif);
    CHECK(netif->skb_pos == 1);

    // Before 6.11 the drop function; since then an inline wrapper, absent from BTF.
    if (const SkbFunction* f = find_fn(*fns, "kfree_skb_reason")) {
        CHECK(f->skb_pos == 1);
        CHECK(f->reason_pos == 2);
    } else {
        WARN("kfree_skb_reason is not a BTF function on this kernel (inlined since 6.11)");
    }
    const SkbFunction* drop = find_fn(*fns, "sk_skb_reason_drop");
    if (kernel_at_least(6, 11)) REQUIRE(drop);
    if (drop) {
        CHECK(drop->skb_pos == 2);
        CHECK(drop->reason_pos == 3);
    }
    CHECK(std::any_of(fns->begin(), fns->end(), [](const auto& f) { return f.skb_pos >= 2; }));
    // Functions with an skb_drop_reason parameter that is not the verdict.
    for (const char* name : {"skb_release_data", "skb_release_all", "__napi_kfree_skb", "tcp_drop_reason"})
        if (const SkbFunction* f = find_fn(*fns, name)) {
            INFO(name);
            CHECK(f->reason_pos == 0);
        }
    // Every function with a decoded reason is one of the drop functions.
    for (const auto& f : *fns) {
        INFO(f.name);
        if (f.reason_pos) CHECK(function_reports_drop_reason(f.name));
    }
}

TEST_CASE("--filter-func must match the whole function name", "[unit]") {
    DiscoveryOptions opts;
    opts.filter_func = "ip_rcv.*";
    auto fns = discover_skb_functions(opts);
    REQUIRE(fns.has_value());
    REQUIRE(find_fn(*fns, "ip_rcv"));
    CHECK(find_fn(*fns, "ip_rcv_finish"));
    for (const auto& f : *fns) CHECK(f.name.starts_with("ip_rcv"));

    opts.filter_func = "rcv";
    fns = discover_skb_functions(opts);
    REQUIRE(fns.has_value());
    for (const auto& f : *fns) CHECK(f.name == "rcv");
}

TEST_CASE("discovery errors are one line saying what to do", "[unit]") {
    DiscoveryOptions opts;
    opts.filter_func = "ip_rcv(";
    auto bad_regex = discover_skb_functions(opts);
    REQUIRE_FALSE(bad_regex.has_value());
    std::string msg = bad_regex.error().message();
    CHECK(msg.starts_with("invalid --filter-func regex 'ip_rcv(': "));
    CHECK(msg.find('\n') == std::string::npos);

    opts = {};
    opts.kernel_btf = "/nonexistent/vmlinux";
    auto no_btf = discover_skb_functions(opts);
    REQUIRE_FALSE(no_btf.has_value());
    CHECK(no_btf.error().err == ENOENT);
    msg = no_btf.error().message();
    CHECK(msg.find("'/nonexistent/vmlinux'") != std::string::npos);
    CHECK(msg.find("--kernel-btf") != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
    CHECK_FALSE(discover_skb_tracepoints(opts).has_value());

    opts = {};
    opts.kmods = {"pwru_no_such_module"};
    auto no_mod = discover_skb_functions(opts);
    REQUIRE_FALSE(no_mod.has_value());
    msg = no_mod.error().message();
    CHECK(msg.find("'pwru_no_such_module'") != std::string::npos);
    CHECK(no_mod.error().kind == pwru::ErrorKind::NotFound);  // exit 2, as on the tracepoint backend
    CHECK(msg.find("/sys/kernel/btf") != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
}

TEST_CASE("discover_skb_functions reads arguments 1..5, modifiers and module BTF", "[unit]") {
    SyntheticKernel k;
    auto fns = discover_skb_functions(k.options());
    REQUIRE(fns.has_value());
    std::map<std::string, std::pair<int, int>> got;  // name -> (skb_pos, reason_pos)
    for (const auto& f : *fns) got[f.name] = {f.skb_pos, f.reason_pos};
    CHECK(got == std::map<std::string, std::pair<int, int>>{
                     {"const_second", {2, 0}},
                     {"dup", {1, 0}},  // the first of the two kept
                     {"first", {1, 0}},
                     // A reason parameter is decoded only on the drop functions.
                     {"sk_skb_reason_drop", {2, 3}},
                     {"skb_release_data", {1, 0}},
                     {"typedef_fifth_reason", {5, 0}},
                 });

    auto opts = k.options();
    opts.kmods = {"mymod"};
    fns = discover_skb_functions(opts);
    REQUIRE(fns.has_value());
    CHECK(fns->size() == 8);
    const SkbFunction* third = find_fn(*fns, "mod_third");
    REQUIRE(third);
    CHECK(third->skb_pos == 3);
    CHECK(third->module == "mymod");
    REQUIRE(find_fn(*fns, "mod_fwd"));
    CHECK(find_fn(*fns, "first")->module.empty());  // vmlinux wins over the module

    opts = k.options();
    opts.all_kmods = true;
    opts.filter_func = "mod_.*";
    fns = discover_skb_functions(opts);
    REQUIRE(fns.has_value());
    CHECK(fns->size() == 2);
}

TEST_CASE("discover_skb_tracepoints reads the btf_trace_ prototypes", "[unit]") {
    SyntheticKernel k;
    auto tps = discover_skb_tracepoints(k.options());
    REQUIRE(tps.has_value());
    REQUIRE(tps->size() == 3);
    const auto& kfree = (*tps)[0];
    CHECK(kfree.name == "kfree_skb");
    CHECK((kfree.skb_arg == 0 && kfree.location_arg == 1 && kfree.reason_arg == 2));
    const auto& lookalike = (*tps)[1];
    CHECK(lookalike.name == "lookalike");
    // Same prototype, but only the kfree_skb tracepoint's reason is a verdict.
    CHECK((lookalike.skb_arg == 0 && lookalike.location_arg == -1 && lookalike.reason_arg == -1));
    const auto& second = (*tps)[2];
    CHECK(second.name == "second_const");
    CHECK((second.skb_arg == 1 && second.location_arg == -1 && second.reason_arg == -1));
}

TEST_CASE("discover_skb_tracepoints finds the skb tracepoints of the live kernel", "[unit]") {
    auto start = std::chrono::steady_clock::now();
    auto tps = discover_skb_tracepoints({});
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    REQUIRE(tps.has_value());
    WARN("discovered " << tps->size() << " skb tracepoints in " << ms.count() << " ms");
    std::map<std::string, SkbTracepoint> by_name;
    for (const auto& tp : *tps) by_name[tp.name] = tp;
    for (const char* name : {"kfree_skb", "consume_skb", "net_dev_queue", "net_dev_start_xmit", "net_dev_xmit",
                             "netif_receive_skb", "netif_rx"}) {
        INFO(name);
        CHECK(by_name.count(name));
    }
    const SkbTracepoint& kfree = by_name["kfree_skb"];
    CHECK(kfree.skb_arg == 0);
    CHECK(kfree.location_arg == 1);
    CHECK(kfree.reason_arg == 2);
    CHECK(by_name["consume_skb"].skb_arg == 0);
    CHECK(by_name["consume_skb"].reason_arg == -1);
}
