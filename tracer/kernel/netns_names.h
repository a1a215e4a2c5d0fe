// Netns inode -> name (from /run/netns), resolved when an inode is first
// seen, not from a snapshot taken at start: namespaces created while
// tracing get their names too. A miss rescans at most once a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace pwru {

class NetnsNames {
  public:
    explicit NetnsNames(std::vector<std::string> dirs = {"/run/netns", "/var/run/netns"}) : dirs_(std::move(dirs)) {}
    // The name, or "" when no named netns has that inode.
    const std::string& name(uint32_t inode);

  private:
    void rescan();

    std::vector<std::string> dirs_;
    std::unordered_map<uint32_t, std::string> names_;
    std::chrono::steady_clock::time_point last_scan_{};
    bool scanned_ = false;
};

}  // namespace pwru
