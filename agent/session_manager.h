// Admission of trace sessions: at most N at a time, none once the agent is
// draining (SIGTERM), and a way to wait until the running ones have ended.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>

namespace pwru::agent {

class SessionManager {
  public:
    explicit SessionManager(size_t max_sessions) : max_(max_sessions) {}

    // A slot held for the session's lifetime (released when the last copy
    // goes); null when max sessions run or the agent drains.
    std::shared_ptr<void> try_acquire();
    size_t active() const;
    size_t max() const { return max_; }

    void begin_drain();
    bool draining() const;
    // True when no session runs within `timeout`.
    bool wait_idle(std::chrono::milliseconds timeout);

  private:
    void release();

    const size_t max_;
    mutable std::mutex mu_;
    std::condition_variable idle_;
    size_t active_ = 0;
    bool draining_ = false;
};

}  // namespace pwru::agent
