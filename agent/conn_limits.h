// Admission of connections to one listener: at most N in total and M per
// client address. Pure bookkeeping (the server decides what to close), so
// it is tested without sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace pwru::agent {

class ConnLimits {
  public:
    ConnLimits(size_t max_total, size_t max_per_source) : max_total_(max_total), max_per_source_(max_per_source) {}

    enum class Verdict { admitted, source_full, total_full };
    // Counts the connection in when under both caps. `replacing`: one
    // connection was just closed to make room, so the total cap is not
    // checked (the closed one releases its count when it ends).
    Verdict try_admit(const std::string& source, bool replacing = false);
    void release(const std::string& source);

    size_t open() const;
    size_t open_from(const std::string& source) const;
    size_t max_total() const { return max_total_; }
    size_t max_per_source() const { return max_per_source_; }

  private:
    const size_t max_total_, max_per_source_;
    mutable std::mutex mu_;
    size_t total_ = 0;
    std::map<std::string, size_t> per_source_;
};

}  // namespace pwru::agent
