// The CRI client against a real containerd (private, see containerd_fixture.h):
// pods created through CRI as the kubelet would, then resolved by
// namespace/name to their netns, IPs and hostNetwork flag.
#include <algorithm>
#include "agent/cri_client.h"
#include "cri/containerd_fixture.h"
#include "cri/pod_helpers.h"
#include "support/child_process.h"
#include "support/test_files.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace pwru::agent;
using namespace pwru::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

uint64_t inode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_ino;
}

}  // namespace

TEST_CASE("find_pod resolves real containerd pods to their netns, IPs and hostNetwork", "[cri]") {
    REQUIRE_CONTAINERD();
    const auto t0 = std::chrono::steady_clock::now();
    ContainerdFixture cd;
    const auto t_up = std::chrono::steady_clock::now();

    auto cri = CriClient::connect(cd.socket());
    REQUIRE(cri.has_value());
    auto version = cri->runtime_version();
    REQUIRE(version.has_value());
    CHECK_THAT(*version, StartsWith("containerd ") && Contains("(CRI v1)"));

    const std::string pod_id = cd.run_pod("pwru-test", "httpd");
    // A second pod in another namespace with the same name: the labels must
    // select on both.
    const std::string other_id = cd.run_pod("other", "httpd");
    const std::string host_id = cd.run_pod("pwru-test", "hostnet", /*host_network=*/true);
    const auto t_pods = std::chrono::steady_clock::now();

    {
        INFO("pod network");
        auto pod = cri->find_pod("pwru-test", "httpd");
        if (!pod) FAIL(pod.error().message());
        CHECK(pod->id == pod_id);
        CHECK(pod->ns == "pwru-test");
        CHECK(pod->name == "httpd");
        CHECK_FALSE(pod->host_network);
        // containerd mounts the CNI netns; here under its state dir
        // (netns_mounts_under_state_dir), on a node under /var/run/netns.
        CHECK_THAT(pod->netns_path, StartsWith(cd.dir().string()));
        CHECK(pod->netns_inode == inode_of(pod->netns_path));
        CHECK(pod->netns_inode == cd.sandbox_netns_inode(pod_id));
        CHECK(pod->netns_inode != inode_of("/proc/self/ns/net"));
        REQUIRE(pod->ips.size() == 1);
        CHECK_THAT(pod->ips[0], StartsWith(cd.pod_ip_prefix()));

        auto other = cri->find_pod("other", "httpd");
        if (!other) FAIL(other.error().message());
        CHECK(other->id == other_id);
        CHECK(other->netns_inode != pod->netns_inode);
        REQUIRE(other->ips.size() == 1);
        CHECK(other->ips[0] != pod->ips[0]);
    }
    {
        INFO("host network");
        auto host = cri->find_pod("pwru-test", "hostnet");
        if (!host) FAIL(host.error().message());
        CHECK(host->id == host_id);
        CHECK(host->host_network);
        CHECK(host->netns_inode == inode_of("/proc/self/ns/net"));
        CHECK(host->netns_inode == cd.sandbox_netns_inode(host_id));
    }
    {
        INFO("unknown pod");
        auto none = cri->find_pod("pwru-test", "nope");
        REQUIRE_FALSE(none.has_value());
        CHECK(none.error().kind == pwru::ErrorKind::NotFound);  // the agent's 404, not 400
        CHECK(none.error().message() ==
              "pod pwru-test/nope not found on this node (no READY sandbox with those labels); check the pod's node");
    }
    {
        INFO("a stopped sandbox is not the pod (the READY filter)");
        cd.stop_pod(pod_id);
        auto stopped = cri->find_pod("pwru-test", "httpd");
        REQUIRE_FALSE(stopped.has_value());
        CHECK_THAT(stopped.error().message(), Contains("not found on this node"));
    }
    for (const auto& id : {pod_id, other_id, host_id}) {
        cd.stop_pod(id);  // idempotent in CRI
        cd.remove_pod(id);
    }
    const auto ms = [](auto a, auto b) { return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count(); };
    WARN("timings: containerd up + image imported " << ms(t0, t_up) << " ms, 3 sandboxes " << ms(t_up, t_pods)
                                                    << " ms, lookups and teardown "
                                                    << ms(t_pods, std::chrono::steady_clock::now()) << " ms");
}

TEST_CASE("connect says which socket failed and which flag fixes it", "[cri]") {
    TempDir tmp("pwru-crisock");  // not "pwru-cri-<pid>": the fixture sweeps those

    auto missing = CriClient::connect((tmp.path / "nope.sock").string());
    REQUIRE_FALSE(missing.has_value());
    CHECK_THAT(missing.error().message(),
               StartsWith("cannot reach the CRI socket " + (tmp.path / "nope.sock").string()) &&
                   Contains("No such file or directory") && Contains("--cri-socket"));

    const auto file = tmp.path / "file.sock";
    std::ofstream(file) << "not a socket";
    auto not_socket = CriClient::connect(file.string());
    REQUIRE_FALSE(not_socket.has_value());
    CHECK_THAT(not_socket.error().message(), Contains("is not a socket") && Contains("--cri-socket"));

    // A socket nobody listens on: what a crashed runtime leaves behind.
    const auto dead = tmp.path / "dead.sock";
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, dead.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    auto refused = CriClient::connect(dead.string(), std::chrono::seconds(2));
    ::close(fd);
    REQUIRE_FALSE(refused.has_value());
    CHECK_THAT(refused.error().message(),
               StartsWith("cannot reach the CRI socket " + dead.string() + ": ") && Contains("--cri-socket"));
}

