#include "agent/cri_client.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cri_subset.grpc.pb.h"

namespace pwru::agent {

namespace cri = runtime::v1;
using json = nlohmann::json;

struct CriClient::Stub {
    std::unique_ptr<cri::RuntimeService::Stub> rpc;
};

namespace {

// The labels the kubelet puts on every sandbox it creates.
constexpr const char* kNamespaceLabel = "io.kubernetes.pod.namespace";
constexpr const char* kNameLabel = "io.kubernetes.pod.name";

// A context with a deadline: a runtime that hangs must not hang the agent.
std::unique_ptr<grpc::ClientContext> call_context(std::chrono::milliseconds timeout) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + timeout);
    return ctx;
}

std::string status_text(const grpc::Status& s) {
    return fmt::format("{} (gRPC code {})", s.error_message(), static_cast<int>(s.error_code()));
}

Result<cri::VersionResponse> call_version(cri::RuntimeService::Stub& stub, std::chrono::milliseconds timeout) {
    auto ctx = call_context(timeout);
    cri::VersionRequest req;
    req.set_version("v1");
    cri::VersionResponse resp;
    grpc::Status st = stub.Version(ctx.get(), req, &resp);
    if (st.ok()) return resp;
    if (st.error_code() == grpc::StatusCode::UNIMPLEMENTED)
        return fail("the runtime does not serve CRI runtime.v1 (" + st.error_message() +
                    "): is its CRI plugin enabled?");
    return fail(status_text(st));
}

// Checks the path before gRPC does: "no such file" beats gRPC's
// "failed to connect to all addresses".
Result<void> check_socket_path(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return fail("cannot reach the CRI socket " + path, errno);
    if (!S_ISSOCK(st.st_mode)) return fail(path + " is not a socket");
    return {};
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
}

}  // namespace

const std::vector<std::string>& default_cri_sockets() {
    static const std::vector<std::string> sockets = {
        "/run/containerd/containerd.sock",      // containerd (kubeadm, kind, EKS, GKE, AKS)
        "/run/k3s/containerd/containerd.sock",  // k3s / rke2's embedded containerd
        "/run/k0s/containerd.sock",             // k0s
        "/var/run/crio/crio.sock",              // CRI-O (OpenShift)
    };
    return sockets;
}

CriClient::CriClient(std::string socket, std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds timeout)
    : socket_(std::move(socket)),
      channel_(std::move(channel)),
      stub_(std::make_unique<Stub>(Stub{cri::RuntimeService::NewStub(channel_)})),
      timeout_(timeout) {}

CriClient::CriClient(CriClient&&) noexcept = default;
CriClient& CriClient::operator=(CriClient&&) noexcept = default;
CriClient::~CriClient() = default;

// One candidate: the socket exists and answers Version.
Result<CriClient> CriClient::try_socket(const std::string& path, std::chrono::milliseconds timeout) {
    if (auto ok = check_socket_path(path); !ok) return std::unexpected(ok.error());
    auto channel = grpc::CreateChannel("unix:" + path, grpc::InsecureChannelCredentials());
    CriClient client(path, channel, timeout);
    if (auto v = call_version(*client.stub_->rpc, timeout); !v)
        return fail("cannot reach the CRI socket " + path + ": " + v.error().message());
    return client;
}

Result<CriClient> CriClient::connect(const std::string& socket, std::chrono::milliseconds timeout) {
    if (socket.empty()) return connect_first(default_cri_sockets(), timeout);
    auto c = try_socket(socket, timeout);
    if (!c) return fail(c.error().message() + "; pass the right --cri-socket");
    return c;
}

Result<CriClient> CriClient::connect_first(const std::vector<std::string>& candidates,
                                           std::chrono::milliseconds timeout) {
    std::vector<std::string> tried;
    for (const auto& path : candidates) {
        auto c = try_socket(path, timeout);
        if (c) return c;
        // Absent sockets are expected; one that exists but fails is worth naming.
        if (c.error().err != ENOENT) tried.push_back(c.error().message());
    }
    if (tried.empty())
        return fail("no CRI socket found (tried " + joined(candidates) +
                    "); pass --cri-socket PATH (mount it into the agent's pod)");
    return fail(joined(tried) + "; pass --cri-socket PATH");
}

Result<std::string> CriClient::runtime_version() {
    auto v = call_version(*stub_->rpc, timeout_);
    if (!v) return fail("CRI Version on " + socket_ + ": " + v.error().message());
    return fmt::format("{} {} (CRI {})", v->runtime_name(), v->runtime_version(), v->runtime_api_version());
}

