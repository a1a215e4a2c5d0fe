// kubectl-compatible API access: KUBECONFIG merging, overrides, the files a
// kubeconfig points to, in-cluster config, exec credential plugins, and the
// one-line errors for each way a kubeconfig can be wrong.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>

#include "kubectl-plugin/kubeconfig.h"
#include "support/test_files.h"

using namespace pwru::plugin;
using pwru::test::TempDir;

namespace {

void write(const std::filesystem::path& p, const std::string& text) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

// base64 of "CA-PEM" / "CERT-PEM" / "KEY-PEM"
constexpr const char* kCaB64 = "Q0EtUEVN";
constexpr const char* kCertB64 = "Q0VSVC1QRU0=";
constexpr const char* kKeyB64 = "S0VZLVBFTQ==";

std::string first_file() {
    return std::string(R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: )") +
           kCaB64 + R"(
- name: shared
  cluster:
    server: https://from-first:6443
contexts:
- name: dev
  context:
    cluster: dev-cluster
    user: dev-user
    namespace: team-a
users:
- name: dev-user
  user:
    client-certificate-data: )" +
           kCertB64 + R"(
    client-key-data: )" +
           kKeyB64 + "\n";
}

std::string second_file() {
    return R"(apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: shared
  cluster:
    server: https://from-second:6443
- name: prod-cluster
  cluster:
    server: https://10.0.0.2:6443
    certificate-authority: certs/ca.pem
contexts:
- name: prod
  context:
    cluster: prod-cluster
    user: prod-user
users:
- name: prod-user
  user:
    tokenFile: token.txt
)";
}

}  // namespace

TEST_CASE("KUBECONFIG is merged: the first file wins per name and for current-context", "[kubeconfig]") {
    TempDir dir;
    write(dir.path / "a.yaml", first_file());
    write(dir.path / "b/b.yaml", second_file());
    write(dir.path / "b/certs/ca.pem", "PROD-CA");
    write(dir.path / "b/token.txt", "sekret-token\n");
    KubeEnvironment env;
    env.kubeconfig_env = (dir.path / "a.yaml").string() + ":" + (dir.path / "missing.yaml").string() + ":" +
                         (dir.path / "b/b.yaml").string();

    auto a = load_api_access({}, env);
    REQUIRE(a);
    CHECK(a->context_name == "dev");
    CHECK(a->server == "https://10.0.0.1:6443");
    CHECK(a->ca_pem == "CA-PEM");
    CHECK(a->client_cert_pem == "CERT-PEM");
    CHECK(a->client_key_pem == "KEY-PEM");
    CHECK(a->ns == "team-a");

    SECTION("--context picks the second file's context; its relative paths resolve against its folder") {
        auto p = load_api_access({.context = "prod"}, env);
        REQUIRE(p);
        CHECK(p->server == "https://10.0.0.2:6443");
        CHECK(p->ca_pem == "PROD-CA");
        CHECK(p->bearer_token == "sekret-token");
        CHECK(p->ns == "default");
    }
    SECTION("--cluster overrides the context's cluster; the first definition of 'shared' wins") {
        auto p = load_api_access({.cluster = "shared"}, env);
        REQUIRE(p);
        CHECK(p->server == "https://from-first:6443");
        CHECK(p->client_cert_pem == "CERT-PEM");
    }
    SECTION("--user and -n override") {
        auto p = load_api_access({.user = "prod-user", .ns = "kube-system"}, env);
        REQUIRE(p);
        CHECK(p->bearer_token == "sekret-token");
        CHECK(p->client_cert_pem.empty());
        CHECK(p->ns == "kube-system");
    }
    SECTION("--kubeconfig reads that one file only") {
        auto p = load_api_access({.kubeconfig = (dir.path / "b/b.yaml").string()}, env);
        REQUIRE(p);
        CHECK(p->context_name == "prod");
    }
}

