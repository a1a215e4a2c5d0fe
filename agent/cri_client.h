// pwru-agent's view of the node's container runtime: `namespace/pod` -> the
// pod's network namespace, through the CRI socket (gRPC runtime.v1
// RuntimeService; our subset of the API is agent/proto/cri_subset.proto).
//
//   auto cri = CriClient::connect("");            // auto-detect the socket
//   auto pod = cri->find_pod("default", "httpd");
//   // pod->netns_inode is what --filter-netns inode:N takes; pod->ips widen
//   // the scope to the host side of the veth.
//
// Works with containerd (also k3s's and k0s's) and CRI-O: both answer
// PodSandboxStatus(verbose) with the sandbox's OCI runtime spec, which names
// the netns path.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tracer/trace_options.h"  // ScopePort (header only)
#include "tracer/util/result.h"

namespace grpc {
class Channel;
}

namespace pwru::agent {

struct PodInfo {
    std::string id;          // the sandbox ID
    std::string ns, name;    // Kubernetes namespace and pod name
    std::string netns_path;  // opens the pod's netns (/var/run/netns/cni-..., /proc/PID/ns/net)
    uint32_t netns_inode = 0;
    std::vector<std::string> ips;  // status.network.ip, then additional_ips
    bool host_network = false;     // hostNetwork: netns_path is the node's netns
    // The sandbox config's port_mappings (container and host port): what
    // scopes a hostNetwork pod. Empty when the pod declares none.
    std::vector<ScopePort> ports;
};

// The well-known runtime sockets, tried in this order by connect("").
const std::vector<std::string>& default_cri_sockets();

class CriClient {
  public:
    // Connects to `socket` (a path) and checks that it answers Version; ""
    // tries default_cri_sockets() and takes the first that does.
    static Result<CriClient> connect(const std::string& socket,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // Auto-detection: the first of `candidates` that exists and answers
    // Version (connect("") passes default_cri_sockets()). Absent ones are
    // skipped silently; ones that exist but fail are named in the error.
    static Result<CriClient> connect_first(const std::vector<std::string>& candidates,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(5));

    CriClient(CriClient&&) noexcept;
    CriClient& operator=(CriClient&&) noexcept;
    ~CriClient();

    const std::string& socket() const { return socket_; }
    // The channel, for callers that need other RuntimeService calls (tests).
    std::shared_ptr<grpc::Channel> channel() const { return channel_; }

    // "containerd 1.6.20~ds1 (CRI v1)".
    Result<std::string> runtime_version();

    // The READY sandbox labelled io.kubernetes.pod.namespace=ns and
    // io.kubernetes.pod.name=name (the newest if several), with its netns
    // path and inode (resolved by resolve_netns: the reported path, its
    // /run <-> /var/run twin, or /proc/PID/ns/net of the sandbox) and its IPs.
    // No such pod here: a NotFound Error (the name is at fault) naming ns/name;
    // every other failure is a Failure.
    Result<PodInfo> find_pod(const std::string& ns, const std::string& name);

    // The IDs of every READY sandbox of this runtime (the node's pods).
    Result<std::vector<std::string>> ready_sandboxes();
    // One sandbox by ID, as find_pod describes it (ns and name from its metadata).
    Result<PodInfo> sandbox(const std::string& id);

  private:
    static Result<CriClient> try_socket(const std::string& path, std::chrono::milliseconds timeout);
    CriClient(std::string socket, std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds timeout);

    struct Stub;
    std::string socket_;
    std::shared_ptr<grpc::Channel> channel_;
    std::unique_ptr<Stub> stub_;
    std::chrono::milliseconds timeout_;  // per call
};

// The netns path in a verbose PodSandboxStatus's info["info"] JSON (both
// containerd's and CRI-O's layout): runtimeSpec.linux.namespaces[type ==
// "network"].path, else /proc/<pid>/ns/net when the JSON has a pid. "" when
// it has neither (hostNetwork pods have no network entry). Errors only on
// JSON that does not parse. Separate from find_pod so tests can feed it
// either runtime's layout.
Result<std::string> netns_path_from_info(const std::string& info_json);

// The sandbox process's pid in a verbose PodSandboxStatus's info["info"]
// JSON (containerd and CRI-O: "pid"), 0 when absent or not JSON.
int64_t sandbox_pid_from_info(const std::string& info_json);

// The paths, in the order tried, that may open a pod's netns from the agent's
// mount namespace: the path the runtime reported; the same path under the
// other name of /run (/var/run/X <-> /run/X: runtimes report
// /var/run/netns/cni-..., the chart mounts the host's folder at /run/netns,
// and an image without the /var/run -> /run link has no /var/run/netns);
// then /proc/PID/ns/net of the sandbox's process (the chart's hostPID).
std::vector<std::string> netns_candidates(const std::string& reported, int64_t sandbox_pid);

struct ResolvedNetns {
    std::string path;  // the candidate that opened (without the root prefix)
    uint32_t inode = 0;
};

// The first of netns_candidates() that stat()s under `root` (a prefix for
// tests; "" in the agent). A /proc candidate of a pod that is not
// hostNetwork must not be the agent's own netns: without hostPID that pid
// is some other process of the agent's PID namespace. None: an error naming
// every path tried and why, and the mounts to add.
Result<ResolvedNetns> resolve_netns(const std::string& reported, int64_t sandbox_pid, bool host_network,
                                    const std::string& root = "");

// The ports of a verbose PodSandboxStatus's info["info"] JSON: the sandbox
// config's port_mappings (containerd: config.port_mappings[].{protocol,
// container_port, host_port}, protocol as the CRI enum number, absent for
// TCP, or its name). Both ports of a mapping, deduplicated. Empty when there
// is no config or no mapping; errors on JSON that does not parse.
Result<std::vector<ScopePort>> ports_from_info(const std::string& info_json);

}  // namespace pwru::agent
