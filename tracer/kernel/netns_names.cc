#include "tracer/kernel/netns_names.h"

#include <sys/stat.h>

#include <filesystem>

namespace pwru {

void NetnsNames::rescan() {
    names_.clear();
    std::error_code ec;
    for (const auto& dir : dirs_) {
        for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
            struct stat st {};
            if (stat(e.path().c_str(), &st) == 0) names_.emplace(static_cast<uint32_t>(st.st_ino), e.path().filename());
        }
    }
    last_scan_ = std::chrono::steady_clock::now();
    scanned_ = true;
}

const std::string& NetnsNames::name(uint32_t inode) {
    static const std::string kNone;
    auto it = names_.find(inode);
    if (it != names_.end()) return it->second;
    if (!scanned_ || std::chrono::steady_clock::now() - last_scan_ > std::chrono::seconds(1)) {
        rescan();
        it = names_.find(inode);
        if (it != names_.end()) return it->second;
    }
    return kNone;
}

}  // namespace pwru
