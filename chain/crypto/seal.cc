#include "chain/crypto/seal.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "chain/crypto/hash.h"
#include "chain/crypto/openssl_util.h"
#include "chain/crypto/seal_internal.h"

namespace mchain::crypto {

namespace {

using detail::check;
using detail::OpensslError;

constexpr char kP256GroupName[] = "prime256v1";
constexpr std::size_t kCoordinateSize = 32;
constexpr int kCoordinateBytes = static_cast<int>(kCoordinateSize);  // for BN_* lengths
constexpr std::uint8_t kUncompressedPrefix = 0x04;
constexpr std::string_view kInfoLabel = "mchain seal v1";
constexpr std::size_t kHkdfMaxLength = 255 * 32;
constexpr char kNeedsP256[] = "sealing needs a P-256 node key";

using SecretBnPtr = detail::OpensslPtr<BIGNUM, &BN_clear_free>;

// Wipes a buffer that held key material when the scope ends, on every path out.
template <class Buffer>
class WipeOnExit {
 public:
  explicit WipeOnExit(Buffer& buffer) : buffer_(buffer) {}
  ~WipeOnExit() {
    if (!buffer_.empty()) OPENSSL_cleanse(buffer_.data(), buffer_.size());
  }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  Buffer& buffer_;
};

// Builds an EVP_PKEY of type EC on P-256 from `bld`'s parameters.
detail::PkeyPtr p256_from_params(OSSL_PARAM_BLD* bld, int selection, std::string_view what) {
  check(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, kP256GroupName, 0) == 1,
        "building P-256 key parameters");
  detail::ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  check(params != nullptr, "OSSL_PARAM_BLD_to_param");
  detail::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  check(ctx != nullptr && EVP_PKEY_fromdata_init(ctx.get()) == 1, "EVP_PKEY_fromdata_init");
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, selection, params.get()) != 1) {
    throw OpensslError(detail::openssl_error(what));
  }
  return detail::PkeyPtr(raw);
}

// A P-256 public key from an encoded point. The decoder refuses a point that is not on the
// curve; the full public check then runs as well (on-curve, not infinity, in range, order n),
// so that this guarantee does not rest on one decoder's strictness across OpenSSL versions:
// an off-curve point would leak bits of the recipient's key through ECDH (invalid-curve attack).
detail::PkeyPtr p256_public_from_point(ByteView point, std::string_view what) {
  detail::ParamBldPtr bld(OSSL_PARAM_BLD_new());
  check(bld != nullptr, "OSSL_PARAM_BLD_new");
  check(OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size()) == 1,
        "building P-256 key parameters");
  const std::string not_on_curve = std::string(what) + " is not a point on P-256";
  detail::PkeyPtr pkey = p256_from_params(bld.get(), EVP_PKEY_PUBLIC_KEY, not_on_curve);
  detail::PkeyCtxPtr check_ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  check(check_ctx != nullptr, "EVP_PKEY_CTX_new_from_pkey");
  if (EVP_PKEY_public_check(check_ctx.get()) != 1) {
    throw OpensslError(detail::openssl_error(not_on_curve));
  }
  return pkey;
}

// 0x04 || x || y of a P-256 key.
Bytes uncompressed_point(const EVP_PKEY* pkey) {
  const auto [x, y] = detail::p256_coordinates(pkey);
  Bytes out(kSealPointSize);
  out[0] = kUncompressedPrefix;
  check(BN_bn2binpad(x.get(), out.data() + 1, kCoordinateBytes) == kCoordinateBytes &&
            BN_bn2binpad(y.get(), out.data() + 1 + kCoordinateSize, kCoordinateBytes) ==
                kCoordinateBytes,
        "encoding a P-256 point");
  return out;
}

// The node key's public point (the key's own encoding is the compressed one).
detail::PkeyPtr p256_public_from_key(const PublicKey& key) {
  // PublicKey::from_raw validated the point already; this only rebuilds the OpenSSL object.
  return p256_public_from_point(key.raw(), "the recipient key");
}

// The node key as an EVP_PKEY, through its PKCS#8 PEM (the key classes keep their handles to
// themselves, as tls_identity.cc also finds); the PEM copy is wiped afterwards.
detail::PkeyPtr p256_private_from_key(const PrivateKey& key) {
  std::string pem = key.pem();
  WipeOnExit wipe(pem);
  detail::BioPtr bio = detail::memory_bio(pem);
  detail::PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  check(pkey != nullptr, "reading the recipient's private key");
  return pkey;
}

