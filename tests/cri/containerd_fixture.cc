#include "cri/containerd_fixture.h"

#include <grpcpp/grpcpp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "cri_subset.grpc.pb.h"
#include "support/child_process.h"
#include "support/netns_fixture.h"  // run_checked

namespace pwru::test {

namespace fs = std::filesystem;
namespace cri = runtime::v1;
using namespace std::chrono_literals;

namespace {

constexpr const char* kCniBinDir = "/usr/lib/cni";  // Debian's containernetworking-plugins
constexpr const char* kPauseImage = "pwru.local/pause:test";
constexpr const char* kDirPrefix = "pwru-cri-";

#if defined(__x86_64__)
constexpr const char* kArch = "amd64";
#elif defined(__aarch64__)
constexpr const char* kArch = "arm64";
#else
#error "add this architecture's OCI name"
#endif

bool pid_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

bool on_path(const std::string& cmd) { return run_command({"sh", "-c", "command -v " + cmd}, 5s).ok(); }

// ---- cleanup: shared by the destructor and sweep_stale -----------------------

// Every process whose command line names `dir` (containerd, its shims, runc),
// plus their descendants (the pods' pause processes, which name nothing).
std::set<pid_t> processes_of(const fs::path& dir) {
    std::map<pid_t, pid_t> parent;
    std::set<pid_t> found;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
        const std::string n = e.path().filename();
        if (n.empty() || !std::all_of(n.begin(), n.end(), ::isdigit)) continue;
        const pid_t pid = std::stoi(n);
        if (pid == ::getpid()) continue;
        std::string cmdline = read_file_text(e.path() / "cmdline");
        std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
        if (cmdline.find(dir.string()) != std::string::npos) found.insert(pid);
        const std::string stat = read_file_text(e.path() / "stat");  // "pid (comm) S ppid ..."
        if (auto p = stat.rfind(')'); p != std::string::npos) {
            std::istringstream rest(stat.substr(p + 1));
            std::string state;
            pid_t ppid = 0;
            rest >> state >> ppid;
            parent[pid] = ppid;
        }
    }
    for (bool grew = true; grew;) {
        grew = false;
        for (auto [pid, ppid] : parent)
            if (found.count(ppid) && found.insert(pid).second) grew = true;
    }
    return found;
}

// A shim's socket: /run/containerd/s/hex(sha256(ADDRESS/NAMESPACE/ID)), as
// containerd 1.6's shim.SocketAddress names it. A shim that exits cleanly
// removes it; a SIGKILLed one cannot.
void remove_shim_socket(const std::string& cmdline) {
    std::istringstream args(cmdline);
    std::map<std::string, std::string> flags;
    for (std::string a, prev; args >> a; prev = a)
        if (prev.starts_with("-")) flags[prev] = a;
    if (!flags.count("-id") || !flags.count("-address") || !flags.count("-namespace")) return;
    const std::string key = flags["-address"] + "/" + flags["-namespace"] + "/" + flags["-id"];
    auto sum = run_command({"sh", "-c", "printf %s \"$1\" | sha256sum", "sh", key}, 5s);
    if (sum.ok() && sum.out.size() >= 64) fs::remove("/run/containerd/s/" + sum.out.substr(0, 64));
}

void kill_processes_of(const fs::path& dir) {
    auto pids = processes_of(dir);
    for (pid_t pid : pids) {
        std::string cmdline = read_file_text("/proc/" + std::to_string(pid) + "/cmdline");
        std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
        ::kill(pid, SIGKILL);
        if (cmdline.find("containerd-shim") != std::string::npos) remove_shim_socket(cmdline);
    }
    // Bounded: SIGKILL cannot be ignored, but exit takes a moment.
    for (int i = 0;
         i < 500 && std::any_of(pids.begin(), pids.end(),
                                [](pid_t p) {
                                    return pid_alive(p) &&
                                           read_file_text("/proc/" + std::to_string(p) + "/stat").find(") Z") ==
                                               std::string::npos;
                                });
         ++i)
        std::this_thread::sleep_for(10ms);
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mount_path(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

// The sandboxes' netns bind mounts, /dev/shm tmpfs and rootfs mounts.
void unmount_under(const fs::path& dir) {
    const std::string prefix = dir.string() + "/";
    std::vector<std::string> points;
    std::istringstream info(read_file_text("/proc/self/mountinfo"));
    for (std::string line; std::getline(info, line);) {
        std::istringstream f(line);
        std::string id, parent, dev, root, point;
        f >> id >> parent >> dev >> root >> point;
        point = unescape_mount_path(point);
        if (point.starts_with(prefix)) points.push_back(point);
    }
    // Deepest first; MNT_DETACH so a busy mount cannot block the cleanup.
    std::sort(points.begin(), points.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
    for (auto& p : points) ::umount2(p.c_str(), MNT_DETACH);
}

// Per test process, so the names cannot collide with a real node's or
// another run's: the CNI bridge and the pods' parent cgroup.
std::string bridge_name(pid_t pid) { return "pwcri" + std::to_string(pid); }  // <= 15 chars
std::string cgroup_name(pid_t pid) { return std::string(kDirPrefix) + std::to_string(pid); }

// Empty cgroups are removed with rmdir, children first (their files cannot
// be unlinked). Covers cgroup v1 hierarchies and a v2-only /sys/fs/cgroup.
void remove_cgroup_tree(const fs::path& dir) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.is_directory(ec) && !e.is_symlink(ec)) remove_cgroup_tree(e.path());
    ::rmdir(dir.c_str());
}

void remove_cgroups(const std::string& name) {
    std::error_code ec;
    if (fs::exists(fs::path("/sys/fs/cgroup") / name, ec)) remove_cgroup_tree(fs::path("/sys/fs/cgroup") / name);
    for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec))
        if (fs::exists(h.path() / name, ec)) remove_cgroup_tree(h.path() / name);
}

