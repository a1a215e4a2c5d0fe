// The one Catch2 main every test layer links.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