detail::PkeyPtr p256_private_from_scalar(ByteView scalar) {
  if (scalar.size() != kCoordinateSize) {
    throw OpensslError("a P-256 private scalar is 32 bytes, got " + std::to_string(scalar.size()));
  }
  SecretBnPtr d(BN_secure_new());
  check(d != nullptr && BN_bin2bn(scalar.data(), kCoordinateBytes, d.get()) != nullptr,
        "reading the private scalar");
  detail::ParamBldPtr bld(OSSL_PARAM_BLD_new());
  check(bld != nullptr, "OSSL_PARAM_BLD_new");
  check(OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get()) == 1,
        "building P-256 key parameters");
  detail::PkeyPtr pkey =
      p256_from_params(bld.get(), EVP_PKEY_KEYPAIR, "the private scalar is not a P-256 key");
  detail::PkeyCtxPtr check_ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  check(check_ctx != nullptr, "EVP_PKEY_CTX_new_from_pkey");
  if (EVP_PKEY_private_check(check_ctx.get()) != 1) {
    throw OpensslError(detail::openssl_error("the private scalar is not in [1, n-1]"));
  }
  return pkey;
}

detail::PkeyPtr p256_generate() {
  detail::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  check(ctx != nullptr && EVP_PKEY_keygen_init(ctx.get()) == 1, "EVP_PKEY_keygen_init");
  check(EVP_PKEY_CTX_set_group_name(ctx.get(), kP256GroupName) == 1, "selecting curve P-256");
  EVP_PKEY* raw = nullptr;
  check(EVP_PKEY_generate(ctx.get(), &raw) == 1, "generating the ephemeral P-256 key");
  return detail::PkeyPtr(raw);
}

// ECDH: the x coordinate of own·peer. The peer key is validated once more by OpenSSL here.
Bytes derive(EVP_PKEY* own, EVP_PKEY* peer) {
  detail::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, own, nullptr));
  check(ctx != nullptr && EVP_PKEY_derive_init(ctx.get()) == 1, "EVP_PKEY_derive_init");
  check(EVP_PKEY_derive_set_peer_ex(ctx.get(), peer, 1) == 1, "ECDH: the peer key is unusable");
  std::size_t length = 0;
  check(EVP_PKEY_derive(ctx.get(), nullptr, &length) == 1, "EVP_PKEY_derive (size)");
  Bytes secret(length);
  check(EVP_PKEY_derive(ctx.get(), secret.data(), &length) == 1 && length == kCoordinateSize,
        "EVP_PKEY_derive");
  secret.resize(length);
  return secret;
}

Bytes hkdf(ByteView ikm, ByteView salt, ByteView info, std::size_t length) {
  if (ikm.empty()) throw OpensslError("HKDF: empty input key material");
  if (length == 0 || length > kHkdfMaxLength) {
    throw OpensslError("HKDF-SHA256: output length must be within [1, 8160], got " +
                       std::to_string(length));
  }
  detail::KdfCtxPtr ctx(EVP_KDF_CTX_new(detail::hkdf_kdf()));
  check(ctx != nullptr, "EVP_KDF_CTX_new");
  // OpenSSL copies every parameter; the const_casts only satisfy the OSSL_PARAM types.
  // An empty salt or info is left out: OpenSSL then uses the RFC's defaults (HashLen zero bytes,
  // no info), which is what an empty one means.
  std::array<OSSL_PARAM, 5> params{};
  std::size_t n = 0;
  params[n++] =
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA2-256"), 0);
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(ikm.data()), ikm.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, const_cast<std::uint8_t*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_INFO, const_cast<std::uint8_t*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();
  Bytes out(length);
  check(EVP_KDF_derive(ctx.get(), out.data(), out.size(), params.data()) == 1, "HKDF-SHA256");
  return out;
}

AeadKey derive_seal_key(ByteView shared_secret, ByteView ephemeral_point,
                        ByteView recipient_point) {
  if (ephemeral_point.size() != kSealPointSize || recipient_point.size() != kSealPointSize) {
    throw OpensslError("seal key: points must be uncompressed (65 bytes)");
  }
  Bytes info;
  info.reserve(kInfoLabel.size() + 2 * kSealPointSize);
  const ByteView label = as_bytes(kInfoLabel);
  info.insert(info.end(), label.begin(), label.end());
  info.insert(info.end(), ephemeral_point.begin(), ephemeral_point.end());
  info.insert(info.end(), recipient_point.begin(), recipient_point.end());
  Bytes okm = hkdf(shared_secret, {}, info, kAeadKeySize);
  WipeOnExit wipe(okm);
  AeadKey key;
  std::copy(okm.begin(), okm.end(), key.begin());
  return key;
}

