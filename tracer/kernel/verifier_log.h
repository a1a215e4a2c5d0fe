// The part of libbpf's output that says why the kernel refused a program: the
// verifier's last lines. libbpf prints the whole log between
// "-- BEGIN PROG LOAD LOG --" and "-- END PROG LOAD LOG --", then lines of its
// own that only say loading failed; an error without --debug carries this tail.
#pragma once

#include <cstddef>
#include <string>

namespace pwru {

// "prog 'NAME': BPF program load failed: ..." (when present), then the last
// `lines` lines of the last verifier log in `libbpf_messages`. Without such a
// log, the last `lines` lines of the messages. No trailing newline.
std::string verifier_log_tail(const std::string& libbpf_messages, size_t lines);

}  // namespace pwru
