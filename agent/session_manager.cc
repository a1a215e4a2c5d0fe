#include "agent/session_manager.h"

namespace pwru::agent {

std::shared_ptr<void> SessionManager::try_acquire() {
    std::lock_guard lock(mu_);
    if (draining_ || active_ >= max_) return nullptr;
    ++active_;
    return std::shared_ptr<void>(this, [](SessionManager* m) { m->release(); });
}

void SessionManager::release() {
    std::lock_guard lock(mu_);
    --active_;
    if (active_ == 0) idle_.notify_all();
}

size_t SessionManager::active() const {
    std::lock_guard lock(mu_);
    return active_;
}

void SessionManager::begin_drain() {
    std::lock_guard lock(mu_);
    draining_ = true;
}

bool SessionManager::draining() const {
    std::lock_guard lock(mu_);
    return draining_;
}

bool SessionManager::wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return idle_.wait_for(lock, timeout, [this] { return active_ == 0; });
}

}  // namespace pwru::agent
