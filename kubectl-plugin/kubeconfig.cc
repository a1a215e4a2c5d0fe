#include "kubectl-plugin/kubeconfig.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace fs = std::filesystem;

namespace pwru::plugin {
namespace {

std::string env_or_empty(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

Result<std::string> read_file(const std::string& path, const std::string& what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail("cannot read " + what + " '" + path + "'", errno);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// kubeconfig "-data" fields are base64 of the PEM.
Result<std::string> base64_decode(const std::string& in, const std::string& what) {
    static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    int val = 0, bits = -8;
    for (char c : in) {
        if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
        auto pos = chars.find(c);
        if (pos == std::string::npos) return bad_input(what + " is not valid base64");
        val = (val << 6) + int(pos);
        bits += 6;
        if (bits >= 0) {
            out.push_back(char((val >> bits) & 0xff));
            bits -= 8;
        }
    }
    return out;
}

// One named entry (cluster, user or context) and the file it came from:
// relative paths in it are relative to that file's folder.
struct Named {
    YAML::Node body;
    std::string file;
};

struct Merged {
    std::map<std::string, Named> clusters, users, contexts;
    std::string current_context;
    std::vector<std::string> files;
};

Result<void> merge_file(const std::string& path, Merged& m) {
    YAML::Node doc;
    try {
        doc = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
        return fail("cannot read kubeconfig '" + path + "'", errno ? errno : ENOENT);
    } catch (const YAML::Exception& e) {
        return bad_input("kubeconfig '" + path + "' is not valid YAML: " + e.what() +
                         "; fix the file or point --kubeconfig elsewhere");
    }
    m.files.push_back(path);
    if (!doc || doc.IsNull()) return {};
    if (!doc.IsMap()) return bad_input("kubeconfig '" + path + "' is not a YAML mapping");
    auto take = [&](const char* section, const char* inner, std::map<std::string, Named>& into) -> Result<void> {
        YAML::Node list = doc[section];
        if (!list || list.IsNull()) return {};
        if (!list.IsSequence()) return bad_input("kubeconfig '" + path + "': '" + section + "' is not a list");
        for (const auto& item : list) {
            if (!item.IsMap() || !item["name"])
                return bad_input("kubeconfig '" + path + "': an entry of '" + section + "' has no name");
            std::string name = item["name"].as<std::string>();
            // The first file to define a name wins (kubectl's merge rule).
            if (!into.contains(name))
                into[name] = Named{item[inner] ? item[inner] : YAML::Node(YAML::NodeType::Map), path};
        }
        return {};
    };
    try {
        if (auto r = take("clusters", "cluster", m.clusters); !r) return r;
        if (auto r = take("users", "user", m.users); !r) return r;
        if (auto r = take("contexts", "context", m.contexts); !r) return r;
        if (m.current_context.empty() && doc["current-context"] && doc["current-context"].IsScalar())
            m.current_context = doc["current-context"].as<std::string>();
    } catch (const YAML::Exception& e) {
        return bad_input("kubeconfig '" + path + "': " + e.what());
    }
    return {};
}

std::string str(const YAML::Node& n, const char* key) {
    YAML::Node v = n[key];
    return v && v.IsScalar() ? v.as<std::string>() : "";
}

std::string resolve_path(const std::string& p, const std::string& from_file) {
    if (p.empty() || fs::path(p).is_absolute()) return p;
    return (fs::path(from_file).parent_path() / p).string();
}

// "<field>-data" (base64) or "<field>" (a file path), as kubectl reads them.
Result<std::string> pem_field(const Named& n, const std::string& field, const std::string& what) {
    std::string data = str(n.body, (field + "-data").c_str());
    if (!data.empty()) return base64_decode(data, what + " (" + field + "-data in " + n.file + ")");
    std::string path = str(n.body, field.c_str());
    if (path.empty()) return std::string();
    return read_file(resolve_path(path, n.file), what);
}

Result<ApiAccess> in_cluster(const KubeEnvironment& env) {
    ApiAccess a;
    std::string host = env.service_host;
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    a.server = "https://" + host + ":" + (env.service_port.empty() ? "443" : env.service_port);
    auto token = read_file(env.sa_dir + "/token", "service account token");
    if (!token) return std::unexpected(token.error());
    a.bearer_token = *token;
    while (!a.bearer_token.empty() && std::isspace(static_cast<unsigned char>(a.bearer_token.back())))
        a.bearer_token.pop_back();
    auto ca = read_file(env.sa_dir + "/ca.crt", "service account CA");
    if (!ca) return std::unexpected(ca.error());
    a.ca_pem = *ca;
    if (auto ns = read_file(env.sa_dir + "/namespace", "service account namespace"); ns && !ns->empty()) {
        a.ns = *ns;
        while (!a.ns.empty() && std::isspace(static_cast<unsigned char>(a.ns.back()))) a.ns.pop_back();
    }
    a.context_name = "in-cluster";
    a.source = "in-cluster";
    return a;
}

}  // namespace

KubeEnvironment KubeEnvironment::from_process() {
    KubeEnvironment e;
    e.kubeconfig_env = env_or_empty("KUBECONFIG");
    e.home = env_or_empty("HOME");
    e.service_host = env_or_empty("KUBERNETES_SERVICE_HOST");
    e.service_port = env_or_empty("KUBERNETES_SERVICE_PORT");
    return e;
}

Result<ApiAccess> load_api_access(const KubeconfigFlags& flags, const KubeEnvironment& env) {
    Merged m;
    if (!flags.kubeconfig.empty()) {
        if (auto r = merge_file(flags.kubeconfig, m); !r) return std::unexpected(r.error());
    } else if (!env.kubeconfig_env.empty()) {
        std::stringstream ss(env.kubeconfig_env);
        std::string part;
        while (std::getline(ss, part, ':')) {
            if (part.empty() || !fs::exists(part)) continue;  // kubectl skips missing entries
            if (auto r = merge_file(part, m); !r) return std::unexpected(r.error());
        }
    } else if (!env.home.empty() && fs::exists(env.home + "/.kube/config")) {
        if (auto r = merge_file(env.home + "/.kube/config", m); !r) return std::unexpected(r.error());
    }

    if (m.files.empty()) {
        if (!env.service_host.empty() && fs::exists(env.sa_dir + "/token")) {
            auto a = in_cluster(env);
            if (a && !flags.ns.empty()) a->ns = flags.ns;
            return a;
        }
        return bad_input(
            "no kubeconfig found (looked at $KUBECONFIG, ~/.kube/config and the in-cluster "
            "service account); pass --kubeconfig FILE");
    }
    std::string sources;
    for (const auto& f : m.files) sources += (sources.empty() ? "" : ":") + f;

    ApiAccess a;
    a.source = sources;
    a.context_name = flags.context.empty() ? m.current_context : flags.context;
    std::string cluster_name = flags.cluster, user_name = flags.user;
    if (!a.context_name.empty()) {
        auto it = m.contexts.find(a.context_name);
        if (it == m.contexts.end())
            return bad_input("context '" + a.context_name + "' is not in " + sources + "; pick one with --context");
        if (cluster_name.empty()) cluster_name = str(it->second.body, "cluster");
        if (user_name.empty()) user_name = str(it->second.body, "user");
        if (std::string ns = str(it->second.body, "namespace"); !ns.empty()) a.ns = ns;
    } else if (cluster_name.empty()) {
        return bad_input("no current-context in " + sources + "; pass --context NAME");
    }
    if (!flags.ns.empty()) a.ns = flags.ns;

    auto cl = m.clusters.find(cluster_name);
    if (cluster_name.empty() || cl == m.clusters.end())
        return bad_input("cluster '" + cluster_name + "' (of context '" + a.context_name + "') is not in " + sources);
    a.server = str(cl->second.body, "server");
    if (a.server.empty()) return bad_input("cluster '" + cluster_name + "' in " + cl->second.file + " has no server");
    a.insecure_skip_tls_verify = str(cl->second.body, "insecure-skip-tls-verify") == "true";
    a.tls_server_name = str(cl->second.body, "tls-server-name");
    auto ca = pem_field(cl->second, "certificate-authority", "the CA of cluster '" + cluster_name + "'");
    if (!ca) return std::unexpected(ca.error());
    a.ca_pem = *ca;

    if (user_name.empty()) return a;  // anonymous
    auto us = m.users.find(user_name);
    if (us == m.users.end()) return bad_input("user '" + user_name + "' is not in " + sources);
    const Named& u = us->second;
    auto cert = pem_field(u, "client-certificate", "the client certificate of user '" + user_name + "'");
    if (!cert) return std::unexpected(cert.error());
    auto key = pem_field(u, "client-key", "the client key of user '" + user_name + "'");
    if (!key) return std::unexpected(key.error());
    if (cert->empty() != key->empty())
        return bad_input("user '" + user_name + "' in " + u.file +
                         " has a client certificate without a key or "
                         "a key without a certificate");
    a.client_cert_pem = *cert;
    a.client_key_pem = *key;
    a.bearer_token = str(u.body, "token");
    if (a.bearer_token.empty()) {
        if (std::string tf = str(u.body, "tokenFile"); !tf.empty()) {
            auto t = read_file(resolve_path(tf, u.file), "the token file of user '" + user_name + "'");
            if (!t) return std::unexpected(t.error());
            a.bearer_token = *t;
            while (!a.bearer_token.empty() && std::isspace(static_cast<unsigned char>(a.bearer_token.back())))
                a.bearer_token.pop_back();
        }
    }
    if (YAML::Node ex = u.body["exec"]; ex && ex.IsMap()) {
        ExecCredentialConfig e;
        e.api_version = str(ex, "apiVersion");
        e.command = str(ex, "command");
        e.base_dir = fs::path(u.file).parent_path().string();
        if (e.command.empty()) return bad_input("user '" + user_name + "' in " + u.file + ": exec has no command");
        if (YAML::Node args = ex["args"]; args && args.IsSequence())
            for (const auto& x : args) e.args.push_back(x.as<std::string>());
        if (YAML::Node envs = ex["env"]; envs && envs.IsSequence())
            for (const auto& x : envs) e.env.emplace_back(str(x, "name"), str(x, "value"));
        a.exec = std::move(e);
    }
    if (YAML::Node ap = u.body["auth-provider"]; ap && ap.IsMap())
        return bad_input("user '" + user_name + "' uses the removed auth-provider '" + str(ap, "name") +
                         "'; switch to its exec credential plugin (e.g. gke-gcloud-auth-plugin, kubelogin)");
    return a;
}

namespace {

// Runs argv with extra environment, returns stdout; stderr goes into errors.
Result<std::string> run_capture(const std::vector<std::string>& argv,
                                const std::vector<std::pair<std::string, std::string>>& env, int timeout_ms) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0) return fail("pipe", errno);
    if (pipe2(err, O_CLOEXEC) != 0) {
        close(out[0]);
        close(out[1]);
        return fail("pipe", errno);
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        return fail("fork", e);
    }
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
        std::vector<char*> args;
        for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    std::string stdout_text, stderr_text;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    bool timed_out = false;
    while (open_fds > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        if (poll(fds, 2, int(left.count())) < 0 && errno != EINTR) break;
        for (auto& p : fds) {
            if (p.fd < 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t n = read(p.fd, buf, sizeof buf);
            if (n > 0) {
                (p.fd == out[0] ? stdout_text : stderr_text).append(buf, size_t(n));
            } else {
                close(p.fd);
                p.fd = -1;
                --open_fds;
            }
        }
    }
    for (auto& p : fds)
        if (p.fd >= 0) close(p.fd);
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (timed_out)
        return fail("the credential plugin '" + argv[0] + "' did not answer within " +
                    std::to_string(timeout_ms / 1000) + " s");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && stdout_text.empty())
        return fail("cannot run the credential plugin '" + argv[0] + "'; is it installed and on PATH?");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::string first = stderr_text.substr(0, stderr_text.find('\n'));
        return fail("the credential plugin '" + argv[0] + "' failed" + (first.empty() ? "" : ": " + first));
    }
    return stdout_text;
}

}  // namespace

