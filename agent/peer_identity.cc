#include "agent/peer_identity.h"

#include <openssl/x509v3.h>

#include <memory>

namespace pwru::agent {

ClientIdentity peer_identity(const SSL* ssl) {
    ClientIdentity id;
    if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK) return id;
    std::unique_ptr<X509, void (*)(X509*)> cert(SSL_get1_peer_certificate(ssl), X509_free);
    if (!cert) return id;

    X509_NAME* subject = X509_get_subject_name(cert.get());
    int idx = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
    if (idx >= 0) {
        ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
        unsigned char* utf8 = nullptr;
        int len = ASN1_STRING_to_UTF8(&utf8, data);
        if (len > 0) id.names.emplace_back(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
        OPENSSL_free(utf8);
    }
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
    if (sans) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
            const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
            const ASN1_IA5STRING* s = nullptr;
            if (gn->type == GEN_DNS) s = gn->d.dNSName;
            if (gn->type == GEN_URI) s = gn->d.uniformResourceIdentifier;
            if (s)
                id.names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                      static_cast<size_t>(ASN1_STRING_length(s)));
        }
        GENERAL_NAMES_free(sans);
    }
    return id;
}

}  // namespace pwru::agent
