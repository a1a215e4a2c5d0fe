#include "cri/pod_helpers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

namespace pwru::test {

using namespace std::chrono_literals;

PodView view(agent::CriClient& cri, const std::string& ns, const std::string& name) {
    auto p = cri.find_pod(ns, name);
    if (!p) FAIL(p.error().message());
    REQUIRE(p->ips.size() == 1);
    return {p->ips[0], p->netns_inode, p->netns_path};
}

namespace {

void send_udp_from(const std::string& ip, int count, const std::string& netns_path, uint16_t port,
                   std::chrono::milliseconds gap, bool connected) {
    auto body = [&] {
        if (!netns_path.empty()) {
            int fd = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
            REQUIRE(fd >= 0);
            REQUIRE(::setns(fd, CLONE_NEWNET) == 0);
            ::close(fd);
        }
        int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(s >= 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        REQUIRE(inet_pton(AF_INET, ip.c_str(), &to.sin_addr) == 1);
        if (connected) REQUIRE(::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
        for (int i = 0; i < count; ++i) {
            if (connected)
                (void)::send(s, "pwru", 4, 0);
            else
                (void)::sendto(s, "pwru", 4, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
            if (gap.count()) std::this_thread::sleep_for(gap);
        }
        ::close(s);
    };
    if (netns_path.empty()) return body();
    std::thread t(body);  // setns changes only this thread's netns
    t.join();
}

}  // namespace

void send_udp(const std::string& ip, int count, const std::string& netns_path, uint16_t port,
              std::chrono::milliseconds gap) {
    send_udp_from(ip, count, netns_path, port, gap, false);
}

void send_udp_connected(const std::string& ip, int count, const std::string& netns_path) {
    send_udp_from(ip, count, netns_path, 9, std::chrono::milliseconds(20), true);
}

}  // namespace pwru::test
