#include "tracer/event_sink.h"

#include <cerrno>
#include <cstdio>
#include <filesystem>

namespace pwru {

Result<EventSink> EventSink::open(const std::string& path, RotationOptions rotation) {
    EventSink s;
    s.file_ = std::fopen(path.c_str(), "w");
    if (!s.file_) return fail("cannot open --output-file " + path + "; check the directory exists and is writable", errno);
    s.path_ = path;
    s.rotation_ = rotation;
    return s;
}

EventSink::EventSink(EventSink&& o) noexcept
    : file_(o.file_), path_(std::move(o.path_)), rotation_(o.rotation_), written_(o.written_) {
    o.file_ = nullptr;
}

EventSink::~EventSink() {
    if (file_ && file_ != stdout) std::fclose(file_);
    else if (file_) std::fflush(file_);
}

Result<void> EventSink::rotate() {
    std::fclose(file_);
    file_ = nullptr;
    std::error_code ec;
    auto numbered = [&](unsigned n) { return path_ + "." + std::to_string(n); };
    // Shift FILE.n -> FILE.n+1 from the oldest kept; past the limit they go.
    unsigned last = 0;
    while (std::filesystem::exists(numbered(last + 1), ec)) ++last;
    if (rotation_.max_backups != 0)
        for (; last >= rotation_.max_backups && last > 0; --last) std::filesystem::remove(numbered(last), ec);
    for (unsigned n = last; n >= 1; --n) std::filesystem::rename(numbered(n), numbered(n + 1), ec);
    std::filesystem::rename(path_, numbered(1), ec);
    if (ec) return fail("cannot rotate --output-file " + path_ + ": " + ec.message());
    file_ = std::fopen(path_.c_str(), "w");
    if (!file_) return fail("cannot reopen --output-file " + path_ + " after rotation", errno);
    written_ = 0;
    return {};
}

Result<void> EventSink::write_line(std::string_view line) {
    if (!file_) return fail("event output is closed");
    if (!path_.empty() && written_ > 0 && written_ + line.size() + 1 > rotation_.max_bytes)
        if (auto r = rotate(); !r) return r;
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fputc('\n', file_) == EOF)
        return fail("cannot write events" + (path_.empty() ? std::string() : " to " + path_), errno);
    written_ += line.size() + 1;
    return {};
}

void EventSink::flush() {
    if (file_) std::fflush(file_);
}

}  // namespace pwru
