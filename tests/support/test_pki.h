// Certificates made at test time (OpenSSL): a CA, certificates it signs
// (server with SANs, clients, an expired one) and an unrelated CA, as PEM.
#pragma once

#include <string>
#include <vector>

namespace pwru::test {

struct Pem {
    std::string cert, key;
};

class TestCa {
  public:
    explicit TestCa(const std::string& cn);
    ~TestCa();
    TestCa(const TestCa&) = delete;
    TestCa& operator=(const TestCa&) = delete;

    const std::string& cert_pem() const { return ca_.cert; }
    // sans: "DNS:localhost", "IP:127.0.0.1", "URI:spiffe://..."; valid from
    // now + not_before_s to now + not_after_s (negative both: expired).
    Pem issue(const std::string& cn, const std::vector<std::string>& sans = {}, long not_before_s = -60,
              long not_after_s = 3600) const;

  private:
    Pem ca_;
    void* key_ = nullptr;   // EVP_PKEY*
    void* cert_ = nullptr;  // X509*
};

}  // namespace pwru::test
