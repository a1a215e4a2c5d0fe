#include "agent/conn_limits.h"

namespace pwru::agent {

ConnLimits::Verdict ConnLimits::try_admit(const std::string& source, bool replacing) {
    std::lock_guard lock(mu_);
    size_t& mine = per_source_[source];
    if (mine >= max_per_source_) return Verdict::source_full;
    if (!replacing && total_ >= max_total_) {
        if (mine == 0) per_source_.erase(source);
        return Verdict::total_full;
    }
    ++mine;
    ++total_;
    return Verdict::admitted;
}

void ConnLimits::release(const std::string& source) {
    std::lock_guard lock(mu_);
    auto it = per_source_.find(source);
    if (it == per_source_.end()) return;
    if (--it->second == 0) per_source_.erase(it);
    --total_;
}

size_t ConnLimits::open() const {
    std::lock_guard lock(mu_);
    return total_;
}

size_t ConnLimits::open_from(const std::string& source) const {
    std::lock_guard lock(mu_);
    auto it = per_source_.find(source);
    return it == per_source_.end() ? 0 : it->second;
}

}  // namespace pwru::agent
