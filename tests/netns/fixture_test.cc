// Tests of the test fixtures themselves: if NetnsPair or ChildProcess lie,
// every pwru end-to-end test built on them lies too.
#include "support/child_process.h"
#include "support/netns_fixture.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace pwru::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

bool is_root() { return ::geteuid() == 0; }

#define REQUIRE_ROOT()                                                  \
    do {                                                                \
        if (!is_root()) {                                               \
            WARN("skipped: needs root (network namespaces, iptables)"); \
            return;                                                     \
        }                                                               \
    } while (0)

std::string netns_list() { return run_checked({"ip", "netns", "list"}); }

std::string own_prefix() { return "pwrut-" + std::to_string(::getpid()) + "-"; }

long elapsed_ms(Clock::time_point since) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

// Gone = no /proc entry, or a zombie waiting for init. Polls up to 2 s.
bool process_gone(pid_t pid) {
    for (int i = 0; i < 200; ++i) {
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        if (!stat) return true;
        std::string line;
        std::getline(stat, line);
        auto close_paren = line.rfind(')');
        if (close_paren != std::string::npos && close_paren + 2 < line.size() && line[close_paren + 2] == 'Z')
            return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

// Packet count of the first rule of `chain` (iptables -L -v -x).
long first_rule_packets(NetnsPair& net, const std::string& ns, const std::string& table, const std::string& chain) {
    auto r = net.run_in(ns, {"iptables", "-w", "5", "-t", table, "-L", chain, "-v", "-n", "-x"});
    REQUIRE(r.ok());
    // Line 0: "Chain ...", line 1: column headers, line 2: the first rule.
    std::istringstream in(r.out);
    std::string line;
    for (int i = 0; i < 3 && std::getline(in, line); ++i) {
    }
    INFO(r.out);
    REQUIRE(!line.empty());
    return std::stol(line);
}

}  // namespace

TEST_CASE("NetnsPair creates two namespaces joined by a veth and deletes them", "[netns]") {
    REQUIRE_ROOT();
    {
        NetnsPair net;
        const std::string list = netns_list();
        CHECK(list.find(net.a()) != std::string::npos);
        CHECK(list.find(net.b()) != std::string::npos);
        CHECK(net.a().starts_with(own_prefix()));
        CHECK(std::filesystem::exists(net.ns_path_b()));
        CHECK(net.netns_inode_a() != 0);
        CHECK(net.netns_inode_a() != net.netns_inode_b());
        CHECK(net.ifindex_in_a("lo") == 1);
        CHECK(net.ifindex_in_a(NetnsPair::veth_a()) > 1);
        CHECK(net.ifindex_in_b(NetnsPair::veth_b()) > 1);
        CHECK_THROWS_WITH(net.ifindex_in_a("nosuchdev0"), Catch::Contains("nosuchdev0"));
        CHECK(net.addr_a().starts_with("10.199."));

        // The veth never appears in the root namespace.
        CHECK(run_checked({"ip", "-o", "link"}).find("veth-a") == std::string::npos);
        auto in_b = net.run_in(net.b(), {"ip", "-o", "addr", "show", "dev", NetnsPair::veth_b()});
        REQUIRE(in_b.ok());
        CHECK(in_b.out.find(net.addr_b() + "/24") != std::string::npos);
    }
    CHECK(netns_list().find(own_prefix()) == std::string::npos);
}

TEST_CASE("NetnsPair: TCP from A reaches a listener in B, and a DROP in B stops it", "[netns]") {
    REQUIRE_ROOT();
    NetnsPair net;
    const uint16_t port = 8080;

    SECTION("nobody listening: refused at once") {
        auto t0 = Clock::now();
        CHECK_FALSE(net.tcp_connect_from_a(port, 3000));
        CHECK(elapsed_ms(t0) < 2000);
    }
    SECTION("listener: connects; DROP: times out with SYNs counted in B's INPUT") {
        Fd listener = net.listen_tcp_in_b(port);
        CHECK(net.tcp_connect_from_a(port, 3000));

        net.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", std::to_string(port), "-j", "DROP"});
        auto t0 = Clock::now();
        CHECK_FALSE(net.tcp_connect_from_a(port, 1500));
        const long took = elapsed_ms(t0);
        CHECK(took >= 1400);
        CHECK(took < 5000);
        // The first SYN plus at least one retransmit (initial RTO is 1 s).
        CHECK(first_rule_packets(net, net.b(), "filter", "INPUT") >= 2);
    }
}

TEST_CASE("NetnsPair options, mark rule, run_in and errors", "[netns]") {
    REQUIRE_ROOT();
    NetnsPair net(NetnsOptions{.mtu_a = 1500, .mtu_b = 1400});

    auto link_b = net.run_in(net.b(), {"ip", "-o", "link", "show", NetnsPair::veth_b()});
    REQUIRE(link_b.ok());
    CHECK(link_b.out.find("mtu 1400") != std::string::npos);

    net.set_mark_rule_a(0x42, 9000);
    auto rules = net.run_in(net.a(), {"iptables", "-t", "mangle", "-S", "OUTPUT"});
    REQUIRE(rules.ok());
    CHECK(rules.out.find("--dport 9000") != std::string::npos);
    CHECK(rules.out.find("0x42") != std::string::npos);
    CHECK_FALSE(net.tcp_connect_from_a(9000, 2000));  // refused, but the SYN left A marked
    CHECK(first_rule_packets(net, net.a(), "mangle", "OUTPUT") >= 1);

    auto t0 = Clock::now();
    auto slow = net.run_in(net.a(), {"sleep", "5"}, 200ms);
    CHECK(slow.timed_out);
    CHECK_FALSE(slow.ok());
    CHECK(elapsed_ms(t0) < 2000);

    auto fails = net.run_in(net.a(), {"sh", "-c", "echo oops >&2; exit 3"});
    CHECK(fails.exit_code == 3);
    CHECK(fails.err == "oops\n");

    CHECK_THROWS_WITH(net.iptables_b({"-A", "NOSUCHCHAIN", "-j", "DROP"}),
                      Catch::Contains("iptables") && Catch::Contains("NOSUCHCHAIN"));
    CHECK_THROWS_WITH(run_checked({"/nonexistent/binary"}), Catch::Contains("/nonexistent/binary"));
    CHECK_THROWS(net.run_in("not-ours", {"true"}));
}

TEST_CASE("NetnsPair::sweep_stale removes namespaces of dead runs only", "[netns]") {
    REQUIRE_ROOT();
    // A pid that surely is dead: a child that has exited and been reaped.
    pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    REQUIRE(dead > 0);
    ::waitpid(dead, nullptr, 0);
    const std::string stale = "pwrut-" + std::to_string(dead) + "-0-a";
    run_checked({"ip", "netns", "add", stale});
    const auto stale_dir = std::filesystem::temp_directory_path() / ("pwrut-child-" + std::to_string(dead) + "-x");
    std::filesystem::create_directories(stale_dir);

    NetnsPair live;  // its constructor sweeps
    const std::string list = netns_list();
    CHECK(list.find(stale) == std::string::npos);
    CHECK(list.find(live.a()) != std::string::npos);  // our own pid is alive: kept
    CHECK_FALSE(std::filesystem::exists(stale_dir));
    CHECK(NetnsPair::sweep_stale() == 0);
    std::filesystem::remove_all(stale_dir);
    if (std::filesystem::exists("/run/netns/" + stale)) run_checked({"ip", "netns", "del", stale});
}

TEST_CASE("ChildProcess captures output and exit status", "[netns]") {
    ChildProcess ok({"sh", "-c", "echo out; echo err >&2; exit 3"});
    REQUIRE(ok.wait(5s) == 3);
    CHECK(ok.stdout_text() == "out\n");
    CHECK(ok.stderr_text() == "err\n");
    CHECK_FALSE(ok.running());

    CHECK_THROWS_WITH(ChildProcess({"/nonexistent/pwru"}), Catch::Contains("/nonexistent/pwru"));
}

TEST_CASE("ChildProcess: interrupt sends SIGINT, wait is bounded", "[netns]") {
    ChildProcess sleeper({"sleep", "30"});
    CHECK(sleeper.running());
    auto t0 = Clock::now();
    CHECK_FALSE(sleeper.wait(200ms).has_value());
    CHECK(elapsed_ms(t0) >= 200);
    sleeper.interrupt();
    CHECK(sleeper.wait(5s) == 128 + SIGINT);
}

TEST_CASE("ChildProcess destructor kills the child and its process group", "[netns]") {
    pid_t child = -1, grandchild = -1;
    {
        auto dir = std::filesystem::temp_directory_path() / ("pwrut-test-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        const auto pidfile = dir / "grandchild.pid";
        {
            // Written then renamed, so the file never appears half-written.
            const std::string f = pidfile.string();
            ChildProcess sh({"sh", "-c", "sleep 30 & echo $! > " + f + ".tmp && mv " + f + ".tmp " + f + "; wait"});
            child = sh.pid();
            REQUIRE(sh.wait_for_file(pidfile, 5s));
            grandchild = std::stoi(read_file_text(pidfile));
            CHECK(sh.running());
        }
        std::filesystem::remove_all(dir);
    }
    CHECK(process_gone(child));
    CHECK(process_gone(grandchild));
}

TEST_CASE("ChildProcess::wait_for_file: found, timed out, child died", "[netns]") {
    SECTION("appears") {
        auto dir = std::filesystem::temp_directory_path() / ("pwrut-test-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        const auto ready = dir / "ready";
        std::filesystem::remove(ready);
        ChildProcess c({"sh", "-c", "sleep 0.2; touch " + ready.string() + "; sleep 30"});
        CHECK(c.wait_for_file(ready, 5s));
        std::filesystem::remove_all(dir);
    }
    SECTION("times out") {
        ChildProcess c({"sleep", "30"});
        auto t0 = Clock::now();
        CHECK_FALSE(c.wait_for_file(c.dir() / "never", 300ms));
        const long took = elapsed_ms(t0);
        CHECK(took >= 300);
        CHECK(took < 2000);
    }
    SECTION("the child exits first: no need to wait out the timeout") {
        ChildProcess c({"sh", "-c", "echo cannot attach >&2; exit 1"});
        auto t0 = Clock::now();
        CHECK_FALSE(c.wait_for_file(c.dir() / "never", 10s));
        CHECK(elapsed_ms(t0) < 5000);
        CHECK(c.exit_status() == 1);
        CHECK(c.stderr_text() == "cannot attach\n");
    }
}

TEST_CASE("ChildProcess runs inside a namespace", "[netns]") {
    REQUIRE_ROOT();
    NetnsPair net;
    ChildProcess c({"ip", "-o", "link"}, ChildOptions{.netns_path = net.ns_path_b()});
    REQUIRE(c.wait(5s) == 0);
    CHECK(c.stdout_text().find(NetnsPair::veth_b()) != std::string::npos);
    CHECK(c.stdout_text().find(NetnsPair::veth_a()) == std::string::npos);
}
