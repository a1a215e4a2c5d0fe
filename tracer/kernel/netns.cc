#include "tracer/kernel/netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tracer/util/unique_fd.h"

namespace pwru {
namespace {

Result<uint64_t> parse_number(const std::string& s, const std::string& what) {
    std::string_view v = s;
    int base = 10;
    if (v.starts_with("0x") || v.starts_with("0X")) {
        v.remove_prefix(2);
        base = 16;
    }
    uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n, base);
    if (v.empty() || ec != std::errc() || ptr != v.data() + v.size())
        return fail("cannot parse " + what + " '" + s + "'");
    return n;
}

// A path under /run/netns or /proc/*/ns/net whose inode is `inode`.
std::string find_netns_path(uint32_t inode) {
    std::error_code ec;
    for (const char* dir : {"/run/netns", "/var/run/netns"}) {
        for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
            struct stat st {};
            if (stat(e.path().c_str(), &st) == 0 && st.st_ino == inode) return e.path();
        }
    }
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
        std::string p = e.path().string() + "/ns/net";
        struct stat st {};
        if (stat(p.c_str(), &st) == 0 && st.st_ino == inode) return p;
    }
    return "";
}

}  // namespace

Result<NetnsRef> parse_netns(const std::string& arg) {
    if (arg.starts_with("inode:")) {
        auto n = parse_number(arg.substr(6), "netns inode");
        if (!n || *n == 0 || *n > UINT32_MAX)
            return bad_input("invalid --filter-netns '" + arg + "': expected inode:N with N a netns inode number");
        std::string path = find_netns_path(static_cast<uint32_t>(*n));
        // A number naming no netns would trace nothing, silently.
        if (path.empty())
            return bad_input("--filter-netns " + arg +
                             ": no network namespace with that inode is in use "
                             "(searched /run/netns and /proc/*/ns/net); check `lsns -t net`");
        return NetnsRef{static_cast<uint32_t>(*n), path};
    }
    struct stat st {};
    if (stat(arg.c_str(), &st) != 0)
        return fail(
            "unknown netns '" + arg + "'; pass /proc/PID/ns/net of a running process, /run/netns/NAME or inode:N",
            errno);
    // Any file has an inode: only an nsfs file of type net names a netns.
    UniqueFd fd(open(arg.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd || ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWNET)
        return bad_input("--filter-netns '" + arg +
                         "' is not a network namespace; pass /proc/PID/ns/net, "
                         "/run/netns/NAME or inode:N");
    return NetnsRef{static_cast<uint32_t>(st.st_ino), arg};
}

Result<NetnsRef> current_netns() { return parse_netns("/proc/self/ns/net"); }

Result<uint32_t> resolve_ifindex(const std::string& ifname, const NetnsRef& ns) {
    if (ns.path.empty())
        return fail("cannot enter netns inode " + std::to_string(ns.inode) + " to find interface '" + ifname +
                    "'; pass --filter-netns as a path (/proc/PID/ns/net or /run/netns/NAME)");
    unsigned idx = 0;
    int err = 0;
    std::thread t([&] {
        UniqueFd fd(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd || setns(fd.get(), CLONE_NEWNET) != 0) {
            err = errno;
            return;
        }
        idx = if_nametoindex(ifname.c_str());
        if (idx == 0) err = errno;
    });
    t.join();
    if (idx == 0)
        return fail("unknown interface '" + ifname + "' in netns " + ns.path + "; check `ip link` there", err);
    return idx;
}

Result<MarkFilter> parse_mark(const std::string& arg) {
    MarkFilter m;
    auto slash = arg.find('/');
    auto mark = parse_number(arg.substr(0, slash), "mark");
    auto mask =
        slash == std::string::npos ? Result<uint64_t>(0xffffffffu) : parse_number(arg.substr(slash + 1), "mask");
    if (!mark || !mask || *mark > UINT32_MAX || *mask > UINT32_MAX)
        return bad_input("invalid --filter-mark '" + arg +
                         "': expected MARK or MARK/MASK (decimal or 0x-hex, 32 bits)");
    m.mark = static_cast<uint32_t>(*mark);
    m.mask = static_cast<uint32_t>(*mask);
    return m;
}

Result<void> check_privileges() {
    std::ifstream status("/proc/self/status");
    std::string line;
    uint64_t eff = 0;
    while (std::getline(status, line))
        if (line.starts_with("CapEff:")) eff = std::stoull(line.substr(7), nullptr, 16);
    auto has = [&](int cap) { return (eff >> cap) & 1; };
    constexpr int kSysAdmin = 21, kPerfmon = 38, kBpf = 39;
    if (has(kSysAdmin) || (has(kBpf) && has(kPerfmon))) return {};
    return fail(
        "pwru needs root or the capabilities CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8); run it "
        "with sudo");
}

}  // namespace pwru
