#include "support/netns_fixture.h"

#include "support/child_process.h"

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <iostream>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <regex>
#include <sched.h>
#include <stdexcept>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace pwru::test {
namespace {

using namespace std::chrono_literals;

std::string join(const std::vector<std::string>& argv) {
    std::string s;
    for (auto& a : argv) {
        if (!s.empty()) s += ' ';
        s += a;
    }
    return s;
}

[[noreturn]] void throw_errno(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

uint64_t inode_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw_errno("stat " + path);
    return st.st_ino;
}

bool pid_alive(long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

// Removes a named netns; idempotent, never throws. `ip netns del` first; if
// that fails, what it does by hand (the nsfs bind mount and its file).
void delete_netns(const std::string& name) {
    const std::string path = "/run/netns/" + name;
    if (!std::filesystem::exists(path)) return;
    try {
        auto r = run_command({"ip", "netns", "del", name}, 10s);
        if (r.ok()) return;
        std::cerr << "netns_fixture: `ip netns del " << name << "` failed: " << r.err << "\n";
    } catch (const std::exception& e) {
        std::cerr << "netns_fixture: " << e.what() << "\n";
    }
    ::umount2(path.c_str(), MNT_DETACH);
    ::unlink(path.c_str());
}

int ifindex_in(const std::string& ns_path, const std::string& ifname) {
    int index = 0;
    in_netns(ns_path, [&] { index = static_cast<int>(::if_nametoindex(ifname.c_str())); });
    if (index == 0) throw std::runtime_error("no interface " + ifname + " in " + ns_path);
    return index;
}

sockaddr_in make_addr(const std::string& ip, uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) != 1) throw std::invalid_argument("bad IPv4 address " + ip);
    return sa;
}

}  // namespace

// ---- commands ---------------------------------------------------------------

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::string& netns_path) {
    ChildProcess child(argv, ChildOptions{.netns_path = netns_path});
    CommandResult r;
    if (auto status = child.wait(timeout)) {
        r.exit_code = *status;
    } else {
        r.timed_out = true;
        child.kill();
        r.exit_code = child.exit_status().value_or(-1);
    }
    r.out = child.stdout_text();
    r.err = child.stderr_text();
    return r;
}

std::string run_checked(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                        const std::string& netns_path) {
    auto r = run_command(argv, timeout, netns_path);
    if (!r.ok()) {
        std::string where = netns_path.empty() ? "" : " (in " + netns_path + ")";
        std::string how = r.timed_out ? "timed out after " + std::to_string(timeout.count()) + " ms"
                                      : "exited with " + std::to_string(r.exit_code);
        throw std::runtime_error("`" + join(argv) + "`" + where + " " + how + "; stderr: " + r.err);
    }
    return r.out;
}

void in_netns(const std::string& ns_path, const std::function<void()>& fn) {
    std::exception_ptr error;
    std::thread t([&] {
        try {
            Fd ns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
            if (!ns) throw_errno("open " + ns_path);
            if (::setns(ns.get(), CLONE_NEWNET) != 0) throw_errno("setns " + ns_path);
            fn();
        } catch (...) {
            error = std::current_exception();
        }
    });
    t.join();
    if (error) std::rethrow_exception(error);
}

void Fd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

// ---- NetnsPair --------------------------------------------------------------