void cleanup_dir(const fs::path& dir, pid_t owner) noexcept {
    try {
        kill_processes_of(dir);
        unmount_under(dir);
        remove_cgroups(cgroup_name(owner));
        const std::string bridge = bridge_name(owner);
        if (fs::exists("/sys/class/net/" + bridge)) run_command({"ip", "link", "del", bridge}, 10s);
        std::error_code ec;
        fs::remove_all(dir, ec);
        // The shims' socket dir. rmdir removes it only when empty, and the
        // shims of any containerd recreate it on demand (MkdirAll).
        ::rmdir("/run/containerd/s");
        ::rmdir("/run/containerd");
    } catch (...) {
        // A destructor's cleanup: best effort, never throws.
    }
}

// Pods get an IP from a bridge of their own, and a default route through it.
// No masquerade (ipMasq false): nothing is added to the host's iptables.
// The two files as they will read, laid out by hand.
// clang-format off
std::string cni_conflist(const fs::path& dir, const std::string& bridge, const std::string& subnet) {
    return nlohmann::json{
        {"cniVersion", "0.4.0"},
        {"name", "pwru-cri-test"},
        {"plugins", {{
            {"type", "bridge"}, {"bridge", bridge}, {"isGateway", true}, {"ipMasq", false},
            {"ipam", {{"type", "host-local"},
                      {"ranges", {{{{"subnet", subnet}}}}},
                      // A default route via the bridge, as pods have on a real
                      // node: another node's pods are reachable through it.
                      {"routes", {{{"dst", "0.0.0.0/0"}}}},
                      {"dataDir", (dir / "cni/ipam").string()}}},
        }}},
    }.dump(2);
}
// clang-format on