TEST_CASE("auto-detection takes the first candidate socket that answers", "[cri]") {
    REQUIRE_CONTAINERD();
    ContainerdFixture cd;
    TempDir tmp("pwru-crisock");
    const auto file = tmp.path / "file.sock";
    std::ofstream(file) << "not a socket";
    // Absent (skipped), present but not a socket (named if nothing answers), then a runtime.
    auto c = CriClient::connect_first({(tmp.path / "absent.sock").string(), file.string(), cd.socket()});
    REQUIRE(c.has_value());
    CHECK(c->socket() == cd.socket());
    CHECK_THAT(*c->runtime_version(), StartsWith("containerd "));
    auto none = CriClient::connect_first({(tmp.path / "absent.sock").string(), file.string()});
    REQUIRE_FALSE(none.has_value());
    CHECK_THAT(none.error().message(), Contains(file.string() + " is not a socket") && Contains("--cri-socket"));
}

TEST_CASE("ContainerdFixture leaves nothing behind when a test fails half-way", "[cri]") {
    REQUIRE_CONTAINERD();
    std::filesystem::path dir;
    std::string netns_path;
    try {
        ContainerdFixture cd;
        dir = cd.dir();
        cd.run_pod("default", "doomed");
        auto cri = CriClient::connect(cd.socket());
        REQUIRE(cri);
        netns_path = cri->find_pod("default", "doomed")->netns_path;
        REQUIRE(std::filesystem::exists(netns_path));
        throw std::runtime_error("a failing test");  // what a failed REQUIRE does
    } catch (const std::runtime_error&) {
    }
    CHECK_FALSE(std::filesystem::exists(dir));
    CHECK_FALSE(std::filesystem::exists(netns_path));
    CHECK_FALSE(std::filesystem::exists("/sys/class/net/pwcri" + std::to_string(::getpid())));
    // No process (containerd, shim, pause) names the dir any more.
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
        std::string cmdline = read_file_text(e.path() / "cmdline");
        std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
        CHECK(cmdline.find(dir.string()) == std::string::npos);
    }
    CHECK(read_file_text("/proc/self/mountinfo").find(dir.string()) == std::string::npos);
}

TEST_CASE("connect(\"\") names every well-known socket when none exists", "[cri]") {
    for (const auto& s : default_cri_sockets()) {
        if (std::filesystem::exists(s)) {
            WARN("SKIPPED: " + s + " exists on this machine: auto-detection would use it");
            return;
        }
    }
    auto none = CriClient::connect("");
    REQUIRE_FALSE(none.has_value());
    CHECK_THAT(none.error().message(), StartsWith("no CRI socket found (tried /run/containerd/containerd.sock, ") &&
                                           Contains("/var/run/crio/crio.sock") && Contains("pass --cri-socket"));
}

TEST_CASE("netns_path_from_info reads containerd's and CRI-O's sandbox info", "[cri]") {
    // containerd: pid + runtimeSpec naming the CNI netns.
    CHECK(netns_path_from_info(R"({"pid": 4242, "runtimeSpec": {"linux": {"namespaces": [
              {"type": "pid"}, {"type": "ipc"}, {"type": "network", "path": "/var/run/netns/cni-1234"}]}}})") ==
          "/var/run/netns/cni-1234");
    // CRI-O with drop_infra_ctr: no pid, the path only in runtimeSpec.
    CHECK(netns_path_from_info(R"({"image": "registry.k8s.io/pause:3.9", "runtimeSpec": {"linux": {"namespaces": [
              {"type": "network", "path": "/var/run/netns/5f0c-ab"}]}}})") == "/var/run/netns/5f0c-ab");
    // hostNetwork (no network entry) or a netns runc made itself (no path): the pid's.
    CHECK(netns_path_from_info(R"({"pid": 77, "runtimeSpec": {"linux": {"namespaces": [{"type": "pid"}]}}})") ==
          "/proc/77/ns/net");
    CHECK(netns_path_from_info(R"({"pid": 78, "runtimeSpec": {"linux": {"namespaces": [{"type": "network"}]}}})") ==
          "/proc/78/ns/net");
    // Nothing to go on: "" (find_pod turns it into an error or the node's netns).
    CHECK(netns_path_from_info(R"({"pid": 0})") == "");
    CHECK(netns_path_from_info(R"({})") == "");
    // The sandbox config's port mappings (a hostNetwork pod's scope): TCP is
    // the enum's 0, which containerd's JSON omits; names are accepted too.
    auto ports = ports_from_info(R"({"pid": 1, "config": {"port_mappings": [
              {"container_port": 8080, "host_port": 8080},
              {"protocol": 1, "container_port": 53, "host_port": 5353},
              {"protocol": "SCTP", "container_port": 9999},
              {"protocol": 7, "container_port": 1}, {"container_port": 70000}]}})");
    REQUIRE(ports);
    CHECK(*ports == std::vector<pwru::ScopePort>{{8080, 6}, {53, 17}, {5353, 17}, {9999, 132}});
    CHECK(ports_from_info(R"({"pid": 1})")->empty());
    CHECK_FALSE(ports_from_info("[").has_value());
    auto bad = netns_path_from_info("not json");
    REQUIRE_FALSE(bad.has_value());
    CHECK_THAT(bad.error().message(), Contains("not a JSON object"));
}

