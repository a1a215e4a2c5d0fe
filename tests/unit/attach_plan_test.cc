// The attach layer's planning step is pure (tracer/attach/skb_probes.h): what
// kprobe-multi will be given, decided from the plan and kallsyms alone.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tracer/attach/skb_probes.h"

using namespace pwru;

namespace {

Kallsyms kallsyms_of(const std::string& text) {
    std::string path = (std::filesystem::temp_directory_path() / "pwru-attach-plan-XXXXXX").string();
    int fd = ::mkstemp(path.data());
    REQUIRE(fd >= 0);
    ::close(fd);
    std::ofstream(path) << text;
    auto ks = Kallsyms::load(path);
    std::filesystem::remove(path);
    REQUIRE(ks);
    return std::move(*ks);
}

std::vector<SkbFunction> functions() {
    return {
        {"ip_rcv", 1, 0, ""}, {"kfree_skb_reason", 1, 2, ""}, {"nf_hook_slow", 1, 0, ""}, {"veth_xmit", 1, 0, "veth"}};
}

}  // namespace

TEST_CASE("kprobe-multi is planned by name when kallsyms shows no addresses", "[unit]") {
    auto fns = functions();
    fns[2].skb_pos = 3;
    MultiPlan plan = plan_kprobe_multi(fns, nullptr);
    REQUIRE(plan.targets.size() == 4);
    CHECK(plan.skipped.empty());
    for (size_t i = 0; i < fns.size(); ++i) {
        CHECK(plan.targets[i].name == fns[i].name);
        CHECK(plan.targets[i].addr == 0);
        // The skb's argument position: which kprobe_multi_skb_N program runs there.
        CHECK(plan.targets[i].skb_pos == fns[i].skb_pos);
    }
}

TEST_CASE("kprobe-multi is planned by address, and a function kallsyms lacks is skipped and named", "[unit]") {
    Kallsyms ks = kallsyms_of(
        "ffffffff81000100 T ip_rcv\n"
        "ffffffff81000200 T kfree_skb_reason\n"
        "ffffffffc0001000 t veth_xmit\t[veth]\n");
    REQUIRE(ks.addresses_visible());
    MultiPlan plan = plan_kprobe_multi(functions(), &ks);
    REQUIRE(plan.targets.size() == 3);
    CHECK(plan.targets[0].name == "ip_rcv");
    CHECK(plan.targets[0].addr == 0xffffffff81000100ul);
    CHECK(plan.targets[1].addr == 0xffffffff81000200ul);
    CHECK(plan.targets[2].name == "veth_xmit");
    CHECK(plan.targets[2].addr == 0xffffffffc0001000ul);
    REQUIRE(plan.skipped.size() == 1);
    CHECK(plan.skipped[0] == "nf_hook_slow: not in /proc/kallsyms");
}
