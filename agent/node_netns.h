// What "this node" is for pwru-agent: the network namespaces of the node
// (the agent's own, it runs hostNetwork) and of every pod sandbox the node's
// container runtime lists. Several nodes can share one kernel (kind: every
// node is a container), and every agent then sees every packet of the
// cluster; tracing only inside this set keeps each packet on the one node
// that owns it (bpf/skb_scope.bpf.h, docs/agent-api.md "Node scope").
//
//   NodeNetns node(cri_socket, std::chrono::seconds(2));
//   auto snap = node.snapshot();   // refreshed through CRI when older than 2 s
//   session->set_node_netns(snap.netns);
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace pwru::agent {

class CriClient;

struct NodeNetnsSnapshot {
    uint64_t generation = 0;  // grows whenever `netns` changes
    std::set<uint32_t> netns;
    std::string warning;  // "" or why pods may be missing (the runtime did not answer)
};

class NodeNetns {
  public:
    NodeNetns(std::string cri_socket, std::chrono::milliseconds refresh_every);
    ~NodeNetns();

    // The set, asking the runtime again when the last answer is older than
    // refresh_every. Thread-safe; callers share one refresh. When the runtime
    // does not answer, the last set it gave (and the agent's own netns) stays,
    // with a warning.
    NodeNetnsSnapshot snapshot();

  private:
    void refresh();

    const std::string cri_socket_;
    const std::chrono::milliseconds refresh_every_;
    std::mutex mu_;
    std::unique_ptr<CriClient> cri_;
    std::map<std::string, uint32_t> sandboxes_;  // sandbox ID -> netns inode (0: the node's, hostNetwork)
    std::chrono::steady_clock::time_point refreshed_{};
    bool ever_refreshed_ = false;
    NodeNetnsSnapshot snap_;
};

// The inode of the calling process's network namespace (0 if unknown).
uint32_t own_netns_inode();

}  // namespace pwru::agent
