// Two network namespaces joined by a veth pair, for tests that make real
// traffic. Nothing is created in the root namespace except the two names in
// /run/netns: the veth is created directly across A and B, so deleting the
// namespaces removes the veth, addresses, routes and iptables rules with them.
//
//   NetnsPair net;                                   // A 10.199.X.1 <-veth-> B 10.199.X.2
//   net.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});
//   CHECK_FALSE(net.tcp_connect_from_a(80, 2000));   // SYN + retransmits dropped in B
//
// Names are "pwrut-<pid>-<n>-a|b"; the constructor first deletes leftovers of
// crashed runs (pwrut-<pid>-* whose pid is no longer alive).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace pwru::test {

struct CommandResult {
    int exit_code = -1;      // exit code, 128+N if killed by signal N, -1 if unknown
    bool timed_out = false;  // killed because the timeout passed
    std::string out;         // stdout
    std::string err;         // stderr
    bool ok() const { return !timed_out && exit_code == 0; }
};

// Runs argv (no shell) in the given netns ("" = current), bounded by timeout
// (then SIGKILLed, timed_out = true). Throws only if it cannot be started.
CommandResult run_command(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10),
                          const std::string& netns_path = "");
// Same, but throws std::runtime_error naming the command, its exit code and
// stderr unless it succeeded. Returns stdout.
std::string run_checked(const std::vector<std::string>& argv,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10),
                        const std::string& netns_path = "");

// Runs fn() on a fresh std::thread that first joins the netns at ns_path
// (setns is per thread, so the caller's thread is never moved). Exceptions
// thrown by fn are rethrown here. Sockets created inside stay in that netns.
void in_netns(const std::string& ns_path, const std::function<void()>& fn);

// An owned file descriptor (closed on destruction).
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset();

  private:
    int fd_ = -1;
};

struct NetnsOptions {
    int mtu_a = 0;             // veth MTU in A; 0 = kernel default (1500)
    int mtu_b = 0;             // veth MTU in B (set differently for MTU-mismatch scenarios)
    bool disable_ipv6 = true;  // no IPv6 link-local/DAD/MLD chatter in the traces
};

class NetnsPair {
  public:
    explicit NetnsPair(NetnsOptions options = {});
    ~NetnsPair();  // deletes the rules it added, then both namespaces; never throws
    NetnsPair(const NetnsPair&) = delete;
    NetnsPair& operator=(const NetnsPair&) = delete;

    const std::string& a() const { return a_; }  // netns name, e.g. "pwrut-1234-0-a"
    const std::string& b() const { return b_; }
    const std::string& addr_a() const { return addr_a_; }       // "10.199.X.1"
    const std::string& addr_b() const { return addr_b_; }       // "10.199.X.2"
    static constexpr const char* veth_a() { return "veth-a"; }  // interface name inside A
    static constexpr const char* veth_b() { return "veth-b"; }  // interface name inside B
    std::string ns_path_a() const { return "/run/netns/" + a_; }
    std::string ns_path_b() const { return "/run/netns/" + b_; }
    uint64_t netns_inode_a() const;  // what pwru --filter-netns inode:N takes
    uint64_t netns_inode_b() const;
    int ifindex_in_a(const std::string& ifname) const;  // throws if no such interface
    int ifindex_in_b(const std::string& ifname) const;

    // `iptables ARGS...` inside B (or A). -A/--append and -I/--insert rules are
    // remembered and deleted (-D) by the destructor, before the netns goes.
    void iptables_b(const std::vector<std::string>& args);
    void iptables_a(const std::vector<std::string>& args);

    // Runs argv inside namespace `ns` (a() or b()), bounded by timeout.
    CommandResult run_in(const std::string& ns, const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

    // A real TCP connect from inside A to addr_b():port. True if the handshake
    // completed within timeout_ms; false on refusal, reset or timeout (with a
    // DROP in B: the SYN and its retransmits reach B's INPUT and die there).
    bool tcp_connect_from_a(uint16_t port, int timeout_ms) const;

    // A listening TCP socket bound to addr_b():port inside B. The kernel
    // completes handshakes into its backlog without accept(), so holding the
    // fd is enough to make tcp_connect_from_a succeed.
    Fd listen_tcp_in_b(uint16_t port) const;

    // iptables -t mangle -A OUTPUT -p tcp [--dport PORT] -j MARK --set-mark MARK
    // in A, so packets A sends carry skb->mark (for --filter-mark). port 0 = all TCP.
    void set_mark_rule_a(uint32_t mark, uint16_t port = 0);

    // Deletes pwrut-<pid>-* namespaces (and ChildProcess temp dirs
    // pwrut-child-<pid>-*) whose pid is not alive. Called by the constructor;
    // safe to call any time. Returns how many namespaces were deleted.
    static int sweep_stale();

  private:
    void iptables_in(const std::string& ns, const std::vector<std::string>& args);
    void cleanup() noexcept;

    std::string a_, b_, addr_a_, addr_b_;
    // (netns name, args to delete) in the order added; deleted in reverse.
    std::vector<std::pair<std::string, std::vector<std::string>>> rules_;
};

}  // namespace pwru::test
