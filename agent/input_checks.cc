#include "agent/input_checks.h"

#include <cstdio>

namespace pwru::agent {
namespace {

bool alnum_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One DNS-1123 label without the length rule: [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool label_chars_ok(std::string_view l) {
    if (l.empty() || !alnum_lower(l.front()) || !alnum_lower(l.back())) return false;
    for (char c : l)
        if (!alnum_lower(c) && c != '-') return false;
    return true;
}

}  // namespace

std::string check_dns1123_label(std::string_view name) {
    if (name.size() > 63) return "is longer than 63 characters";
    if (!label_chars_ok(name))
        return "is not a Kubernetes name (DNS-1123 label: lower-case letters, digits and '-', starting and ending "
               "with a letter or digit)";
    return "";
}

std::string check_dns1123_subdomain(std::string_view name) {
    if (name.size() > 253) return "is longer than 253 characters";
    for (size_t start = 0;;) {
        size_t dot = name.find('.', start);
        std::string_view label =
            name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.size() > 63 || !label_chars_ok(label))
            return "is not a Kubernetes name (DNS-1123 subdomain: lower-case letters, digits, '-' and '.', each "
                   "part starting and ending with a letter or digit)";
        if (dot == std::string_view::npos) return "";
        start = dot + 1;
    }
}

size_t find_control_char(std::string_view s) {
    for (size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f) return i;
    }
    return std::string_view::npos;
}

std::string log_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        unsigned char c = static_cast<unsigned char>(ch);
        switch (c) {
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\\': out += "\\\\"; break;
            default:
                if (c < 0x20 || c >= 0x7f) {
                    char buf[5];
                    std::snprintf(buf, sizeof buf, "\\x%02x", c);
                    out += buf;
                } else {
                    out += ch;
                }
        }
    }
    return out;
}

}  // namespace pwru::agent
