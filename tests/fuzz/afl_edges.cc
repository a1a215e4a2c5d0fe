// Edge coverage for afl-fuzz from GCC's -fsanitize-coverage=trace-pc.
//
// Why not AFL++'s own GCC plugin (afl-g++-fast): Debian's afl++ 4.04c plugin
// refuses the GCC that bookworm ships now ("GCC and plugin have incompatible
// versions", its build and the compiler's differ by a Debian security
// rebuild), and clang 14 cannot compile our C++23 (no std::expected with
// libstdc++ 12). GCC itself calls __sanitizer_cov_trace_pc() at every basic
// block of the instrumented sources; this turns consecutive blocks into edges
// in AFL++'s shared map (__afl_area_ptr, set up by afl-compiler-rt.o's fork
// server), the way AFL's classic instrumentation hashes them.
// This file itself is compiled without the instrumentation.
#include <cstdint>

extern "C" {
extern unsigned char* __afl_area_ptr;
extern unsigned int __afl_map_size;

void __sanitizer_cov_trace_pc() {
    static thread_local uintptr_t prev;
    auto cur = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
    cur = (cur >> 4) ^ (cur << 8);
    __afl_area_ptr[(cur ^ prev) % __afl_map_size]++;
    prev = cur >> 1;
}
}
