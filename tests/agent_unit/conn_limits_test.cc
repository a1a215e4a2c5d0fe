#include "agent/conn_limits.h"

#include <catch2/catch.hpp>

using pwru::agent::ConnLimits;
using V = ConnLimits::Verdict;

TEST_CASE("ConnLimits: per-address cap, total cap, release and replacing", "[agent_unit]") {
    ConnLimits caps(4, 2);
    CHECK(caps.try_admit("a") == V::admitted);
    CHECK(caps.try_admit("a") == V::admitted);
    CHECK(caps.try_admit("a") == V::source_full);
    CHECK(caps.try_admit("b") == V::admitted);
    CHECK(caps.try_admit("c") == V::admitted);
    CHECK(caps.open() == 4);
    CHECK(caps.try_admit("d") == V::total_full);
    CHECK(caps.open_from("d") == 0);
    // One closed to make room: admitted over the total until it releases.
    CHECK(caps.try_admit("d", /*replacing=*/true) == V::admitted);
    CHECK(caps.open() == 5);
    CHECK(caps.try_admit("a", /*replacing=*/true) == V::source_full);  // the address cap still holds
    caps.release("a");
    CHECK(caps.open_from("a") == 1);
    CHECK(caps.open() == 4);
    caps.release("nobody");  // unknown: no change
    CHECK(caps.open() == 4);
    for (const char* s : {"a", "b", "c", "d"}) caps.release(s);
    CHECK(caps.open() == 0);
    CHECK(caps.try_admit("a") == V::admitted);
}