NetnsPair::NetnsPair(NetnsOptions options) {
    static std::atomic<int> counter{0};
    const int n = counter++;
    const long pid = ::getpid();
    a_ = "pwrut-" + std::to_string(pid) + "-" + std::to_string(n) + "-a";
    b_ = "pwrut-" + std::to_string(pid) + "-" + std::to_string(n) + "-b";
    // The addresses only exist inside the two namespaces, so they cannot clash
    // with anything; they differ between runs anyway because pwru traces all
    // namespaces at once and a concurrent run's packets must not match our filter.
    const int x = static_cast<int>(pid % 63) * 4 + n % 4 + 1;  // 1..252
    addr_a_ = "10.199." + std::to_string(x) + ".1";
    addr_b_ = "10.199." + std::to_string(x) + ".2";

    sweep_stale();
    try {
        run_checked({"ip", "netns", "add", a_});
        run_checked({"ip", "netns", "add", b_});
        if (options.disable_ipv6) {
            // Before the veth exists, so it is born without IPv6; best effort
            // (a kernel booted with ipv6.disable=1 has no such sysctl).
            for (const auto& ns : {a_, b_})
                run_in(ns, {"sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1",
                            "net.ipv6.conf.all.disable_ipv6=1"});
        }
        // Created directly across A and B: nothing ever lives in the root netns.
        run_checked({"ip", "-n", a_, "link", "add", veth_a(), "type", "veth", "peer", "name", veth_b(), "netns", b_});
        if (options.mtu_a) run_checked({"ip", "-n", a_, "link", "set", veth_a(), "mtu", std::to_string(options.mtu_a)});
        if (options.mtu_b) run_checked({"ip", "-n", b_, "link", "set", veth_b(), "mtu", std::to_string(options.mtu_b)});
        run_checked({"ip", "-n", a_, "addr", "add", addr_a_ + "/24", "dev", veth_a()});
        run_checked({"ip", "-n", b_, "addr", "add", addr_b_ + "/24", "dev", veth_b()});
        for (const auto& [ns, dev] : {std::pair{a_, veth_a()}, std::pair{b_, veth_b()}}) {
            run_checked({"ip", "-n", ns, "link", "set", "lo", "up"});
            run_checked({"ip", "-n", ns, "link", "set", dev, "up"});
        }
    } catch (...) {
        cleanup();  // the destructor does not run for a half-built object
        throw;
    }
}

NetnsPair::~NetnsPair() { cleanup(); }

void NetnsPair::cleanup() noexcept {
    // The rules would die with the namespaces; deleting them first keeps the
    // teardown explicit and shows a rule that cannot be deleted.
    for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
        const auto& [ns, args] = *it;
        if (!std::filesystem::exists("/run/netns/" + ns)) continue;
        std::vector<std::string> argv{"iptables", "-w", "5"};
        argv.insert(argv.end(), args.begin(), args.end());
        try {
            auto r = run_command(argv, 15s, "/run/netns/" + ns);
            if (!r.ok()) std::cerr << "netns_fixture: `" << join(argv) << "` in " << ns << " failed: " << r.err << "\n";
        } catch (const std::exception& e) {
            std::cerr << "netns_fixture: " << e.what() << "\n";
        }
    }
    rules_.clear();
    delete_netns(a_);
    delete_netns(b_);
}

int NetnsPair::sweep_stale() {
    const std::filesystem::path dir = "/run/netns";
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return 0;
    static const std::regex ours(R"(^pwrut-([0-9]+)-.*)");
    int deleted = 0;
    std::vector<std::string> stale;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        std::smatch m;
        if (!std::regex_match(name, m, ours)) continue;
        const long pid = std::stol(m[1].str());
        if (pid == ::getpid() || pid_alive(pid)) continue;  // a live (maybe concurrent) run's
        stale.push_back(name);
    }
    for (const auto& name : stale) {
        delete_netns(name);
        if (!std::filesystem::exists(dir / name)) ++deleted;
    }
    // ChildProcess temp dirs of dead runs (pwrut-child-<pid>-XXXXXX).
    static const std::regex child_dir(R"(^pwrut-child-([0-9]+)-.*)");
    for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::temp_directory_path(), ec)) {
        const std::string name = entry.path().filename().string();
        std::smatch m;
        if (!std::regex_match(name, m, child_dir)) continue;
        const long pid = std::stol(m[1].str());
        if (pid != ::getpid() && !pid_alive(pid)) std::filesystem::remove_all(entry.path(), ec);
    }
    return deleted;
}

