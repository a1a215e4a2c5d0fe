// X.509 material for the agent's mTLS tests, made with OpenSSL's API (no
// `openssl` binary needed): CAs, server and client certificates, including
// ones from another CA and already expired ones. PEM files in a directory.
//
//   TestCa ca(dir, "pwru-test-ca");
//   auto srv = ca.issue("server", {"DNS:localhost", "IP:127.0.0.1"});
//   auto alice = ca.issue("alice", {"URI:spiffe://test/alice"});
//   auto old = ca.issue("alice", {}, /*expired=*/true);
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace pwru::test {

struct CertFiles {
    std::string cert;  // PEM certificate
    std::string key;   // PEM private key (unencrypted)
};

class TestCa {
  public:
    // A self-signed CA (EC P-256) written to dir/NAME-ca.{crt,key}.
    TestCa(std::filesystem::path dir, const std::string& name);
    ~TestCa();
    TestCa(const TestCa&) = delete;
    TestCa& operator=(const TestCa&) = delete;

    const std::string& cert_path() const { return files_.cert; }

    // A leaf signed by this CA with subject CN=cn and the SAN entries given
    // ("DNS:x", "IP:1.2.3.4", "URI:..."); valid from an hour ago for a day,
    // or, with expired, from two days ago until yesterday. Throws on failure.
    CertFiles issue(const std::string& cn, const std::vector<std::string>& sans, bool expired = false);

  private:
    std::filesystem::path dir_;
    std::string name_;
    CertFiles files_;
    void* key_ = nullptr;   // EVP_PKEY*
    void* cert_ = nullptr;  // X509*
    int serial_ = 1;
};

}  // namespace pwru::test
