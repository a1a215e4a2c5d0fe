#include "agent/authz.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace pwru::agent {

std::string ClientIdentity::display() const {
    if (names.empty()) return "(no names in the certificate)";
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
}

Result<Authz> Authz::load(const std::string& path) {
    std::ifstream in(path);
    if (!in) return fail("cannot read the authorization config " + path + "; check --authz-config", errno);
    std::stringstream ss;
    ss << in.rdbuf();
    auto a = parse(ss.str());
    if (!a) return fail(path + ": " + a.error().what);
    return a;
}

Result<Authz> Authz::parse(const std::string& text) {
    using nlohmann::json;
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return bad_input("not valid JSON");
    if (!j.is_object() || !j.contains("clients") || !j["clients"].is_array())
        return bad_input("expected {\"clients\": [{\"identity\": ..., \"namespaces\": [...], \"node\": bool}]}");
    Authz a;
    size_t i = 0;
    for (const auto& c : j["clients"]) {
        std::string where = "clients[" + std::to_string(i++) + "]";
        if (!c.is_object() || !c.contains("identity") || !c["identity"].is_string() ||
            c["identity"].get<std::string>().empty())
            return bad_input(where + " needs a non-empty \"identity\" string");
        Grant g;
        g.identity = c["identity"].get<std::string>();
        if (c.contains("namespaces")) {
            if (!c["namespaces"].is_array()) return bad_input(where + ".namespaces must be an array of strings");
            for (const auto& n : c["namespaces"]) {
                if (!n.is_string()) return bad_input(where + ".namespaces must be an array of strings");
                g.namespaces.push_back(n.get<std::string>());
            }
        }
        if (c.contains("node")) {
            if (!c["node"].is_boolean()) return bad_input(where + ".node must be true or false");
            g.node = c["node"].get<bool>();
        }
        for (auto it = c.begin(); it != c.end(); ++it)
            if (it.key() != "identity" && it.key() != "namespaces" && it.key() != "node")
                return bad_input(where + ": unknown key \"" + it.key() + "\"");
        a.grants_.push_back(std::move(g));
    }
    return a;
}

bool Authz::may_trace_namespace(const ClientIdentity& who, const std::string& ns) const {
    for (const auto& g : grants_) {
        if (std::find(who.names.begin(), who.names.end(), g.identity) == who.names.end()) continue;
        for (const auto& n : g.namespaces)
            if (n == "*" || n == ns) return true;
    }
    return false;
}

bool Authz::may_trace_node(const ClientIdentity& who) const {
    for (const auto& g : grants_)
        if (g.node && std::find(who.names.begin(), who.names.end(), g.identity) != who.names.end()) return true;
    return false;
}

bool Authz::may_trace_anything(const ClientIdentity& who) const {
    for (const auto& g : grants_)
        if ((g.node || !g.namespaces.empty()) &&
            std::find(who.names.begin(), who.names.end(), g.identity) != who.names.end())
            return true;
    return false;
}

}  // namespace pwru::agent
