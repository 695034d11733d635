#include "chain/net/tls_identity.h"

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <string>

#include "chain/crypto/openssl_util.h"

namespace mchain::net {

namespace {

using crypto::detail::check;
using crypto::detail::OpensslPtr;
using X509Ptr = OpensslPtr<X509, &X509_free>;
using X509NamePtr = OpensslPtr<X509_NAME, &X509_NAME_free>;
using Asn1IntegerPtr = OpensslPtr<ASN1_INTEGER, &ASN1_INTEGER_free>;

// Chain verification of a self-signed certificate always fails; identity is decided by the key
// check after the handshake (see the header), so every certificate passes here.
int accept_any_certificate(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) { return 1; }

// The node key as an EVP_PKEY, through its PKCS#8 PEM (the key classes keep their handles
// private); the PEM copy is wiped afterwards.
crypto::detail::PkeyPtr load_private_key(const crypto::PrivateKey& key) {
  std::string pem = key.pem();
  crypto::detail::BioPtr bio = crypto::detail::memory_bio(pem);
  crypto::detail::PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  OPENSSL_cleanse(pem.data(), pem.size());
  check(pkey != nullptr, "reading the node key");
  return pkey;
}

X509Ptr self_signed(EVP_PKEY* pkey, crypto::SigAlg alg, std::string_view common_name,
                    std::chrono::seconds validity) {
  X509Ptr cert(X509_new());
  check(cert != nullptr, "X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");

  // A random positive serial, so two certificates of one key are never byte-identical.
  unsigned char serial_bytes[16];
  check(RAND_bytes(serial_bytes, sizeof serial_bytes) == 1, "RAND_bytes");
  serial_bytes[0] &= 0x7f;
  crypto::detail::BnPtr serial_bn(BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr));
  check(serial_bn != nullptr, "BN_bin2bn");
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(serial_bn.get(), nullptr));
  check(serial != nullptr && X509_set_serialNumber(cert.get(), serial.get()) == 1, "serial");

  // Clocks of peers may differ a little; dates are not trusted anyway.
  check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60) != nullptr, "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(validity.count())) !=
            nullptr,
        "notAfter");

  X509NamePtr name(X509_NAME_new());
  check(name != nullptr, "X509_NAME_new");
  check(X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(common_name.data()),
                                   static_cast<int>(common_name.size()), -1, 0) == 1,
        "certificate subject");
  check(X509_set_subject_name(cert.get(), name.get()) == 1, "X509_set_subject_name");
  check(X509_set_issuer_name(cert.get(), name.get()) == 1, "X509_set_issuer_name");
  check(X509_set_pubkey(cert.get(), pkey) == 1, "X509_set_pubkey");

  // Ed25519 signs the message itself: no separate digest.
  const EVP_MD* md = alg == crypto::SigAlg::ed25519 ? nullptr : crypto::detail::sha256_md();
  check(X509_sign(cert.get(), pkey, md) > 0, "signing the certificate");
  return cert;
}

SslCtxPtr build_context(const crypto::PrivateKey& node_key, std::string_view common_name,
                        std::chrono::seconds validity) {
  crypto::detail::PkeyPtr pkey = load_private_key(node_key);
  X509Ptr cert = self_signed(pkey.get(), node_key.alg(), common_name, validity);

  SslCtxPtr ctx(SSL_CTX_new(TLS_method()));
  check(ctx != nullptr, "SSL_CTX_new");
  check(SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) == 1, "TLS 1.3 minimum");
  check(SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION) == 1, "TLS 1.3 maximum");
  check(SSL_CTX_use_certificate(ctx.get(), cert.get()) == 1, "SSL_CTX_use_certificate");
  check(SSL_CTX_use_PrivateKey(ctx.get(), pkey.get()) == 1, "SSL_CTX_use_PrivateKey");
  check(SSL_CTX_check_private_key(ctx.get()) == 1, "certificate and key disagree");
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     &accept_any_certificate);
  // No resumption (see the header): no tickets, no session cache.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  check(SSL_CTX_set_num_tickets(ctx.get(), 0) == 1, "SSL_CTX_set_num_tickets");
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  return ctx;
}

}  // namespace

Result<SslCtxPtr> make_tls_context(const crypto::PrivateKey& node_key, std::string_view common_name,
                                   std::chrono::seconds validity) {
  try {
    return build_context(node_key, common_name, validity);
  } catch (const std::exception& e) {
    return fail(std::string("TLS identity: ") + e.what());
  }
}

Result<crypto::PublicKey> peer_public_key(const SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return fail("peer presented no certificate");
  EVP_PKEY* pkey = X509_get0_pubkey(cert);
  if (pkey == nullptr) {
    return fail(crypto::detail::openssl_error("peer certificate key unreadable"));
  }
  crypto::detail::BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), pkey) != 1) {
    return fail(crypto::detail::openssl_error("peer certificate key"));
  }
  auto key = crypto::PublicKey::from_pem(crypto::detail::bio_contents(bio.get()));
  if (!key) return fail("peer certificate key: " + key.error().message);
  return key;
}

}  // namespace mchain::net