TEST_CASE("kubeconfig errors name the file and what to fix", "[kubeconfig]") {
    TempDir dir;
    KubeEnvironment env;
    SECTION("unknown context") {
        write(dir.path / "c.yaml", first_file());
        auto r = load_api_access({.kubeconfig = (dir.path / "c.yaml").string(), .context = "nope"}, env);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("context 'nope' is not in") != std::string::npos);
        CHECK(r.error().message().find("--context") != std::string::npos);
    }
    SECTION("not YAML") {
        write(dir.path / "bad.yaml", "clusters: [\n  - {name: x\n");
        auto r = load_api_access({.kubeconfig = (dir.path / "bad.yaml").string()}, env);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("is not valid YAML") != std::string::npos);
        CHECK(r.error().kind == pwru::ErrorKind::BadInput);
    }
    SECTION("a missing --kubeconfig file") {
        auto r = load_api_access({.kubeconfig = (dir.path / "absent.yaml").string()}, env);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("absent.yaml") != std::string::npos);
    }
    SECTION("a certificate without its key") {
        write(dir.path / "k.yaml", R"(current-context: c
clusters: [{name: cl, cluster: {server: "https://10.0.0.9:6443"}}]
contexts: [{name: c, context: {cluster: cl, user: u}}]
users: [{name: u, user: {client-certificate-data: Q0VSVC1QRU0=}}]
)");
        auto r = load_api_access({.kubeconfig = (dir.path / "k.yaml").string()}, env);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("without a key") != std::string::npos);
    }
    SECTION("a CA file that does not exist") {
        write(dir.path / "ca.yaml", R"(current-context: c
clusters: [{name: cl, cluster: {server: "https://10.0.0.9:6443", certificate-authority: nowhere/ca.crt}}]
contexts: [{name: c, context: {cluster: cl}}]
)");
        auto r = load_api_access({.kubeconfig = (dir.path / "ca.yaml").string()}, env);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("nowhere/ca.crt") != std::string::npos);
    }
    SECTION("nothing anywhere") {
        env.home = dir.path.string();
        auto r = load_api_access({}, env);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("--kubeconfig") != std::string::npos);
    }
}

TEST_CASE("in-cluster: the service account's token, CA and namespace", "[kubeconfig]") {
    TempDir dir;
    write(dir.path / "sa/token", "sa-token\n");
    write(dir.path / "sa/ca.crt", "SA-CA");
    write(dir.path / "sa/namespace", "pwru-system");
    KubeEnvironment env;
    env.home = (dir.path / "home").string();  // no ~/.kube/config there
    env.service_host = "10.96.0.1";
    env.service_port = "443";
    env.sa_dir = (dir.path / "sa").string();
    auto a = load_api_access({}, env);
    REQUIRE(a);
    CHECK(a->server == "https://10.96.0.1:443");
    CHECK(a->bearer_token == "sa-token");
    CHECK(a->ca_pem == "SA-CA");
    CHECK(a->ns == "pwru-system");
    CHECK(a->source == "in-cluster");
}

TEST_CASE("exec credential plugins (client.authentication.k8s.io/v1) are run and their token used", "[kubeconfig]") {
    TempDir dir;
    // A real plugin: a shell script that checks the exec info it is given.
    write(dir.path / "bin/cred.sh", R"(#!/bin/sh
case "$KUBERNETES_EXEC_INFO" in *'"apiVersion":"client.authentication.k8s.io/v1"'*) ;; *) echo "no exec info" >&2; exit 3;; esac
[ "$1" = "--cluster" ] || { echo "bad args: $*" >&2; exit 4; }
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s-%s"}}\n' "$2" "$CRED_SUFFIX"
)");
    ::chmod((dir.path / "bin/cred.sh").c_str(), 0755);
    write(dir.path / "fail.sh", "#!/bin/sh\necho 'login expired, run: cloud auth login' >&2\nexit 1\n");
    ::chmod((dir.path / "fail.sh").c_str(), 0755);
    write(dir.path / "kc.yaml", R"(current-context: c
clusters: [{name: cl, cluster: {server: "https://10.0.0.9:6443"}}]
contexts:
- {name: c, context: {cluster: cl, user: u}}
- {name: broken, context: {cluster: cl, user: broken}}
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./bin/cred.sh
      args: ["--cluster", "prod"]
      env: [{name: CRED_SUFFIX, value: ok}]
- name: broken
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: ./fail.sh}
)");
    KubeEnvironment env;
    auto a = load_api_access({.kubeconfig = (dir.path / "kc.yaml").string()}, env);
    REQUIRE(a);
    REQUIRE(a->exec);
    REQUIRE(resolve_credentials(*a));
    CHECK(a->bearer_token == "prod-ok");

    auto b = load_api_access({.kubeconfig = (dir.path / "kc.yaml").string(), .context = "broken"}, env);
    REQUIRE(b);
    auto r = resolve_credentials(*b);
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("login expired, run: cloud auth login") != std::string::npos);
}
