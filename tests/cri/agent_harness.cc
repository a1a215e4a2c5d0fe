#include "cri/agent_harness.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <catch2/catch.hpp>
#include <httplib.h>

namespace fs = std::filesystem;
using nlohmann::json;

namespace pwru::test {

long rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

size_t fd_count(pid_t pid) {
    size_t n = 0;
    for (auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) n += !e.path().empty();
    return n;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int connect_from(const char* source, int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &src.sin_addr);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<uint16_t>(port));
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

std::string tls_exchange(int port, const AgentCerts& certs, const CertFiles& who, const std::string& request,
                         std::chrono::seconds timeout) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_use_certificate_chain_file(ctx, who.cert.c_str());
    SSL_CTX_use_PrivateKey_file(ctx, who.key.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_load_verify_locations(ctx, certs.ca.cert_path().c_str(), nullptr);
    int fd = connect_from("127.0.0.1", port);
    std::string out;
    if (fd >= 0) {
        timeval tv{static_cast<time_t>(timeout.count()), 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        SSL* ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) == 1 && SSL_write(ssl, request.data(), static_cast<int>(request.size())) > 0) {
            char buf[4096];
            const auto end = std::chrono::steady_clock::now() + timeout;
            for (int n; std::chrono::steady_clock::now() < end && (n = SSL_read(ssl, buf, sizeof buf)) > 0;)
                out.append(buf, static_cast<size_t>(n));
        }
        SSL_free(ssl);
        ::close(fd);
    }
    SSL_CTX_free(ctx);
    return out;
}

AgentProcess::AgentProcess(std::vector<std::string> args, const std::string& netns_path) {
    // The ready file lives in a dir we own until the child exists.
    char tmpl[] = "/tmp/pwru-agent-ready-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    fs::path ready = fs::path(tmpl) / "port";
    std::vector<std::string> argv{PWRU_AGENT_BIN, "--listen", "127.0.0.1:0", "--ready-file", ready.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildOptions options;
    options.netns_path = netns_path;
    child_ = std::make_unique<ChildProcess>(argv, options);
    bool up = child_->wait_for_file(ready, std::chrono::seconds(60));
    std::string text = read_file_text(ready);
    fs::remove_all(tmpl);
    if (!up) throw std::runtime_error("pwru-agent did not start: " + child_->stderr_text());
    port_ = std::stoi(text);
}

json HttpReply::json() const { return json::parse(body, nullptr, false); }

namespace {

std::unique_ptr<httplib::SSLClient> client_for(int port, const std::string& ca, const CertFiles* client) {
    // A refused handshake or a hang-up makes OpenSSL write to a closed
    // socket: an EPIPE for the client to report, not a signal killing the tests.
    ::signal(SIGPIPE, SIG_IGN);
    auto c = client ? std::make_unique<httplib::SSLClient>("127.0.0.1", port, client->cert, client->key)
                    : std::make_unique<httplib::SSLClient>("127.0.0.1", port);
    c->set_ca_cert_path(ca.c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(10);
    c->set_read_timeout(60);
    return c;
}

}  // namespace

HttpReply post_trace(int port, const std::string& ca, const CertFiles* client, const nlohmann::json& body,
                     const LineFn& on_line) {
    auto c = client_for(port, ca, client);
    HttpReply reply;
    std::string pending;
    bool hung_up = false;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/trace";
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        reply.body.append(data, n);
        pending.append(data, n);
        for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
            auto j = json::parse(pending.substr(0, nl), nullptr, false);
            pending.erase(0, nl + 1);
            reply.lines.push_back(j);
            if (on_line && !on_line(j)) {
                hung_up = true;
                return false;
            }
        }
        return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    bool ok = c->send(req, res, err);
    if (ok || hung_up) reply.status = res.status;
    if (!ok && !hung_up) reply.transport = httplib::to_string(err);
    return reply;
}

HttpReply get(int port, const std::string& ca, const CertFiles* client, const std::string& path) {
    auto c = client_for(port, ca, client);
    HttpReply reply;
    auto res = c->Get(path.c_str());
    if (!res) {
        reply.transport = httplib::to_string(res.error());
        return reply;
    }
    reply.status = res->status;
    reply.body = res->body;
    return reply;
}

std::vector<json> of_type(const HttpReply& r, const std::string& type) {
    std::vector<json> out;
    for (const auto& l : r.lines)
        if (l.value("type", "") == type) out.push_back(l);
    return out;
}

AgentCerts::AgentCerts() {
    // alice: the default namespace and the node; bob (by SAN): "other" only.
    std::ofstream(authz) << R"({"clients":[
        {"identity":"spiffe://test/alice","namespaces":["default"],"node":true},
        {"identity":"bob.example","namespaces":["other"]}]})";
}

std::vector<std::string> kernel_scope_args(const AgentCerts& certs) {
    auto args = certs.agent_args(kNoCri);
    args.insert(args.end(), {"--node-scope", "kernel"});
    return args;
}

std::vector<std::string> AgentCerts::agent_args(const std::string& cri_socket, const std::string& node) const {
    return {"--tls-cert",     server.cert, "--tls-key",    server.key, "--client-ca", ca.cert_path(),
            "--authz-config", authz,       "--cri-socket", cri_socket, "--node-name", node};
}

TraceCall::TraceCall(int port, const std::string& ca, const CertFiles& who, json body, LineFn extra,
                     std::string netns_path) {
    fut_ = std::async(std::launch::async, [=, this] {
        // std::async's own thread: entering the agent's netns moves only it.
        if (!netns_path.empty()) {
            int fd = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
                if (fd >= 0) ::close(fd);
                HttpReply r;
                r.transport = "cannot enter " + netns_path;
                return r;
            }
            ::close(fd);
        }
        return post_trace(port, ca, &who, body, [this, extra](const json& j) {
            if (j.value("type", "") == "start") started_ = true;
            return extra ? extra(j) : true;
        });
    });
}

bool TraceCall::wait_started(std::chrono::seconds timeout) {
    for (auto end = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < end;) {
        if (started_) return true;
        if (fut_.wait_for(std::chrono::milliseconds(20)) == std::future_status::ready) return started_;
    }
    return started_;
}

HttpReply TraceCall::result(std::chrono::seconds timeout) {
    REQUIRE(fut_.wait_for(timeout) == std::future_status::ready);
    return fut_.get();
}

std::set<uint32_t> bpf_links_held_by(pid_t pid) {
    std::set<uint32_t> ids;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fdinfo", ec)) {
        std::ifstream in(e.path());
        std::string line;
        while (std::getline(in, line))
            if (line.rfind("link_id:", 0) == 0) ids.insert(static_cast<uint32_t>(std::stoul(line.substr(8))));
    }
    return ids;
}

size_t bpf_objects_held_by(pid_t pid) {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
        std::string target = fs::read_symlink(e.path(), ec).string();
        if (!ec && target.rfind("anon_inode:bpf", 0) == 0) ++n;
    }
    return n;
}

bool kernel_has_link(uint32_t id) {
    uint32_t next = 0;
    // Bounded: the kernel hands out each ID once per walk.
    for (int i = 0; i < 1'000'000 && bpf_link_get_next_id(next, &next) == 0; ++i)
        if (next == id) return true;
    return false;
}

}  // namespace pwru::test