Result<std::string> netns_path_from_info(const std::string& info_json) {
    json info = json::parse(info_json, nullptr, /*allow_exceptions=*/false);
    if (info.is_discarded() || !info.is_object())
        return fail("the runtime's sandbox info is not a JSON object", 0, info_json.substr(0, 200));

    // runtimeSpec is the OCI config the runtime handed runc: a "network"
    // namespace with a path means "join this one" (the CNI netns).
    const json* namespaces = nullptr;
    if (auto spec = info.find("runtimeSpec"); spec != info.end() && spec->is_object())
        if (auto lx = spec->find("linux"); lx != spec->end() && lx->is_object())
            if (auto ns = lx->find("namespaces"); ns != lx->end() && ns->is_array()) namespaces = &*ns;
    if (namespaces) {
        for (const auto& ns : *namespaces) {
            if (ns.is_object() && ns.value("type", "") == "network") {
                std::string path = ns.value("path", "");
                if (!path.empty()) return path;
            }
        }
    }
    // A network namespace runc created itself (no path) lives as long as the
    // sandbox's process: reach it through that process.
    if (auto pid = info.find("pid"); pid != info.end() && pid->is_number_integer() && pid->get<int64_t>() > 0)
        return fmt::format("/proc/{}/ns/net", pid->get<int64_t>());
    return std::string();
}

int64_t sandbox_pid_from_info(const std::string& info_json) {
    json info = json::parse(info_json, nullptr, /*allow_exceptions=*/false);
    if (info.is_discarded() || !info.is_object()) return 0;
    auto pid = info.find("pid");
    return pid != info.end() && pid->is_number_integer() && pid->get<int64_t>() > 0 ? pid->get<int64_t>() : 0;
}

namespace {

// /var/run/X <-> /run/X ("" for any other path).
std::string other_run_name(const std::string& path) {
    if (path.rfind("/var/run/", 0) == 0) return path.substr(4);
    if (path.rfind("/run/", 0) == 0) return "/var" + path;
    return "";
}

}  // namespace

