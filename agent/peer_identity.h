// The client's identity from its TLS certificate (mTLS): subject CN, then
// the SAN DNS and URI names. What agent/authz.h matches grants against.
#pragma once

#include <openssl/ssl.h>

#include "agent/authz.h"

namespace pwru::agent {

// Empty names when the connection carries no verified certificate.
ClientIdentity peer_identity(const SSL* ssl);

}  // namespace pwru::agent
