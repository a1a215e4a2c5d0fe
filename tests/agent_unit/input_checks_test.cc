// The escaping of client strings in log lines: nothing can forge or cut a line.
#include <catch2/catch.hpp>

#include "agent/input_checks.h"

using namespace pwru::agent;

TEST_CASE("log_escape turns newlines, NULs, backslashes and non-ASCII bytes into visible escapes", "[unit][agent]") {
    using namespace std::string_literals;
    CHECK(log_escape("default/web-0") == "default/web-0");
    CHECK(log_escape("a\n[info] forged"s) == "a\\n[info] forged");
    CHECK(log_escape("a\0b"s) == "a\\x00b");
    CHECK(log_escape("a\r\t\\") == "a\\r\\t\\\\");
    CHECK(log_escape("\x7f\xc3\xa9") == "\\x7f\\xc3\\xa9");
    CHECK(find_control_char("icmp") == std::string_view::npos);
    CHECK(find_control_char("icmp\x01") == 4);
}
