#include "agent/node_netns.h"

#include <sys/stat.h>

#include <vector>

#include "agent/cri_client.h"
#include "tracer/kernel/log.h"

namespace pwru::agent {

uint32_t own_netns_inode() {
    struct stat st {};
    if (::stat("/proc/self/ns/net", &st) != 0) return 0;
    return static_cast<uint32_t>(st.st_ino);
}

NodeNetns::NodeNetns(std::string cri_socket, std::chrono::milliseconds refresh_every)
    : cri_socket_(std::move(cri_socket)), refresh_every_(refresh_every) {}

NodeNetns::~NodeNetns() = default;

NodeNetnsSnapshot NodeNetns::snapshot() {
    std::lock_guard lock(mu_);
    if (!ever_refreshed_ || std::chrono::steady_clock::now() - refreshed_ >= refresh_every_) refresh();
    return snap_;
}

void NodeNetns::refresh() {
    refreshed_ = std::chrono::steady_clock::now();
    ever_refreshed_ = true;
    std::string warning;
    auto ask = [&]() -> Result<void> {
        if (!cri_) {
            auto c = CriClient::connect(cri_socket_, std::chrono::seconds(2));
            if (!c) return std::unexpected(c.error());
            cri_ = std::make_unique<CriClient>(std::move(*c));
        }
        auto ids = cri_->ready_sandboxes();
        if (!ids) {
            cri_.reset();  // reconnect next time
            return std::unexpected(ids.error());
        }
        std::map<std::string, uint32_t> now;
        for (const auto& id : *ids) {
            // A sandbox's netns never changes: ask only about new ones.
            if (auto known = sandboxes_.find(id); known != sandboxes_.end()) {
                now[id] = known->second;
                continue;
            }
            auto pod = cri_->sandbox(id);
            if (!pod) {
                // Gone between the list and the status, or not visible to us: next round.
                spdlog::debug("node scope: sandbox {}: {}", id, pod.error().message());
                continue;
            }
            // A hostNetwork sandbox is in the node's netns, which is ours
            // (its /proc/1 fallback may name another node's on a shared kernel).
            now[id] = pod->host_network ? 0 : pod->netns_inode;
        }
        sandboxes_ = std::move(now);
        return {};
    };
    if (auto r = ask(); !r) {
        warning = "the container runtime did not list the node's pods (" + r.error().message() +
                  "); the node scope holds the pods known before and the node's own netns";
        if (warning != snap_.warning) spdlog::warn("node scope: {}", warning);
    }

    std::set<uint32_t> netns;
    if (uint32_t own = own_netns_inode()) netns.insert(own);
    for (const auto& [id, ino] : sandboxes_)
        if (ino) netns.insert(ino);
    if (netns != snap_.netns) {
        ++snap_.generation;
        spdlog::debug("node scope: {} network namespaces ({} sandboxes)", netns.size(), sandboxes_.size());
        snap_.netns = std::move(netns);
    }
    snap_.warning = warning;
}

}  // namespace pwru::agent
