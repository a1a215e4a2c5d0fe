// Tests in a compiled pcap filter that can never be true, so that the user
// hears of them: libpcap accepts `ip proto 999` (a 1-byte field compared
// with 999) and compiles a filter that matches nothing, silently.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

namespace pwru {

// One line per impossible test: a jeq / jgt / jge whose constant lies beyond
// what the accumulator can hold there on every path (a byte or halfword load,
// followed through the jumps). Anything else loaded (a word, an ALU result) is
// taken to hold any value: no warning.
std::vector<std::string> impossible_comparisons(const std::vector<struct sock_filter>& prog);

}  // namespace pwru
