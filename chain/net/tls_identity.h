// TLS identity of a node: a self-signed certificate made in memory for the node key, and an
// SSL_CTX that speaks TLS 1.3 only with mutual authentication.
//
// Trust is by key pinning, not by certificate chains: the context accepts any peer certificate
// during the handshake, and the caller compares the peer's certificate key with the key it
// admits for that node (peer_public_key()). This is safe because in TLS 1.3 each side signs the
// handshake transcript with its certificate key (CertificateVerify) and the peer checks that
// signature, so a completed handshake proves the peer holds the private half of the key in its
// certificate; what the certificate says besides the key (names, dates, issuer) is not trusted
// and not needed. Session resumption is disabled, since a resumed session has no
// CertificateVerify.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string_view>

#include "chain/crypto/sign.h"
#include "chain/error.h"

namespace mchain::net {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// A TLS 1.3-only context (client and server) presenting a fresh self-signed certificate for
// `node_key` (subject CN = `common_name`, valid from a minute ago for `validity`), requiring a
// certificate from the peer, and leaving the key check to the caller.
Result<SslCtxPtr> make_tls_context(const crypto::PrivateKey& node_key, std::string_view common_name,
                                   std::chrono::seconds validity = std::chrono::hours(24));

// The key in the certificate the peer presented on `ssl` (after a completed handshake).
Result<crypto::PublicKey> peer_public_key(const SSL* ssl);

}  // namespace mchain::net