Result<void> resolve_credentials(ApiAccess& access, int timeout_ms) {
    if (!access.exec) return {};
    const ExecCredentialConfig& e = *access.exec;
    std::string api = e.api_version.empty() ? "client.authentication.k8s.io/v1" : e.api_version;
    std::vector<std::string> argv{e.command};
    if (e.command.find('/') != std::string::npos && !fs::path(e.command).is_absolute())
        argv[0] = (fs::path(e.base_dir) / e.command).string();
    argv.insert(argv.end(), e.args.begin(), e.args.end());
    auto env = e.env;
    nlohmann::json info = {{"apiVersion", api}, {"kind", "ExecCredential"}, {"spec", {{"interactive", false}}}};
    env.emplace_back("KUBERNETES_EXEC_INFO", info.dump());
    auto out = run_capture(argv, env, timeout_ms);
    if (!out) return std::unexpected(out.error());
    nlohmann::json cred = nlohmann::json::parse(*out, nullptr, false);
    if (cred.is_discarded() || !cred.is_object() || !cred.contains("status"))
        return fail("the credential plugin '" + e.command + "' did not print an ExecCredential with a status");
    const auto& st = cred["status"];
    access.bearer_token = st.value("token", "");
    std::string cert = st.value("clientCertificateData", ""), key = st.value("clientKeyData", "");
    if (!cert.empty() || !key.empty()) {
        if (cert.empty() || key.empty())
            return fail("the credential plugin '" + e.command + "' returned a client certificate without a key");
        access.client_cert_pem = cert;
        access.client_key_pem = key;
    }
    if (access.bearer_token.empty() && access.client_cert_pem.empty())
        return fail("the credential plugin '" + e.command + "' returned neither a token nor a client certificate");
    return {};
}

}  // namespace pwru::plugin