std::vector<std::string> netns_candidates(const std::string& reported, int64_t sandbox_pid) {
    std::vector<std::string> out;
    auto add = [&](const std::string& p) {
        if (!p.empty() && std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    };
    add(reported);
    add(other_run_name(reported));
    if (sandbox_pid > 0) add(fmt::format("/proc/{}/ns/net", sandbox_pid));
    return out;
}

Result<ResolvedNetns> resolve_netns(const std::string& reported, int64_t sandbox_pid, bool host_network,
                                    const std::string& root) {
    struct stat own {};
    const bool know_own = ::stat("/proc/self/ns/net", &own) == 0;
    std::string tried;
    for (const auto& path : netns_candidates(reported, sandbox_pid)) {
        struct stat st {};
        std::string why;
        if (::stat((root + path).c_str(), &st) != 0) {
            why = std::strerror(errno);
        } else if (path.rfind("/proc/", 0) == 0 && !host_network && know_own && st.st_ino == own.st_ino &&
                   st.st_dev == own.st_dev) {
            why = "the agent's own netns, not the pod's: is the agent without hostPID?";
        } else {
            return ResolvedNetns{path, static_cast<uint32_t>(st.st_ino)};
        }
        tried += (tried.empty() ? "" : ", ") + path + " (" + why + ")";
    }
    return fail("cannot open the pod's netns: tried " + tried +
                "; mount the host's /var/run/netns into the agent at /run/netns (hostPath, mountPropagation "
                "HostToContainer) and run it with hostPID, as charts/pwru does");
}

Result<std::vector<ScopePort>> ports_from_info(const std::string& info_json) {
    json info = json::parse(info_json, nullptr, /*allow_exceptions=*/false);
    if (info.is_discarded() || !info.is_object())
        return fail("the runtime's sandbox info is not a JSON object", 0, info_json.substr(0, 200));
    std::vector<ScopePort> ports;
    auto config = info.find("config");
    if (config == info.end() || !config->is_object()) return ports;
    auto mappings = config->find("port_mappings");
    if (mappings == config->end() || !mappings->is_array()) return ports;
    for (const auto& m : *mappings) {
        if (!m.is_object()) continue;
        // runtime.v1 Protocol: TCP = 0 (omitted by omitempty), UDP = 1, SCTP = 2.
        uint8_t l4 = 6;
        if (auto p = m.find("protocol"); p != m.end()) {
            std::string name = p->is_number_integer() ? std::to_string(p->get<int>())
                               : p->is_string()       ? p->get<std::string>()
                                                      : "";
            for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            if (name == "0" || name == "TCP")
                l4 = 6;
            else if (name == "1" || name == "UDP")
                l4 = 17;
            else if (name == "2" || name == "SCTP")
                l4 = 132;
            else
                continue;
        }
        for (const char* field : {"container_port", "host_port"}) {
            auto v = m.find(field);
            if (v == m.end() || !v->is_number_integer()) continue;
            const int port = v->get<int>();
            if (port <= 0 || port > 65535) continue;
            ScopePort sp{static_cast<uint16_t>(port), l4};
            if (std::find(ports.begin(), ports.end(), sp) == ports.end()) ports.push_back(sp);
        }
    }
    return ports;
}

Result<PodInfo> CriClient::find_pod(const std::string& ns, const std::string& name) {
    const std::string pod = ns + "/" + name;

    // Filter on READY: stopped sandboxes of earlier pod incarnations linger
    // under the same labels until the kubelet garbage-collects them.
    cri::ListPodSandboxRequest list_req;
    auto* filter = list_req.mutable_filter();
    filter->mutable_state()->set_state(cri::SANDBOX_READY);
    (*filter->mutable_label_selector())[kNamespaceLabel] = ns;
    (*filter->mutable_label_selector())[kNameLabel] = name;
    cri::ListPodSandboxResponse list;
    grpc::Status st = stub_->rpc->ListPodSandbox(call_context(timeout_).get(), list_req, &list);
    if (!st.ok())
        return fail("CRI ListPodSandbox on " + socket_ + ": " + status_text(st) + "; is the runtime healthy?");
    if (list.items_size() == 0)
        return not_found("pod " + pod +
                         " not found on this node (no READY sandbox with those labels); check the pod's node");
    // Two READY sandboxes happen briefly while the kubelet replaces one.
    const auto& newest = *std::max_element(list.items().begin(), list.items().end(), [](const auto& a, const auto& b) {
        return a.created_at() < b.created_at();
    });

    auto info = sandbox(newest.id());
    if (!info) return fail("pod " + pod + ": " + info.error().what, info.error().err, info.error().context);
    info->ns = ns;
    info->name = name;
    return info;
}

Result<std::vector<std::string>> CriClient::ready_sandboxes() {
    cri::ListPodSandboxRequest req;
    req.mutable_filter()->mutable_state()->set_state(cri::SANDBOX_READY);
    cri::ListPodSandboxResponse list;
    grpc::Status st = stub_->rpc->ListPodSandbox(call_context(timeout_).get(), req, &list);
    if (!st.ok())
        return fail("CRI ListPodSandbox on " + socket_ + ": " + status_text(st) + "; is the runtime healthy?");
    std::vector<std::string> ids;
    for (const auto& item : list.items()) ids.push_back(item.id());
    return ids;
}

Result<PodInfo> CriClient::sandbox(const std::string& id) {
    cri::PodSandboxStatusRequest status_req;
    status_req.set_pod_sandbox_id(id);
    status_req.set_verbose(true);
    cri::PodSandboxStatusResponse status;
    grpc::Status st = stub_->rpc->PodSandboxStatus(call_context(timeout_).get(), status_req, &status);
    if (!st.ok()) return fail("CRI PodSandboxStatus: " + status_text(st) + "; retry (was it just deleted?)");

    PodInfo info;
    info.id = id;
    const auto& s = status.status();
    info.ns = s.metadata().namespace_();
    info.name = s.metadata().name();
    if (!s.network().ip().empty()) info.ips.push_back(s.network().ip());
    for (const auto& ip : s.network().additional_ips()) info.ips.push_back(ip.ip());
    info.host_network = s.linux().namespaces().options().network() == cri::NODE;

    int64_t pid = 0;
    if (auto it = status.info().find("info"); it != status.info().end()) {
        auto path = netns_path_from_info(it->second);
        if (!path)
            return fail(path.error().message() + "; report the runtime and its version", 0, path.error().context);
        info.netns_path = *path;
        pid = sandbox_pid_from_info(it->second);
        auto ports = ports_from_info(it->second);
        if (ports) info.ports = std::move(*ports);
    }
    // hostNetwork sandboxes have no network entry; when no pid says where the
    // sandbox runs either, the node's netns is PID 1's (the agent shares the
    // host PID namespace or mounts the host's /proc).
    if (info.netns_path.empty() && info.host_network) info.netns_path = "/proc/1/ns/net";
    if (info.netns_path.empty())
        return fail(
            "the runtime's PodSandboxStatus names no network namespace (no runtimeSpec "
            "netns path, no pid); report the runtime and its version");

    // The reported path is as the runtime sees the node; ours may differ.
    auto netns = resolve_netns(info.netns_path, pid, info.host_network);
    if (!netns) return std::unexpected(netns.error());
    info.netns_path = netns->path;
    info.netns_inode = netns->inode;
    return info;
}

}  // namespace pwru::agent