// The agent's image need not have /var/run -> /run: containerd reports
// /var/run/netns/cni-..., the chart mounts the host's folder at /run/netns.
// `root` stands for the agent's filesystem without that link.
TEST_CASE("resolve_netns: the reported path, its /run twin, then the sandbox's /proc/PID/ns/net", "[cri]") {
    TempDir root("pwru-netns-root");
    auto touch = [&](const std::string& p) {
        std::filesystem::create_directories((root.path / p.substr(1)).parent_path());
        std::ofstream(root.path / p.substr(1)) << "x";
        return inode_of((root.path / p.substr(1)).string());
    };
    CHECK(netns_candidates("/var/run/netns/cni-1234", 4242) ==
          std::vector<std::string>{"/var/run/netns/cni-1234", "/run/netns/cni-1234", "/proc/4242/ns/net"});
    CHECK(netns_candidates("/run/netns/cni-1", 0) ==
          std::vector<std::string>{"/run/netns/cni-1", "/var/run/netns/cni-1"});
    CHECK(netns_candidates("/proc/77/ns/net", 77) == std::vector<std::string>{"/proc/77/ns/net"});
    CHECK(sandbox_pid_from_info(R"({"pid": 4242})") == 4242);
    CHECK(sandbox_pid_from_info(R"({"runtimeSpec": {}})") == 0);
    CHECK(sandbox_pid_from_info("not json") == 0);

    SECTION("nothing there: every path tried, why, and the mounts to add") {
        auto r = resolve_netns("/var/run/netns/cni-1234", 4242, false, root.path.string());
        REQUIRE_FALSE(r);
        CHECK(r.error().message() ==
              "cannot open the pod's netns: tried /var/run/netns/cni-1234 (No such file or directory), "
              "/run/netns/cni-1234 (No such file or directory), /proc/4242/ns/net (No such file or directory); mount "
              "the host's /var/run/netns into the agent at /run/netns (hostPath, mountPropagation HostToContainer) "
              "and run it with hostPID, as charts/pwru does");
    }
    SECTION("the chart's mount at /run/netns, no /var/run link: the /run twin") {
        uint64_t ino = touch("/run/netns/cni-1234");
        auto r = resolve_netns("/var/run/netns/cni-1234", 4242, false, root.path.string());
        REQUIRE(r);
        CHECK(r->path == "/run/netns/cni-1234");
        CHECK(r->inode == ino);
    }
    SECTION("the reported path first when it is there") {
        touch("/run/netns/cni-1234");
        uint64_t ino = touch("/var/run/netns/cni-1234");
        auto r = resolve_netns("/var/run/netns/cni-1234", 4242, false, root.path.string());
        REQUIRE(r);
        CHECK(r->path == "/var/run/netns/cni-1234");
        CHECK(r->inode == ino);
    }
    SECTION("no netns folder mounted at all: the sandbox process's netns (hostPID)") {
        uint64_t ino = touch("/proc/4242/ns/net");
        auto r = resolve_netns("/var/run/netns/cni-1234", 4242, false, root.path.string());
        REQUIRE(r);
        CHECK(r->path == "/proc/4242/ns/net");
        CHECK(r->inode == ino);
    }
}

TEST_CASE("resolve_netns: a pid that opens the agent's own netns is not taken for a pod's", "[cri]") {
    // Without hostPID the runtime's pid names some process of the agent's own
    // PID namespace: here, the test itself.
    const int64_t self = ::getpid();
    auto pod = resolve_netns("/var/run/netns/cni-absent-0000", self, /*host_network=*/false);
    REQUIRE_FALSE(pod);
    CHECK_THAT(pod.error().message(), Contains("/proc/" + std::to_string(self) +
                                               "/ns/net (the agent's own netns, not the pod's: is the "
                                               "agent without hostPID?)"));
    // A hostNetwork pod's netns is the node's, which may well be ours.
    auto host = resolve_netns("", self, /*host_network=*/true);
    REQUIRE(host);
    CHECK(host->inode == inode_of("/proc/self/ns/net"));
}
