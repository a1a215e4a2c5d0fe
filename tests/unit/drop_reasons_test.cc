// Drop reason names from the live kernel BTF, and subsystem reasons (which
// this kernel has no module for) from BTF files the test writes.
#include "tracer/kernel/drop_reasons.h"

#include <bpf/btf.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "support/test_files.h"
#include <filesystem>
#include <fstream>
#include <optional>

#include "tracer/kernel/btf_discovery.h"

using namespace pwru;
using pwru::test::TempDir;
using pwru::test::write_btf;

namespace {

// The value of an enumerator of `enum skb_drop_reason`, read independently of DropReasons.
std::optional<uint32_t> live_reason_value(const char* enumerator) {
    auto b = load_kernel_btf("/sys/kernel/btf/vmlinux");
    REQUIRE(b.has_value());
    int id = btf__find_by_name_kind(b->get(), "skb_drop_reason", BTF_KIND_ENUM);
    if (id <= 0) return std::nullopt;
    const struct btf_type* t = btf__type_by_id(b->get(), id);
    const struct btf_enum* e = btf_enum(t);
    for (int i = 0; i < btf_vlen(t); ++i)
        if (std::string_view(btf__name_by_offset(b->get(), e[i].name_off)) == enumerator) return uint32_t(e[i].val);
    return std::nullopt;
}

void add_enum(struct btf* b, const char* name, std::initializer_list<std::pair<const char*, int64_t>> values) {
    REQUIRE(btf__add_enum(b, name, 4) > 0);
    for (auto [value_name, value] : values) REQUIRE(btf__add_enum_value(b, value_name, value) == 0);
}

}  // namespace

TEST_CASE("DropReasons names the live kernel's drop reasons", "[unit]") {
    auto reasons = DropReasons::load();
    REQUIRE(reasons.has_value());
    REQUIRE_FALSE(reasons->empty());
    WARN(reasons->size() << " drop reasons in /sys/kernel/btf/vmlinux");

    auto netfilter = live_reason_value("SKB_DROP_REASON_NETFILTER_DROP");
    REQUIRE(netfilter);
    CHECK(reasons->name(*netfilter) == "SKB_DROP_REASON_NETFILTER_DROP");
    auto not_specified = live_reason_value("SKB_DROP_REASON_NOT_SPECIFIED");
    REQUIRE(not_specified);
    CHECK(reasons->name(*not_specified) == "SKB_DROP_REASON_NOT_SPECIFIED");
    CHECK(reasons->name(60000) == "UNKNOWN(60000)");
    // SKB_DROP_REASON_SUBSYS_MASK is an enumerator but not a reason.
    CHECK(reasons->name(0xffff0000u) == "SUBSYS_65535:0");
}

TEST_CASE("DropReasons names subsystem reasons from vmlinux and module BTF", "[unit]") {
    TempDir dir{"pwru-drop"};
    BtfPtr base(btf__new_empty());
    add_enum(base.get(), "skb_drop_reason",
             {{"SKB_DROP_REASON_NOT_SPECIFIED", 2}, {"SKB_DROP_REASON_SUBSYS_MASK", 0xffff0000}});
    add_enum(base.get(), "skb_drop_reason_subsys",
             {{"SKB_DROP_REASON_SUBSYS_CORE", 0},
              {"SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE", 1},
              {"SKB_DROP_REASON_SUBSYS_OPENVSWITCH", 2}});
    // mac80211 built in: its enum is in vmlinux, with values below 1 << 16 too.
    add_enum(base.get(), "mac80211_drop_reason", {{"RX_CONTINUE", 1}, {"RX_DROP_U_MIC_FAIL", 0x10001}});
    write_btf(base.get(), dir.path / "vmlinux");
    BtfPtr ovs(btf__new_empty_split(base.get()));
    add_enum(ovs.get(), "ovs_drop_reason", {{"__OVS_DROP_REASON", 0x20000}, {"OVS_DROP_LAST_ACTION", 0x20001}});
    write_btf(ovs.get(), dir.path / "openvswitch");

    const std::string vmlinux = (dir.path / "vmlinux").string();
    auto reasons = DropReasons::load(vmlinux, dir.path.string());
    REQUIRE(reasons.has_value());
    CHECK(reasons->name(2) == "SKB_DROP_REASON_NOT_SPECIFIED");
    CHECK(reasons->name(1) == "UNKNOWN(1)");  // RX_CONTINUE is not a drop reason
    CHECK(reasons->name(0x10001) == "RX_DROP_U_MIC_FAIL");
    CHECK(reasons->name(0x10002) == "SUBSYS_MAC80211_UNUSABLE:2");
    CHECK(reasons->name(0x20001) == "OVS_DROP_LAST_ACTION");
    CHECK(reasons->name(0x70005) == "SUBSYS_7:5");

    auto without_modules = DropReasons::load(vmlinux, "");
    REQUIRE(without_modules.has_value());
    CHECK(without_modules->name(0x20001) == "SUBSYS_OPENVSWITCH:1");
}

TEST_CASE("DropReasons: an old kernel has none, a missing file is an error", "[unit]") {
    TempDir dir{"pwru-drop"};
    BtfPtr old_kernel(btf__new_empty());
    REQUIRE(btf__add_int(old_kernel.get(), "int", 4, BTF_INT_SIGNED) > 0);
    write_btf(old_kernel.get(), dir.path / "vmlinux");
    auto reasons = DropReasons::load((dir.path / "vmlinux").string(), "");
    REQUIRE(reasons.has_value());
    CHECK(reasons->empty());
    CHECK(reasons->name(2) == "UNKNOWN(2)");

    auto missing = DropReasons::load((dir.path / "nothing").string());
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().err == ENOENT);
    CHECK(missing.error().message().find("--kernel-btf") != std::string::npos);
}
