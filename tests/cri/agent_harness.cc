#include "cri/agent_harness.h"

#include <bpf/bpf.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <httplib.h>

namespace fs = std::filesystem;
using nlohmann::json;

namespace pwru::test {

AgentProcess::AgentProcess(std::vector<std::string> args) {
    // The ready file lives in a dir we own until the child exists.
    char tmpl[] = "/tmp/pwru-agent-ready-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    fs::path ready = fs::path(tmpl) / "port";
    std::vector<std::string> argv{PWRU_AGENT_BIN, "--listen", "127.0.0.1:0", "--ready-file", ready.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    child_ = std::make_unique<ChildProcess>(argv);
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