bool is_p256(const PublicKey& key) { return key.alg() == SigAlg::ecdsa_p256_sha256; }

}  // namespace

Result<Bytes> seal(const PublicKey& recipient, ByteView plaintext, ByteView aad) {
  if (!is_p256(recipient)) return fail(kNeedsP256);
  try {
    detail::PkeyPtr recipient_key = p256_public_from_key(recipient);
    const Bytes recipient_point = uncompressed_point(recipient_key.get());
    detail::PkeyPtr ephemeral = p256_generate();
    const Bytes ephemeral_point = uncompressed_point(ephemeral.get());
    Bytes shared = derive(ephemeral.get(), recipient_key.get());
    WipeOnExit wipe_shared(shared);
    AeadKey key = derive_seal_key(shared, ephemeral_point, recipient_point);
    WipeOnExit wipe_key(key);
    const AeadNonce nonce = random_aead_nonce();
    const Bytes ciphertext = aes256gcm_seal(key, nonce, aad, plaintext);

    Bytes out;
    out.reserve(kSealOverhead + plaintext.size());
    out.push_back(kSealVersion);
    out.insert(out.end(), ephemeral_point.begin(), ephemeral_point.end());
    out.insert(out.end(), nonce.begin(), nonce.end());
    out.insert(out.end(), ciphertext.begin(), ciphertext.end());
    return out;
  } catch (const std::exception& e) {
    return fail(std::string("seal: ") + e.what());
  }
}

Result<Bytes> open_sealed(const PrivateKey& recipient, ByteView sealed, ByteView aad) {
  if (!is_p256(recipient.public_key())) return fail(kNeedsP256);
  if (sealed.size() < kSealOverhead) {
    return fail("sealed message of " + std::to_string(sealed.size()) +
                " bytes is shorter than the " + std::to_string(kSealOverhead) +
                " bytes every sealed message has");
  }
  if (sealed[0] != kSealVersion) {
    return fail("sealed message of version " + std::to_string(sealed[0]) +
                " (this build opens version " + std::to_string(kSealVersion) + ")");
  }
  const ByteView ephemeral_point = sealed.subspan(1, kSealPointSize);
  AeadNonce nonce;
  std::copy_n(sealed.begin() + 1 + kSealPointSize, kAeadNonceSize, nonce.begin());
  const ByteView ciphertext = sealed.subspan(1 + kSealPointSize + kAeadNonceSize);
  // Only the uncompressed form is written; refusing the others keeps one encoding per message.
  if (ephemeral_point[0] != kUncompressedPrefix) {
    return fail("sealed message: the ephemeral key is not an uncompressed point");
  }
  try {
    detail::PkeyPtr ephemeral = p256_public_from_point(ephemeral_point, "the ephemeral key");
    detail::PkeyPtr own = p256_private_from_key(recipient);
    const Bytes recipient_point =
        uncompressed_point(p256_public_from_key(recipient.public_key()).get());
    Bytes shared = derive(own.get(), ephemeral.get());
    WipeOnExit wipe_shared(shared);
    AeadKey key = derive_seal_key(shared, ephemeral_point, recipient_point);
    WipeOnExit wipe_key(key);
    auto opened = aes256gcm_open(key, nonce, aad, ciphertext);
    if (!opened) {
      // One message for every cause: which one it was is no business of whoever sent it.
      return fail(
          "sealed message does not open: sealed to another key, different associated data, or "
          "modified");
    }
    return opened;
  } catch (const std::exception& e) {
    return fail(std::string("sealed message: ") + e.what());
  }
}

Result<Bytes> hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length) {
  try {
    return hkdf(ikm, salt, info, length);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

namespace detail {

Result<Bytes> ecdh_p256(ByteView private_scalar, ByteView peer_point) {
  try {
    if (peer_point.size() != kSealPointSize || peer_point[0] != kUncompressedPrefix) {
      return fail("ECDH: the peer key must be an uncompressed P-256 point (65 bytes)");
    }
    PkeyPtr own = p256_private_from_scalar(private_scalar);
    PkeyPtr peer = p256_public_from_point(peer_point, "the peer key");
    return derive(own.get(), peer.get());
  } catch (const std::exception& e) {
    return fail(std::string("ECDH: ") + e.what());
  }
}

Result<AeadKey> seal_key(ByteView shared_secret, ByteView ephemeral_point,
                         ByteView recipient_point) {
  try {
    return derive_seal_key(shared_secret, ephemeral_point, recipient_point);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace detail

}  // namespace mchain::crypto
