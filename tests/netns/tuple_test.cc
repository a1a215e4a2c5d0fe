// --output-tuple for every family pwru prints: IPv4 and IPv6, TCP, UDP,
// ICMP and ICMPv6, from real packets sent inside namespaces the test makes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "support/test_files.h"
#include "support/child_process.h"
#include "support/netns_fixture.h"
#include "support/root_guard.h"

using namespace pwru::test;
using namespace std::chrono_literals;

namespace {

uint16_t inet_checksum(const uint8_t* data, size_t len) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2) sum += (data[i] << 8) | data[i + 1];
    if (len & 1) sum += data[len - 1] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

// Sends one datagram of `type` (SOCK_DGRAM / SOCK_RAW) to addr; for raw
// ICMP sockets the payload is an echo request.
void send_one(int family, int type, int proto, const std::string& addr, uint16_t port) {
    int fd = socket(family, type, proto);
    REQUIRE(fd >= 0);
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        inet_pton(AF_INET, addr.c_str(), &sin->sin_addr);
        len = sizeof(*sin);
    } else {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        inet_pton(AF_INET6, addr.c_str(), &sin6->sin6_addr);
        len = sizeof(*sin6);
    }
    uint8_t msg[16] = {};
    if (type == SOCK_RAW) {
        msg[0] = family == AF_INET ? 8 : 128;  // echo request
        if (family == AF_INET) {
            uint16_t sum = inet_checksum(msg, sizeof(msg));
            msg[2] = sum >> 8;
            msg[3] = sum & 0xff;
        }  // ICMPv6: the kernel fills the checksum
    }
    CHECK(sendto(fd, msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&ss), len) == sizeof(msg));
    close(fd);
}

bool has_line(const std::string& out, const std::string& needle) { return out.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("tuples for TCP with flags, UDP, ICMP, IPv6 UDP and ICMPv6", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns(NetnsOptions{.disable_ipv6 = false});
    const std::string ready = pwru::test::fresh_ready_file("tuple");
    ChildProcess pwru({PWRU_BIN, "--ready-file", ready, "--output-tcp-flags", "port 9999 or icmp or icmp6"});
    REQUIRE(pwru.wait_for_file(ready, 60s));

    CHECK_FALSE(ns.tcp_connect_from_a(9999, 500));  // nobody listens: SYN, then RST back
    in_netns(ns.ns_path_a(), [&] {
        send_one(AF_INET, SOCK_DGRAM, 0, ns.addr_b(), 9999);
        send_one(AF_INET, SOCK_RAW, IPPROTO_ICMP, ns.addr_b(), 0);
        send_one(AF_INET6, SOCK_DGRAM, 0, "::1", 9999);
        send_one(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6, "::1", 0);
    });
    pwru.wait_for_stdout({"(icmp6)"}, 5s);
    pwru.interrupt();
    REQUIRE(pwru.wait(30s));
    std::string out = pwru.stdout_text();
    INFO("pwru output:\n" << out);
    CHECK(has_line(out, ns.addr_a() + ":"));
    CHECK(has_line(out, "->" + ns.addr_b() + ":9999(udp)"));
    CHECK(has_line(out, ns.addr_a() + ":0->" + ns.addr_b() + ":0(icmp)"));
    CHECK(has_line(out, "->[::1]:9999(udp)"));
    CHECK(has_line(out, "[::1]:0->[::1]:0(icmp6)"));
    CHECK(has_line(out, "->" + ns.addr_b() + ":9999(tcp:SYN)"));
    CHECK(has_line(out, ns.addr_b() + ":9999->" + ns.addr_a()));
    CHECK(has_line(out, "(tcp:RST|ACK)"));
}
