// Driving a real pwru-agent from the cri tests: the binary started as a child
// (ready file -> port), an HTTPS client with or without a client certificate
// that reads the NDJSON stream line by line, and the kernel's own view of
// the BPF objects the agent holds.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/child_process.h"
#include "support/test_certs.h"
#include "support/test_files.h"

namespace pwru::test {

// A CRI socket path that does not exist: an agent that serves without pods.
inline constexpr const char* kNoCri = "/nonexistent/pwru-test-cri.sock";

// What a test reads of the agent process: resident memory in KiB (VmRSS, -1
// if unreadable) and open descriptors.
long rss_kib(pid_t pid);
size_t fd_count(pid_t pid);
double seconds_since(std::chrono::steady_clock::time_point t);

// A TCP connection to 127.0.0.1:port from `source` (127.0.0.x); -1 if refused.
int connect_from(const char* source, int port);

struct AgentCerts;
// One raw request over mTLS as `who`, written at once; everything the agent
// sent until it closed, bounded by `timeout`: for what httplib's client will
// not send (pipelining, HTTP/1.0, unknown methods, huge heads).
std::string tls_exchange(int port, const AgentCerts& certs, const CertFiles& who, const std::string& request,
                         std::chrono::seconds timeout);

class AgentProcess {
  public:
    // Starts PWRU_AGENT_BIN with `args` plus --listen 127.0.0.1:0 and a ready
    // file; waits (bounded) until it serves. Throws with its stderr if not.
    // With netns_path, the agent runs in that network namespace (a node's,
    // as hostNetwork), and clients must connect from inside it (in_netns).
    explicit AgentProcess(std::vector<std::string> args, const std::string& netns_path = "");
    int port() const { return port_; }
    pid_t pid() const { return child_->pid(); }
    ChildProcess& child() { return *child_; }

  private:
    std::unique_ptr<ChildProcess> child_;
    int port_ = 0;
};

struct HttpReply {
    int status = 0;         // 0: no HTTP response at all (e.g. refused in the TLS handshake)
    std::string transport;  // httplib's error when status is 0
    std::string body;
    std::vector<nlohmann::json> lines;  // the body's NDJSON lines
    nlohmann::json json() const;        // the body as one JSON document (error replies)
};

// A line handler returning false hangs up mid-stream.
using LineFn = std::function<bool(const nlohmann::json&)>;

// POST /v1/trace as `client` (nullptr: no client certificate), trusting ca.
HttpReply post_trace(int port, const std::string& ca, const CertFiles* client, const nlohmann::json& body,
                     const LineFn& on_line = nullptr);
HttpReply get(int port, const std::string& ca, const CertFiles* client, const std::string& path);

// The records of one type ("event", "start", "loss", ...) of a stream.
std::vector<nlohmann::json> of_type(const HttpReply& r, const std::string& type);

// One CA with the agent's server certificate and the clients the agent tests
// use: alice (namespace default and the node), bob (namespace other only),
// and alice's certificate from another CA and expired.
struct AgentCerts {
    TempDir dir{"pwru-agent-certs"};
    TestCa ca{dir.path, "agent"};
    TestCa rogue{dir.path, "rogue"};
    CertFiles server = ca.issue("pwru-agent", {"DNS:localhost", "IP:127.0.0.1"});
    CertFiles alice = ca.issue("alice", {"URI:spiffe://test/alice"});
    CertFiles bob = ca.issue("bob", {"DNS:bob.example"});
    CertFiles alice_from_rogue = rogue.issue("alice", {});
    CertFiles alice_expired = ca.issue("alice", {}, /*expired=*/true);
    std::string authz = (dir.path / "authz.json").string();
    AgentCerts();
    // The agent's flags for these certificates and authz file, on `cri_socket`.
    std::vector<std::string> agent_args(const std::string& cri_socket, const std::string& node = "test-node") const;
};

// AgentCerts::agent_args(kNoCri) plus --node-scope kernel: an agent without
// pods that traces the whole kernel (node traces of loopback traffic).
std::vector<std::string> kernel_scope_args(const AgentCerts& certs);

// A trace running on its own thread (from inside `netns_path` when given, for
// an agent running there); wait_started() returns once the "start" line came.
class TraceCall {
  public:
    TraceCall(int port, const std::string& ca, const CertFiles& who, nlohmann::json body, LineFn extra = nullptr,
              std::string netns_path = "");
    bool wait_started(std::chrono::seconds timeout);
    // The whole reply (fails the test when it does not come within `timeout`).
    HttpReply result(std::chrono::seconds timeout);

  private:
    std::atomic<bool> started_{false};
    std::future<HttpReply> fut_;
};

// IDs of the BPF links whose fds process `pid` holds (its fdinfo), and how
// many BPF objects (maps, programs, links) it holds at all.
std::set<uint32_t> bpf_links_held_by(pid_t pid);
size_t bpf_objects_held_by(pid_t pid);
// Whether the kernel still lists link `id` (BPF_LINK_GET_NEXT_ID).
bool kernel_has_link(uint32_t id);

}  // namespace pwru::test
