// Root-only test layers skip, loudly, when not run as root: a skipped test
// prints why and never passes silently.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>

#define PWRU_REQUIRE_ROOT()                                                     \
    do {                                                                        \
        if (geteuid() != 0) {                                                   \
            WARN("SKIPPED: needs root (BPF, network namespaces); run as root"); \
            return;                                                             \
        }                                                                       \
    } while (0)
