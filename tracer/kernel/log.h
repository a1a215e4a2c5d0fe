// Logging: pwru's log lines ("2024/02/04 02:19:22 Attaching ...") go to
// stderr through spdlog; libbpf's own messages are routed here too and stay
// quiet unless --debug. The last libbpf warnings are kept so an Error can
// carry them (the verifier log, a failed relocation).
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace pwru {

// Idempotent: tests and binaries may call it more than once.
void init_logging(bool debug);

// Send libbpf's messages through us (done by init_logging; the library calls
// it too so that errors carry libbpf's words even without init_logging).
void route_libbpf_logs();

// libbpf warnings collected since the last call (then cleared).
std::string take_libbpf_messages();

}  // namespace pwru
