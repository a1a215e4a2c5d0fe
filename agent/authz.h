// Who may trace what, per client identity (mTLS): a JSON file mapping
// certificate identities (subject CN, SAN DNS or URI names) to namespaces
// and to the node-wide right. See docs/agent-api.md for the format:
//
//   {"clients": [
//     {"identity": "kubectl-pwru-alice", "namespaces": ["default", "shop"]},
//     {"identity": "spiffe://cluster/ns/ops/sa/relay", "namespaces": ["*"], "node": true}
//   ]}
#pragma once

#include <string>
#include <vector>

#include "tracer/util/result.h"

namespace pwru::agent {

// A client's names from its certificate: CN first, then SAN DNS and URI names.
struct ClientIdentity {
    std::vector<std::string> names;
    std::string display() const;  // "CN=..., SAN=..." for messages and logs
};

struct Grant {
    std::string identity;
    std::vector<std::string> namespaces;  // "*": every namespace
    bool node = false;                    // may trace the whole node
};

class Authz {
  public:
    // Reads and checks the file; an error names the file and the problem.
    static Result<Authz> load(const std::string& path);
    static Result<Authz> parse(const std::string& json_text);

    // Any of the identity's names holding a grant for `ns` (or "*").
    bool may_trace_namespace(const ClientIdentity& who, const std::string& ns) const;
    bool may_trace_node(const ClientIdentity& who) const;
    // Whether the identity holds any grant at all: without one it is refused
    // before its request body is read.
    bool may_trace_anything(const ClientIdentity& who) const;

    const std::vector<Grant>& grants() const { return grants_; }

  private:
    std::vector<Grant> grants_;
};

}  // namespace pwru::agent
