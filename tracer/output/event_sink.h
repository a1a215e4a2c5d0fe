// Where event lines go: stdout, or --output-file with size-based rotation
// (FILE, FILE.1 ... FILE.N, the oldest dropped), as pwru's lumberjack does:
// at most N backups, none older than the maximum age, gzipped on request.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>

#include "tracer/util/result.h"

namespace pwru {

struct RotationOptions {
    uint64_t max_bytes = 100ull << 20;  // --output-file-max-size (MB on the command line)
    unsigned max_backups = 0;           // --output-file-max-backups; 0 keeps them all (pwru's default)
    unsigned max_age_days = 0;          // --output-file-max-age; 0 keeps them whatever their age
    bool compress = false;              // --output-file-compress: backups are FILE.N.gz
};

class EventSink {
  public:
    // stdout.
    EventSink() : file_(stdout) {}
    // A file, truncated, rotated when a line would take it past max_bytes.
    // Backups of an earlier run older than max_age_days go now.
    static Result<EventSink> open(const std::string& path, RotationOptions rotation);

    EventSink(EventSink&& o) noexcept;
    EventSink& operator=(EventSink&&) = delete;
    EventSink(const EventSink&) = delete;
    ~EventSink();

    // One record: text and a newline. A record is never split across files.
    Result<void> write_line(std::string_view line);
    // Writes out what stdio buffered: a failure here means the lines since the
    // last successful flush may not have reached the output.
    Result<void> flush();
    FILE* stream() const { return file_; }

  private:
    Result<void> rotate();
    // FILE.N or FILE.N.gz that exist now, by N.
    std::map<unsigned, std::string> backups() const;
    // Removes backups last modified more than max_age_days ago.
    void remove_expired() const;

    FILE* file_ = nullptr;
    std::string path_;  // "" for stdout
    RotationOptions rotation_;
    uint64_t written_ = 0;
};

}  // namespace pwru
