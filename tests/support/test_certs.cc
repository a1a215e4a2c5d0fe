#include "support/test_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <stdexcept>

namespace pwru::test {
namespace {

EVP_PKEY* new_key() {
    EVP_PKEY* k = EVP_EC_gen("P-256");
    if (!k) throw std::runtime_error("EVP_EC_gen failed");
    return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) throw std::runtime_error("bad X.509 extension " + value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

X509* new_cert(const std::string& cn, EVP_PKEY* key, int serial, long from_s, long until_s) {
    X509* c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
    X509_gmtime_adj(X509_getm_notBefore(c), from_s);
    X509_gmtime_adj(X509_getm_notAfter(c), until_s);
    X509_set_pubkey(c, key);
    X509_NAME* name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    return c;
}

void write_pem(const std::string& path, X509* cert, EVP_PKEY* key) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + path);
    bool ok =
        cert ? PEM_write_X509(f, cert) == 1 : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    std::fclose(f);
    if (!ok) throw std::runtime_error("cannot write PEM " + path);
}

}  // namespace

TestCa::TestCa(std::filesystem::path dir, const std::string& name) : dir_(std::move(dir)), name_(name) {
    EVP_PKEY* key = new_key();
    X509* cert = new_cert(name, key, serial_++, -3600, 7 * 86400);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(cert, cert, NID_subject_key_identifier, "hash");
    if (!X509_sign(cert, key, EVP_sha256())) throw std::runtime_error("cannot sign the CA");
    key_ = key;
    cert_ = cert;
    files_ = {(dir_ / (name + "-ca.crt")).string(), (dir_ / (name + "-ca.key")).string()};
    write_pem(files_.cert, cert, nullptr);
    write_pem(files_.key, nullptr, key);
}

TestCa::~TestCa() {
    X509_free(static_cast<X509*>(cert_));
    EVP_PKEY_free(static_cast<EVP_PKEY*>(key_));
}

CertFiles TestCa::issue(const std::string& cn, const std::vector<std::string>& sans, bool expired) {
    auto* ca_cert = static_cast<X509*>(cert_);
    EVP_PKEY* key = new_key();
    X509* cert =
        expired ? new_cert(cn, key, serial_++, -2 * 86400, -86400) : new_cert(cn, key, serial_++, -3600, 86400);
    X509_set_issuer_name(cert, X509_get_subject_name(ca_cert));
    add_ext(cert, ca_cert, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert, ca_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(cert, ca_cert, NID_ext_key_usage, "serverAuth,clientAuth");
    add_ext(cert, ca_cert, NID_authority_key_identifier, "keyid:always");
    if (!sans.empty()) {
        std::string list;
        for (const auto& s : sans) list += (list.empty() ? "" : ",") + s;
        add_ext(cert, ca_cert, NID_subject_alt_name, list);
    }
    if (!X509_sign(cert, static_cast<EVP_PKEY*>(key_), EVP_sha256())) throw std::runtime_error("cannot sign " + cn);
    std::string base =
        (dir_ / (name_ + "-" + cn + (expired ? "-expired" : "") + "-" + std::to_string(serial_))).string();
    CertFiles f{base + ".crt", base + ".key"};
    write_pem(f.cert, cert, nullptr);
    write_pem(f.key, nullptr, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    return f;
}

}  // namespace pwru::test
