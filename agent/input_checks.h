// Exact checks of the client-supplied strings of a trace request (issue #23),
// and the one escaping every log line uses for them.
#pragma once

#include <string>
#include <string_view>

namespace pwru::agent {

// Kubernetes name rules: a namespace is a DNS-1123 label (<= 63 of [a-z0-9-],
// alphanumeric at both ends), a pod name a DNS-1123 subdomain (<= 253, such
// labels joined by dots). "" when `name` is one, else the one-line reason.
std::string check_dns1123_label(std::string_view name);
std::string check_dns1123_subdomain(std::string_view name);

// The first control character (below 0x20, or 0x7f) in `s`: its offset, or npos.
size_t find_control_char(std::string_view s);

// `s` for a log line: control characters, backslash and non-ASCII bytes as
// \n \r \t \\ \xNN, so a client's string can never forge or cut a line.
std::string log_escape(std::string_view s);

}  // namespace pwru::agent