uint64_t NetnsPair::netns_inode_a() const { return inode_of(ns_path_a()); }
uint64_t NetnsPair::netns_inode_b() const { return inode_of(ns_path_b()); }
int NetnsPair::ifindex_in_a(const std::string& ifname) const { return ifindex_in(ns_path_a(), ifname); }
int NetnsPair::ifindex_in_b(const std::string& ifname) const { return ifindex_in(ns_path_b(), ifname); }

CommandResult NetnsPair::run_in(const std::string& ns, const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout) const {
    if (ns != a_ && ns != b_) throw std::invalid_argument("run_in: " + ns + " is not " + a_ + " or " + b_);
    return run_command(argv, timeout, "/run/netns/" + ns);
}

void NetnsPair::iptables_a(const std::vector<std::string>& args) { iptables_in(a_, args); }
void NetnsPair::iptables_b(const std::vector<std::string>& args) { iptables_in(b_, args); }

void NetnsPair::iptables_in(const std::string& ns, const std::vector<std::string>& args) {
    // -w: the xtables lock is one file for all namespaces (iptables-legacy),
    // so a concurrent run may hold it for a moment.
    std::vector<std::string> argv{"iptables", "-w", "5"};
    argv.insert(argv.end(), args.begin(), args.end());
    run_checked(argv, 15s, "/run/netns/" + ns);

    // Remember how to delete it: the same rule spec with -D.
    std::vector<std::string> del = args;
    for (size_t i = 0; i < del.size(); ++i) {
        const bool append = del[i] == "-A" || del[i] == "--append";
        const bool insert = del[i] == "-I" || del[i] == "--insert";
        if (!append && !insert) continue;
        del[i] = "-D";
        // "-I CHAIN 3 ..." takes a position that -D would read as a rule number.
        if (insert && i + 2 < del.size() && !del[i + 2].empty() &&
            del[i + 2].find_first_not_of("0123456789") == std::string::npos)
            del.erase(del.begin() + static_cast<long>(i) + 2);
        rules_.emplace_back(ns, std::move(del));
        break;
    }
}

void NetnsPair::set_mark_rule_a(uint32_t mark, uint16_t port) {
    std::vector<std::string> args{"-t", "mangle", "-A", "OUTPUT", "-p", "tcp"};
    if (port) {
        args.push_back("--dport");
        args.push_back(std::to_string(port));
    }
    for (const char* s : {"-j", "MARK", "--set-mark"}) args.push_back(s);
    args.push_back(std::to_string(mark));
    iptables_a(args);
}

bool NetnsPair::tcp_connect_from_a(uint16_t port, int timeout_ms) const {
    const sockaddr_in to = make_addr(addr_b_, port);
    bool connected = false;
    in_netns(ns_path_a(), [&] {
        Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!s) throw_errno("socket in " + a_);
        if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) {
            connected = true;
            return;
        }
        if (errno != EINPROGRESS) return;  // e.g. ENETUNREACH: not connected
        pollfd p{s.get(), POLLOUT, 0};
        int r;
        do r = ::poll(&p, 1, timeout_ms);  // an EINTR restart may extend the wait; rare enough
        while (r < 0 && errno == EINTR);
        if (r <= 0) return;  // timed out: the SYNs went unanswered
        int err = 0;
        socklen_t len = sizeof err;
        connected = ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
        // Closing the socket aborts a pending handshake: no late SYN after we return.
    });
    return connected;
}

Fd NetnsPair::listen_tcp_in_b(uint16_t port) const {
    const sockaddr_in at = make_addr(addr_b_, port);
    Fd listener;
    in_netns(ns_path_b(), [&] {
        Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!s) throw_errno("socket in " + b_);
        int one = 1;
        ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0)
            throw_errno("bind " + addr_b_ + ":" + std::to_string(port) + " in " + b_);
        if (::listen(s.get(), 16) != 0) throw_errno("listen in " + b_);
        listener = std::move(s);
    });
    return listener;
}

}  // namespace pwru::test
