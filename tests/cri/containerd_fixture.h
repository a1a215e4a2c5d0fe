// A real, private containerd for the cri test layer: its own config, root,
// state, socket and CNI config in a temp dir, never the host's containerd.
//
//   if (auto why = ContainerdFixture::unavailable(); !why.empty()) { WARN("SKIPPED: " + why); return; }
//   ContainerdFixture cd;                         // starts containerd, imports the pause image
//   std::string id = cd.run_pod("default", "httpd");  // RunPodSandbox as the kubelet would
//   auto cri = CriClient::connect(cd.socket());
//
// Layout (D = /tmp/pwru-cri-<pid>-XXXXXX): D/config.toml, D/root, D/state (also
// the pods' netns mounts: netns_mounts_under_state_dir), D/containerd.sock,
// D/runc (runc's state), D/cni/{conf,ipam}, D/pause.tar. Pods get 10.197.N.x
// from a bridge "pwcri<pid>" (host-local IPAM, no masquerade rules) and live
// in cgroups under /pwru-cri-<pid>. The one trace outside these: shim sockets
// in /run/containerd/s/, which containerd 1.6 places there whatever its
// state dir (the shims remove them on exit; the cleanup rmdirs it if empty).
//
// The destructor stops and removes every sandbox, stops containerd (SIGINT,
// then SIGKILL after 10 s), kills anything left running from D, unmounts what
// is mounted under D, removes the cgroups, the bridge and D. The constructor
// first does the same for leftovers of crashed runs (pwru-cri-<pid>-* whose
// pid is dead).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace pwru::test {

class ChildProcess;

// A sandbox port mapping as the kubelet passes it (CRI PortMapping).
struct PodPort {
    int protocol = 0;  // runtime.v1 Protocol: 0 TCP, 1 UDP, 2 SCTP
    int container_port = 0;
    int host_port = 0;
};

// Where the private containerd runs. Several at once stand for several
// Kubernetes nodes on one kernel (kind): each in its own network namespace
// (the node's), with its own pod subnet.
struct ContainerdOptions {
    std::string netns_path;  // the node's netns ("" = the test's): containerd, the CNI bridge, hostNetwork pods
    int instance = 0;        // 0, 1, ...: a distinct pod subnet per instance of one test process
};

class ContainerdFixture {
  public:
    // "" when the fixture can run here; otherwise why not (not root; containerd,
    // ctr, runc or the CNI plugins not installed). Only absence is a reason:
    // a containerd that is installed but fails makes the constructor throw.
    static std::string unavailable();

    // Starts containerd and imports the pause image. Throws std::runtime_error
    // with containerd's log tail when it does not come up within 30 s.
    explicit ContainerdFixture(ContainerdOptions options = {});
    ~ContainerdFixture();  // never throws
    ContainerdFixture(const ContainerdFixture&) = delete;
    ContainerdFixture& operator=(const ContainerdFixture&) = delete;

    const std::string& socket() const { return socket_; }
    const std::filesystem::path& dir() const { return dir_; }
    // "10.197.N." : every pod IP from the fixture's CNI starts with it.
    const std::string& pod_ip_prefix() const { return ip_prefix_; }
    const std::string& netns_path() const { return options_.netns_path; }

    // RunPodSandbox with the metadata, labels and annotations the kubelet
    // sets; host_network = NamespaceOption network NODE. Returns the sandbox
    // ID; throws on failure (with containerd's log tail).
    std::string run_pod(const std::string& ns, const std::string& name, bool host_network = false,
                        const std::vector<PodPort>& ports = {});
    void stop_pod(const std::string& id);
    void remove_pod(const std::string& id);

    // The sandbox's netns inode as containerd's task list sees it
    // (`ctr tasks ls` -> pid -> /proc/PID/ns/net): a witness independent of
    // the CRI client under test.
    uint64_t sandbox_netns_inode(const std::string& id);

    // Cleans up crashed runs' leftovers; returns how many dirs it removed.
    static int sweep_stale();

  private:
    struct Rpc;
    void import_pause_image();
    std::string ctr(const std::vector<std::string>& args);
    std::string log_tail() const;
    void stop_and_remove_all() noexcept;
    // Stops every sandbox and containerd (SIGINT first when graceful), then
    // removes what the run left: processes, mounts, cgroups, bridge, dir.
    void cleanup(bool graceful) noexcept;

    ContainerdOptions options_;
    std::filesystem::path dir_;
    std::string socket_;
    std::string bridge_;
    std::string ip_prefix_;
    std::unique_ptr<ChildProcess> containerd_;
    std::unique_ptr<Rpc> rpc_;
};

}  // namespace pwru::test
