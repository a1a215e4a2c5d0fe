#include "tracer/kernel/log.h"

#include <bpf/libbpf.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace pwru {
namespace {

std::mutex g_messages_mutex;
std::string g_messages;  // bounded: see append_message
bool g_debug = false;

void append_message(const char* text) {
    std::lock_guard lock(g_messages_mutex);
    // Keep the tail: a verifier log can be megabytes, its end says why.
    constexpr size_t kMax = 64 * 1024;
    g_messages += text;
    if (g_messages.size() > kMax) g_messages.erase(0, g_messages.size() - kMax);
}

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
    if (level == LIBBPF_DEBUG && !g_debug) return 0;
    // Measure first: a verifier log arrives as one message of many kilobytes.
    va_list copy;
    va_copy(copy, args);
    int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    if (n < 0) return n;
    std::string text(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(text.data(), text.size(), fmt, args);
    text.resize(static_cast<size_t>(n));
    if (level != LIBBPF_DEBUG) append_message(text.c_str());
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (g_debug) spdlog::debug("libbpf: {}", text);
    return n;
}

}  // namespace

void init_logging(bool debug) {
    g_debug = debug;
    auto logger = spdlog::get("pwru");
    if (!logger) logger = spdlog::stderr_logger_mt("pwru");
    logger->set_pattern("%Y/%m/%d %H:%M:%S %v");
    logger->set_level(debug ? spdlog::level::debug : spdlog::level::info);
    spdlog::set_default_logger(logger);
    route_libbpf_logs();
}

void route_libbpf_logs() { libbpf_set_print(libbpf_print); }

std::string take_libbpf_messages() {
    std::lock_guard lock(g_messages_mutex);
    std::string out;
    out.swap(g_messages);
    return out;
}

}  // namespace pwru
