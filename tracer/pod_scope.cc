#include "tracer/pod_scope.h"

#include <arpa/inet.h>

#include <cstring>

namespace pwru {

Result<void> write_pod_scope(const std::optional<PodScope>& scope, pwru_config& cfg) {
    if (!scope) return {};
    if (scope->addrs.size() > PWRU_SCOPE_ADDRS)
        return bad_input("a pod scope takes at most " + std::to_string(PWRU_SCOPE_ADDRS) + " addresses, got " +
                         std::to_string(scope->addrs.size()));
    if (scope->ports.size() > PWRU_SCOPE_PORTS)
        return bad_input("a hostNetwork pod scope takes at most " + std::to_string(PWRU_SCOPE_PORTS) + " ports, got " +
                         std::to_string(scope->ports.size()) +
                         "; trace the node (node: true) with a port filter instead");
    if (!scope->netns_inode && scope->addrs.empty() && scope->ports.empty())
        return bad_input("a pod scope needs a netns, an address or a port");
    cfg.scope_nports = static_cast<__u8>(scope->ports.size());
    std::memset(cfg.scope_ports, 0, sizeof(cfg.scope_ports));
    for (size_t i = 0; i < scope->ports.size(); ++i) {
        cfg.scope_ports[i].port = scope->ports[i].port;
        cfg.scope_ports[i].l4 = scope->ports[i].l4;
    }
    cfg.scope_pod = 1;
    cfg.scope_netns = scope->netns_inode;
    std::memset(cfg.scope_addrs, 0, sizeof(cfg.scope_addrs));
    for (size_t i = 0; i < scope->addrs.size(); ++i) {
        pwru_scope_addr& a = cfg.scope_addrs[i];
        if (inet_pton(AF_INET, scope->addrs[i].c_str(), a.addr) == 1)
            a.l3 = 4;
        else if (inet_pton(AF_INET6, scope->addrs[i].c_str(), a.addr) == 1)
            a.l3 = 6;
        else
            return bad_input("pod address '" + scope->addrs[i] + "' is not an IPv4 or IPv6 address");
    }
    return {};
}

}  // namespace pwru