// Everything containerd, its CRI plugin and runc write goes under `dir`.
// restrict_oom_score_adj: runc cannot lower oom_score_adj without
// CAP_SYS_RESOURCE, which some sandboxes (this CI's) do not grant.
// native snapshotter: plain copies, works on any filesystem (overlay on
// overlay does not). Stream server on port 0: no fixed port to collide.
// clang-format off
std::string containerd_config(const fs::path& dir, const std::string& socket) {
    const std::string d = dir.string();
    const std::string cri = "[plugins.\"io.containerd.grpc.v1.cri\"";
    return "version = 2\n"
        "root = \"" + d + "/root\"\n"
        "state = \"" + d + "/state\"\n"
        "[grpc]\n  address = \"" + socket + "\"\n"
        "[ttrpc]\n  address = \"" + socket + ".ttrpc\"\n"
        "[metrics]\n  address = \"\"\n"
        "[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"" + d + "/opt\"\n" +
        cri + "]\n"
        "  sandbox_image = \"" + kPauseImage + "\"\n"
        "  restrict_oom_score_adj = true\n"
        "  netns_mounts_under_state_dir = true\n"
        "  stream_server_address = \"127.0.0.1\"\n"
        "  stream_server_port = \"0\"\n" +
        cri + ".containerd]\n"
        "  snapshotter = \"native\"\n"
        "  default_runtime_name = \"runc\"\n" +
        cri + ".containerd.runtimes.runc]\n"
        "  runtime_type = \"io.containerd.runc.v2\"\n" +
        cri + ".containerd.runtimes.runc.options]\n"
        "  Root = \"" + d + "/runc\"\n" +
        cri + ".cni]\n"
        "  bin_dir = \"" + kCniBinDir + "\"\n"
        "  conf_dir = \"" + d + "/cni/conf\"\n"
        "  max_conf_num = 1\n";
}
// clang-format on

}  // namespace

// ---- the CRI calls the tests make (the agent itself never creates pods) ------

struct ContainerdFixture::Rpc {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<cri::RuntimeService::Stub> stub;

    explicit Rpc(const std::string& socket)
        : channel(grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials())),
          stub(cri::RuntimeService::NewStub(channel)) {}

    static std::unique_ptr<grpc::ClientContext> context(std::chrono::seconds timeout) {
        auto ctx = std::make_unique<grpc::ClientContext>();
        ctx->set_deadline(std::chrono::system_clock::now() + timeout);
        return ctx;
    }
    // Throws with the call's name and gRPC's message.
    static void check(const grpc::Status& st, const std::string& what) {
        if (!st.ok()) throw std::runtime_error("CRI " + what + ": " + st.error_message());
    }
};

std::string ContainerdFixture::unavailable() {
    if (::geteuid() != 0) return "needs root (containerd, runc, network namespaces); run as root";
    for (const char* cmd : {"containerd", "ctr", "runc"})
        if (!on_path(cmd)) return std::string(cmd) + " is not installed (scripts/install-deps.sh installs it)";
    for (const char* plugin : {"bridge", "host-local", "loopback"})
        if (!fs::exists(fs::path(kCniBinDir) / plugin))
            return std::string("the CNI plugin ") + kCniBinDir + "/" + plugin +
                   " is missing (containernetworking-plugins; scripts/install-deps.sh installs it)";
    return "";
}

int ContainerdFixture::sweep_stale() {
    int removed = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::temp_directory_path(), ec)) {
        const std::string n = e.path().filename();
        if (!n.starts_with(kDirPrefix)) continue;
        // pwru-cri-<pid>-XXXXXX
        const std::string rest = n.substr(std::strlen(kDirPrefix));
        const pid_t pid = static_cast<pid_t>(std::atol(rest.c_str()));
        if (pid <= 0 || pid_alive(pid)) continue;
        cleanup_dir(e.path(), pid);
        ++removed;
    }
    return removed;
}

