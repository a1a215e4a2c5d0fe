// --ready-file FILE: tells a script (or the kind e2e) that the trace is
// attached on every node, so it can start its traffic without a sleep.
//
// Each agent stream either delivers its `start` record (attached) or fails
// (refused, unreachable, an error before start). Once every stream has done
// one or the other and at least one attached, FILE is written, once, with the
// attached nodes one per line (sorted, each once), through a temporary file
// and a rename so a reader never sees half of it. The failures were already
// reported on stderr; when nothing attached, no file is written and the
// plugin exits 1 as usual.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "tracer/util/result.h"

namespace pwru::plugin {

class ReadyFile {
  public:
    // `path` empty: a no-op (no --ready-file). `streams`: how many agent
    // streams were opened.
    ReadyFile(std::string path, size_t streams);

    void on_attached(size_t stream, const std::string& node);
    void on_failed(size_t stream);

    // True once every stream attached or failed, at least one attached, and
    // the file is not written yet: then call write().
    bool due() const;
    // Writes the file (FILE.tmp, then rename). One line saying why on failure.
    Result<void> write();
    bool written() const { return written_; }
    std::string content() const;

  private:
    std::string path_;
    std::vector<bool> settled_;
    size_t settled_count_ = 0;
    std::set<std::string> attached_nodes_;
    bool written_ = false;

    void settle(size_t stream);
};

}  // namespace pwru::plugin
