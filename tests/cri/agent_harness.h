// Driving a real pwru-agent from the cri tests: the binary started as a child
// (ready file -> port), an HTTPS client with or without a client certificate
// that reads the NDJSON stream line by line, and the kernel's own view of
// the BPF objects the agent holds.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/child_process.h"
#include "support/test_certs.h"

namespace pwru::test {

class AgentProcess {
public:
    // Starts PWRU_AGENT_BIN with `args` plus --listen 127.0.0.1:0 and a ready
    // file; waits (bounded) until it serves. Throws with its stderr if not.
    explicit AgentProcess(std::vector<std::string> args);
    int port() const { return port_; }
    pid_t pid() const { return child_->pid(); }
    ChildProcess& child() { return *child_; }

private:
    std::unique_ptr<ChildProcess> child_;
    int port_ = 0;
};

struct HttpReply {
    int status = 0;          // 0: no HTTP response at all (e.g. refused in the TLS handshake)
    std::string transport;   // httplib's error when status is 0
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

// IDs of the BPF links whose fds process `pid` holds (its fdinfo), and how
// many BPF objects (maps, programs, links) it holds at all.
std::set<uint32_t> bpf_links_held_by(pid_t pid);
size_t bpf_objects_held_by(pid_t pid);
// Whether the kernel still lists link `id` (BPF_LINK_GET_NEXT_ID).
bool kernel_has_link(uint32_t id);

}  // namespace pwru::test
