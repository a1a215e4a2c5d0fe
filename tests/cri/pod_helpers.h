// What the cri tests do with a pod once containerd runs it: look it up
// through CRI (its IP, netns inode and path) and send it real traffic, from
// the node or from inside another pod's netns.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "agent/cri_client.h"
#include "cri/containerd_fixture.h"

namespace pwru::test {

struct PodView {
    std::string ip;
    uint32_t netns = 0;
    std::string netns_path;
};

// The pod's one IP and its netns, as CRI reports them (fails the test if not found).
PodView view(agent::CriClient& cri, const std::string& ns, const std::string& name);

// `count` UDP datagrams `gap` apart to ip:port (9, discard: nothing listens,
// so the pod answers with ICMP port unreachable: traffic into and out of its
// netns). From the netns at `netns_path` when given (a thread of its own
// enters it). gap 0: a burst, as fast as the socket takes them.
void send_udp(const std::string& ip, int count, const std::string& netns_path = "", uint16_t port = 9,
              std::chrono::milliseconds gap = std::chrono::milliseconds(20));
// The same from a connected socket to ip:9, 20 ms apart: Linux then gives
// each datagram its own IP ID (unconnected DF datagrams all carry 0), as
// --correlate needs.
void send_udp_connected(const std::string& ip, int count, const std::string& netns_path = "");

}  // namespace pwru::test

// Skips (loudly) only when containerd and friends are genuinely absent.
#define REQUIRE_CONTAINERD()                                                           \
    do {                                                                               \
        if (auto why = ::pwru::test::ContainerdFixture::unavailable(); !why.empty()) { \
            WARN("SKIPPED: " + why);                                                   \
            return;                                                                    \
        }                                                                              \
    } while (0)
