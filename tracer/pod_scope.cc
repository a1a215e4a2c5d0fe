#include "tracer/pod_scope.h"

#include <arpa/inet.h>

#include <cstring>

namespace pwru {

Result<void> write_pod_scope(const std::optional<PodScope>& scope, pwru_config& cfg) {
    if (!scope) return {};
    if (scope->addrs.size() > PWRU_SCOPE_ADDRS)
        return bad_input("a pod scope takes at most " + std::to_string(PWRU_SCOPE_ADDRS) + " addresses, got " +
                         std::to_string(scope->addrs.size()));
    if (!scope->netns_inode && scope->addrs.empty())
        return bad_input("a pod scope needs a netns or at least one address");
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