ContainerdFixture::ContainerdFixture(ContainerdOptions options) : options_(std::move(options)) {
    sweep_stale();
    const pid_t self = ::getpid();
    std::string tmpl = (fs::temp_directory_path() / (kDirPrefix + std::to_string(self) + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    dir_ = tmpl;
    socket_ = (dir_ / "containerd.sock").string();
    // Unix socket paths are limited to 108 bytes (containerd adds ".ttrpc").
    if (socket_.size() > 90) throw std::runtime_error("temp dir path too long for a unix socket: " + socket_);
    bridge_ = bridge_name(self);
    ip_prefix_ = "10.197." + std::to_string(20 + (self + 97 * options_.instance) % 200) + ".";

    try {
        for (const char* sub : {"root", "state", "runc", "cni/conf", "cni/ipam", "logs", "opt", "image/rootfs"})
            fs::create_directories(dir_ / sub);

        write_text(dir_ / "cni/conf/10-pwru.conflist", cni_conflist(dir_, bridge_, ip_prefix_ + "0/24"));
        write_text(dir_ / "config.toml", containerd_config(dir_, socket_));
        // The node's netns, not a new mount namespace (as `ip netns exec`
        // would make): the pods' netns mounts stay visible to the tests.
        ChildOptions child;
        child.netns_path = options_.netns_path;
        containerd_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{"containerd", "--config", (dir_ / "config.toml").string()}, child);
        rpc_ = std::make_unique<Rpc>(socket_);

        // Up = the CRI plugin answers Version (it refuses calls until initialized).
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        for (;;) {
            cri::VersionRequest req;
            cri::VersionResponse resp;
            if (fs::exists(socket_) && rpc_->stub->Version(Rpc::context(2s).get(), req, &resp).ok()) break;
            if (!containerd_->running()) throw std::runtime_error("containerd exited");
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("containerd's CRI did not answer in 30 s");
            std::this_thread::sleep_for(50ms);
        }

        import_pause_image();
    } catch (const std::exception& e) {
        std::string msg = std::string("private containerd in ") + dir_.string() + ": " + e.what() + "\n" + log_tail();
        cleanup(false);
        throw std::runtime_error(msg);
    }
}

ContainerdFixture::~ContainerdFixture() { cleanup(true); }

void ContainerdFixture::cleanup(bool graceful) noexcept {
    stop_and_remove_all();
    if (containerd_) {
        if (graceful) containerd_->interrupt();  // SIGINT: containerd's clean shutdown
        if (!graceful || !containerd_->wait(10s)) containerd_->kill();
    }
    rpc_.reset();
    cleanup_dir(dir_, ::getpid());
}

// The sandbox image, built here: no registry is reachable. A docker-save
// layout (manifest.json, config, one layer tar) holding the static pause.
void ContainerdFixture::import_pause_image() {
    const std::string d = dir_.string();
    fs::copy_file(PWRU_CRI_PAUSE_BIN, dir_ / "image/rootfs/pause");
    run_checked({"tar", "-C", d + "/image/rootfs", "--owner=0", "--group=0", "--numeric-owner", "-cf",
                 d + "/image/layer.tar", "pause"});
    const std::string layer_sha = run_checked({"sha256sum", d + "/image/layer.tar"}).substr(0, 64);
    write_text(dir_ / "image/config.json",
               nlohmann::json{
                   {"architecture", kArch},
                   {"os", "linux"},
                   {"config", {{"Entrypoint", {"/pause"}}}},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", {"sha256:" + layer_sha}}}},
               }
                   .dump());
    write_text(dir_ / "image/manifest.json", nlohmann::json::array({{
                                                                       {"Config", "config.json"},
                                                                       {"RepoTags", {kPauseImage}},
                                                                       {"Layers", {"layer.tar"}},
                                                                   }})
                                                 .dump());
    run_checked({"tar", "-C", d + "/image", "-cf", d + "/pause.tar", "manifest.json", "config.json", "layer.tar"});
    ctr({"images", "import", "--snapshotter", "native", d + "/pause.tar"});
}

std::string ContainerdFixture::ctr(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ctr", "--address", socket_, "-n", "k8s.io"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_checked(argv, 60s);
}

std::string ContainerdFixture::log_tail() const {
    if (!containerd_) return "";
    std::string log = containerd_->stderr_text();
    size_t pos = log.size();
    for (int lines = 0; lines < 15 && pos > 0; ++lines) pos = log.rfind('\n', pos - 1);
    return "containerd's last log lines:\n" + log.substr(pos == std::string::npos ? 0 : pos);
}

std::string ContainerdFixture::run_pod(const std::string& ns, const std::string& name, bool host_network,
                                       const std::vector<PodPort>& ports) {
    const std::string uid = name + "-uid-" + std::to_string(::getpid());
    cri::RunPodSandboxRequest req;
    auto* config = req.mutable_config();
    auto* meta = config->mutable_metadata();
    meta->set_name(name);
    meta->set_namespace_(ns);
    meta->set_uid(uid);
    meta->set_attempt(0);
    // With the host's UTS namespace a hostname cannot be set (runc refuses).
    if (!host_network) config->set_hostname(name);
    config->set_log_directory((dir_ / "logs" / (ns + "_" + name + "_" + uid)).string());
    auto& labels = *config->mutable_labels();  // what the kubelet sets
    labels["io.kubernetes.pod.name"] = name;
    labels["io.kubernetes.pod.namespace"] = ns;
    labels["io.kubernetes.pod.uid"] = uid;
    (*config->mutable_annotations())["kubernetes.io/config.source"] = "api";
    for (const auto& p : ports) {
        auto* m = config->add_port_mappings();
        m->set_protocol(static_cast<cri::Protocol>(p.protocol));
        m->set_container_port(p.container_port);
        m->set_host_port(p.host_port);
    }
    // As the kubelet's cgroupfs driver does (it uses /kubepods/...): a parent
    // of our own, removed by the cleanup.
    config->mutable_linux()->set_cgroup_parent("/" + cgroup_name(::getpid()));
    auto* nso = config->mutable_linux()->mutable_security_context()->mutable_namespace_options();
    nso->set_network(host_network ? cri::NODE : cri::POD);
    nso->set_pid(cri::CONTAINER);
    nso->set_ipc(cri::POD);

    cri::RunPodSandboxResponse resp;
    grpc::Status st = rpc_->stub->RunPodSandbox(Rpc::context(60s).get(), req, &resp);
    if (!st.ok())
        throw std::runtime_error("CRI RunPodSandbox " + ns + "/" + name + ": " + st.error_message() + "\n" +
                                 log_tail());
    return resp.pod_sandbox_id();
}

void ContainerdFixture::stop_pod(const std::string& id) {
    cri::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    cri::StopPodSandboxResponse resp;
    Rpc::check(rpc_->stub->StopPodSandbox(Rpc::context(30s).get(), req, &resp), "StopPodSandbox " + id);
}

void ContainerdFixture::remove_pod(const std::string& id) {
    cri::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    cri::RemovePodSandboxResponse resp;
    Rpc::check(rpc_->stub->RemovePodSandbox(Rpc::context(30s).get(), req, &resp), "RemovePodSandbox " + id);
}

void ContainerdFixture::stop_and_remove_all() noexcept {
    if (!rpc_ || !containerd_ || !containerd_->running()) return;
    try {
        cri::ListPodSandboxRequest req;
        cri::ListPodSandboxResponse list;
        if (!rpc_->stub->ListPodSandbox(Rpc::context(10s).get(), req, &list).ok()) return;
        for (const auto& pod : list.items()) {
            // Stop tears down the CNI network and the netns; remove lets the shim exit.
            try {
                stop_pod(pod.id());
                remove_pod(pod.id());
            } catch (...) {
            }
        }
    } catch (...) {
    }
}

uint64_t ContainerdFixture::sandbox_netns_inode(const std::string& id) {
    // TASK  PID  STATUS
    std::istringstream tasks(ctr({"tasks", "ls"}));
    for (std::string line; std::getline(tasks, line);) {
        std::istringstream f(line);
        std::string task;
        long pid = 0;
        if (f >> task >> pid && task == id) {
            struct stat st {};
            const std::string ns = "/proc/" + std::to_string(pid) + "/ns/net";
            if (::stat(ns.c_str(), &st) != 0) throw std::runtime_error("stat " + ns + ": " + std::strerror(errno));
            return st.st_ino;
        }
    }
    throw std::runtime_error("sandbox " + id + " has no task in `ctr tasks ls`");
}

}  // namespace pwru::test
