#include "tracer/kernel/verifier_log.h"

#include <string_view>
#include <vector>

namespace pwru {
namespace {

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> out;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!line.empty()) out.push_back(line);
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return out;
}

std::string join_tail(const std::vector<std::string_view>& lines, size_t n, std::string out = {}) {
    size_t from = lines.size() > n ? lines.size() - n : 0;
    for (size_t i = from; i < lines.size(); ++i) {
        if (!out.empty()) out += '\n';
        out += lines[i];
    }
    return out;
}

}  // namespace

std::string verifier_log_tail(const std::string& libbpf_messages, size_t lines) {
    std::string_view all(libbpf_messages);
    constexpr std::string_view kBegin = "-- BEGIN PROG LOAD LOG --";
    constexpr std::string_view kEnd = "-- END PROG LOAD LOG --";
    size_t end = all.rfind(kEnd);
    size_t begin = end == std::string_view::npos ? end : all.rfind(kBegin, end);
    if (begin == std::string_view::npos) return join_tail(split_lines(all), lines);

    // The verifier's own lines.
    std::string_view log = all.substr(begin + kBegin.size(), end - begin - kBegin.size());
    // Which program, and the errno: libbpf's "BPF program load failed" line before the log.
    std::string head;
    size_t failed = all.rfind("BPF program load failed", begin);
    if (failed != std::string_view::npos) {
        size_t sol = all.rfind('\n', failed);
        sol = sol == std::string_view::npos ? 0 : sol + 1;
        size_t eol = all.find('\n', failed);
        head = std::string(all.substr(sol, eol - sol));
    }
    return join_tail(split_lines(log), lines, head);
}

}  // namespace pwru
