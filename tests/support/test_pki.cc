#include "support/test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <stdexcept>

namespace pwru::test {
namespace {

std::atomic<long> next_serial{1000};

std::string pem_of_cert(X509* c) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, c);
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string out(data, size_t(n));
    BIO_free(b);
    return out;
}

std::string pem_of_key(EVP_PKEY* k) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string out(data, size_t(n));
    BIO_free(b);
    return out;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) throw std::runtime_error("bad extension " + value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

X509* make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, bool is_ca,
                const std::vector<std::string>& sans, long not_before_s, long not_after_s) {
    X509* c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), next_serial++);
    X509_gmtime_adj(X509_getm_notBefore(c), not_before_s);
    X509_gmtime_adj(X509_getm_notAfter(c), not_after_s);
    X509_set_pubkey(c, key);
    X509_NAME* name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
    X509* iss = issuer ? issuer : c;
    if (is_ca) {
        add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(c, iss, NID_ext_key_usage, "serverAuth,clientAuth");
        std::string san;
        for (const auto& s : sans) san += (san.empty() ? "" : ",") + s;
        if (!san.empty()) add_ext(c, iss, NID_subject_alt_name, san);
    }
    X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256());
    return c;
}

}  // namespace

TestCa::TestCa(const std::string& cn) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = make_cert(cn, key, nullptr, nullptr, true, {}, -3600, 86400);
    ca_ = {pem_of_cert(cert), pem_of_key(key)};
    key_ = key;
    cert_ = cert;
}

TestCa::~TestCa() {
    X509_free(static_cast<X509*>(cert_));
    EVP_PKEY_free(static_cast<EVP_PKEY*>(key_));
}

Pem TestCa::issue(const std::string& cn, const std::vector<std::string>& sans, long not_before_s,
                  long not_after_s) const {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* c = make_cert(cn, key, static_cast<X509*>(cert_), static_cast<EVP_PKEY*>(key_), false, sans, not_before_s,
                        not_after_s);
    Pem out{pem_of_cert(c), pem_of_key(key)};
    X509_free(c);
    EVP_PKEY_free(key);
    return out;
}

}  // namespace pwru::test
