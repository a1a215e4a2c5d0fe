// The verifier tail that a load error carries (tracer/kernel/verifier_log.h), on text
// shaped like what libbpf 1.1 prints when the kernel refuses a program.
#include "tracer/kernel/verifier_log.h"

#include <catch2/catch.hpp>

#include <string>

using pwru::verifier_log_tail;

namespace {

// What libbpf 1.1 prints when the kernel refuses a program (log shortened).
std::string libbpf_failure(int log_lines) {
    std::string s =
        "libbpf: prog 'kprobe_skb_1': BPF program load failed: Permission denied\n"
        "libbpf: prog 'kprobe_skb_1': -- BEGIN PROG LOAD LOG --\n";
    for (int i = 1; i <= log_lines; ++i) s += std::to_string(i) + ": (79) r1 = *(u64 *)(r6 +0)\n";
    s += "R1 invalid mem access 'scalar'\n"
         "processed 1234 insns (limit 1000000) max_states_per_insn 4\n"
         "-- END PROG LOAD LOG --\n"
         "libbpf: prog 'kprobe_skb_1': failed to load: -13\n"
         "libbpf: failed to load object 'pwru_bpf'\n";
    return s;
}

}  // namespace

TEST_CASE("verifier_log_tail keeps the verifier's verdict, not libbpf's last words", "[verifier_log]") {
    std::string tail = verifier_log_tail(libbpf_failure(40), 15);
    CHECK(tail.starts_with("libbpf: prog 'kprobe_skb_1': BPF program load failed: Permission denied\n"));
    CHECK(tail.find("R1 invalid mem access 'scalar'") != std::string::npos);
    CHECK(tail.find("processed 1234 insns") != std::string::npos);
    CHECK(tail.find("failed to load object") == std::string::npos);
    CHECK(tail.find("END PROG LOAD LOG") == std::string::npos);
    // The head line plus 15 log lines: the log's first lines are cut.
    size_t lines = 1;
    for (char c : tail) lines += c == '\n';
    CHECK(lines == 16);
    // 40 instruction lines and 2 of verdict: the last 13 instructions stay.
    CHECK(tail.find("\n27: (79)") == std::string::npos);
    CHECK(tail.find("\n28: (79)") != std::string::npos);
    CHECK(tail.back() != '\n');
}

TEST_CASE("verifier_log_tail of a short log keeps all of it", "[verifier_log]") {
    std::string tail = verifier_log_tail(libbpf_failure(2), 15);
    CHECK(tail.find("1: (79)") != std::string::npos);
    CHECK(tail.find("R1 invalid mem access") != std::string::npos);
}

TEST_CASE("verifier_log_tail without a verifier log is the messages' tail", "[verifier_log]") {
    std::string msgs = "libbpf: a\nlibbpf: b\nlibbpf: map 'events': failed to create: Operation not permitted\n";
    CHECK(verifier_log_tail(msgs, 2) == "libbpf: b\nlibbpf: map 'events': failed to create: Operation not permitted");
    CHECK(verifier_log_tail("", 5).empty());
}
