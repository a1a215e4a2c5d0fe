#include "tracer/output/event_sink.h"

#include <sys/vfs.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "tracer/output/gzip_file.h"

namespace pwru {
namespace {

namespace fs = std::filesystem;

// N of "FILE.N" or "FILE.N.gz" (name is a directory entry's file name), or 0.
unsigned backup_number(const std::string& name, const std::string& base) {
    if (name.size() <= base.size() + 1 || name.compare(0, base.size() + 1, base + ".") != 0) return 0;
    std::string rest = name.substr(base.size() + 1);
    if (rest.ends_with(".gz")) rest.resize(rest.size() - 3);
    if (rest.empty() || rest.size() > 9 || rest.find_first_not_of("0123456789") != std::string::npos) return 0;
    return static_cast<unsigned>(std::stoul(rest));
}

}  // namespace

Result<EventSink> EventSink::open(const std::string& path, RotationOptions rotation) {
    EventSink s;
    s.file_ = std::fopen(path.c_str(), "w");
    if (!s.file_)
        return fail("cannot open --output-file " + path + "; check the directory exists and is writable", errno);
    // Files of /proc and /sys open for writing but refuse the first event: say so now.
    struct statfs fs_info {};
    constexpr long kProcMagic = 0x9fa0, kSysfsMagic = 0x62656572;
    if (fstatfs(fileno(s.file_), &fs_info) == 0 && (fs_info.f_type == kProcMagic || fs_info.f_type == kSysfsMagic))
        return bad_input("--output-file " + path +
                         " is a /proc or /sys file, which takes no events; give a file in "
                         "a writable directory");
    s.path_ = path;
    s.rotation_ = rotation;
    s.remove_expired();
    return s;
}

EventSink::EventSink(EventSink&& o) noexcept
    : file_(o.file_), path_(std::move(o.path_)), rotation_(o.rotation_), written_(o.written_) {
    o.file_ = nullptr;
}

EventSink::~EventSink() {
    if (file_ && file_ != stdout)
        std::fclose(file_);
    else if (file_)
        std::fflush(file_);
}

std::map<unsigned, std::string> EventSink::backups() const {
    std::map<unsigned, std::string> out;
    fs::path p(path_);
    fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    const std::string base = p.filename().string();
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        unsigned n = backup_number(it->path().filename().string(), base);
        if (n != 0) out[n] = it->path().string();
    }
    return out;
}

void EventSink::remove_expired() const {
    if (rotation_.max_age_days == 0) return;
    const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(24) * rotation_.max_age_days;
    std::error_code ec;
    for (const auto& [n, file] : backups()) {
        auto mtime = fs::last_write_time(file, ec);
        if (!ec && mtime < cutoff) fs::remove(file, ec);
    }
}

Result<void> EventSink::rotate() {
    std::fclose(file_);
    file_ = nullptr;
    std::error_code ec;
    // FILE.n -> FILE.n+1 (.gz kept), from the oldest; past the limit they go.
    auto existing = backups();
    for (auto it = existing.rbegin(); it != existing.rend(); ++it) {
        const auto& [n, file] = *it;
        if (rotation_.max_backups != 0 && n >= rotation_.max_backups) {
            fs::remove(file, ec);
            continue;
        }
        const bool gz = file.ends_with(".gz");
        fs::rename(file, path_ + "." + std::to_string(n + 1) + (gz ? ".gz" : ""), ec);
    }
    const std::string first = path_ + ".1";
    fs::rename(path_, first, ec);
    if (ec) return fail("cannot rotate --output-file " + path_ + ": " + ec.message());
    if (rotation_.compress) {
        if (auto r = gzip_file(first, first + ".gz"); !r) return r;
        fs::remove(first, ec);
    }
    remove_expired();
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

Result<void> EventSink::flush() {
    if (file_ && std::fflush(file_) != 0)
        return fail("cannot write events" + (path_.empty() ? std::string() : " to " + path_), errno);
    return {};
}

}  // namespace pwru
