// The thread helpers the kprobe attach/detach paths use (tracer/attach/parallel_for.h,
// tracer/attach/kprobe_teardown.h): every item runs once, on its group's CPU.
#include "tracer/attach/parallel_for.h"

#include <sched.h>
#include <stdlib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <set>
#include <vector>

#include "tracer/attach/kprobe_teardown.h"

using namespace pwru;

TEST_CASE("parallel_for runs every index once", "[parallel_for]") {
    for (unsigned threads : {1u, 4u, 64u}) {
        std::vector<std::atomic<int>> runs(1000);
        parallel_for(runs.size(), threads, [&](size_t i) { runs[i].fetch_add(1); });
        for (auto& r : runs) REQUIRE(r.load() == 1);
    }
    parallel_for(0, 8, [](size_t) { FAIL("no items, no calls"); });
}

TEST_CASE("run_on_cpus runs each item once, on its group's CPU", "[parallel_for]") {
    std::vector<int> cpus = allowed_cpus();
    REQUIRE(!cpus.empty());
    std::vector<CpuGroup> groups;
    size_t n = 0;
    for (size_t g = 0; g < std::min<size_t>(cpus.size(), 4); ++g) {
        CpuGroup group{cpus[g], {}};
        for (int k = 0; k < 50; ++k) group.items.push_back(n++);
        groups.push_back(group);
    }
    groups.push_back(CpuGroup{-1, {n, n + 1, n + 2}});  // unpinned
    n += 3;
    std::vector<std::atomic<int>> runs(n);
    std::vector<int> ran_on(n, -2);
    run_on_cpus(groups, 3, [&](size_t i) {
        runs[i].fetch_add(1);
        ran_on[i] = sched_getcpu();
    });
    for (auto& r : runs) REQUIRE(r.load() == 1);
    for (const auto& g : groups)
        if (g.cpu >= 0)
            for (size_t i : g.items) CHECK(ran_on[i] == g.cpu);
}

TEST_CASE("kprobe placement: pinned to one CPU by default, one unpinned group with PWRU_KPROBE_PIN=0",
          "[parallel_for]") {
    setenv("PWRU_KPROBE_THREADS", "1", 1);
    unsetenv("PWRU_KPROBE_PIN");
    KprobePlacement one = kprobe_placement();
    CHECK(one.threads == 1);
    CHECK(one.cpus.size() == 1);
    CHECK(one.cpus.front() >= 0);
    CHECK_FALSE(one.enable_events);  // the program runs from the kprobe: no need
    setenv("PWRU_KPROBE_ENABLE", "1", 1);
    CHECK(kprobe_placement().enable_events);
    unsetenv("PWRU_KPROBE_ENABLE");

    setenv("PWRU_KPROBE_THREADS", "16", 1);
    KprobePlacement pinned = kprobe_placement();
    CHECK(pinned.cpus == std::vector<int>{allowed_cpus().front()});
    CHECK(pinned.threads_per_cpu == 16);
    std::vector<CpuGroup> groups = spread_over_cpus(10, pinned);
    std::set<size_t> all;
    for (const auto& g : groups) all.insert(g.items.begin(), g.items.end());
    CHECK(all.size() == 10);

    setenv("PWRU_KPROBE_PIN", "0", 1);
    KprobePlacement unpinned = kprobe_placement();
    CHECK(unpinned.cpus == std::vector<int>{-1});
    CHECK(unpinned.threads_per_cpu == 16);
    unsetenv("PWRU_KPROBE_PIN");

    // --filter-kprobe-batch wins over the environment, 0 returns to it
    set_kprobe_batch(3);
    CHECK(kprobe_threads() == 3);
    CHECK(kprobe_placement().threads == 3);
    set_kprobe_batch(0);
    CHECK(kprobe_threads() == 16);
    unsetenv("PWRU_KPROBE_THREADS");
}
