#include "chain/crypto/sign.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>

#include "chain/crypto/hash.h"
#include "chain/crypto/openssl_util.h"

namespace mchain::crypto {

namespace {

using detail::check;
using detail::OpensslError;

constexpr std::size_t kScalarSize = 32;
constexpr int kScalarBytes = static_cast<int>(kScalarSize);  // for BN_* length arguments
constexpr std::size_t kEcdsaSigSize = 2 * kScalarSize;
constexpr std::size_t kP256RawSize = 1 + kScalarSize;
constexpr std::size_t kEd25519RawSize = 32;
constexpr std::size_t kEd25519SigSize = 64;
// OpenSSL's name for P-256, as reported by OSSL_PKEY_PARAM_GROUP_NAME.
constexpr char kP256GroupName[] = "prime256v1";

using Scalar = std::array<std::uint8_t, kScalarSize>;

// The P-256 group order n and floor(n / 2), big-endian, taken from OpenSSL's curve table
// rather than transcribed by hand.
struct P256Order {
  Scalar n;
  Scalar half_n;
};

const P256Order& p256_order() {
  static const P256Order order = [] {
    detail::EcGroupPtr group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
    if (!group) detail::fatal("EC_GROUP_new_by_curve_name(P-256)");
    const BIGNUM* n = EC_GROUP_get0_order(group.get());
    P256Order o{};
    if (n == nullptr || BN_bn2binpad(n, o.n.data(), kScalarBytes) != kScalarBytes) {
      detail::fatal("P-256 group order");
    }
    unsigned carry = 0;
    for (std::size_t i = 0; i < kScalarSize; ++i) {
      o.half_n[i] = static_cast<std::uint8_t>((carry << 7) | (o.n[i] >> 1));
      carry = o.n[i] & 1u;
    }
    return o;
  }();
  return order;
}

// Big-endian comparisons and subtraction on 32-byte scalars (signature values are public, so
// these need not be constant time).
int compare(ByteView a, ByteView b) { return std::memcmp(a.data(), b.data(), kScalarSize); }

bool is_zero(ByteView a) {
  return std::all_of(a.begin(), a.end(), [](std::uint8_t b) { return b == 0; });
}

Scalar subtract(const Scalar& a, ByteView b) {
  Scalar out{};
  int borrow = 0;
  for (std::size_t i = kScalarSize; i-- > 0;) {
    int d = int{a[i]} - int{b[i]} - borrow;
    borrow = d < 0 ? 1 : 0;
    out[i] = static_cast<std::uint8_t>(d + (borrow << 8));
  }
  return out;
}

// The chain's encoding rules for r || s: both in [1, n-1] and s <= n/2.
bool ecdsa_scalars_acceptable(ByteView sig) {
  const P256Order& order = p256_order();
  ByteView r = sig.first(kScalarSize);
  ByteView s = sig.last(kScalarSize);
  return !is_zero(r) && compare(r, order.n) < 0 && !is_zero(s) && compare(s, order.half_n) <= 0;
}

std::string group_name(const EVP_PKEY* pkey) {
  char name[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) !=
      1) {
    detail::drain_openssl_errors();
    return {};
  }
  return std::string(name, len);
}

// Which of our algorithms an OpenSSL key belongs to; anything else is refused.
SigAlg classify(const EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "ED25519")) return SigAlg::ed25519;
  if (EVP_PKEY_is_a(pkey, "EC")) {
    std::string group = group_name(pkey);
    if (group == kP256GroupName) return SigAlg::ecdsa_p256_sha256;
    throw OpensslError("unsupported elliptic curve '" +
                       (group.empty() ? std::string("explicit parameters") : group) +
                       "' (only P-256 and Ed25519 keys are accepted)");
  }
  const char* type = EVP_PKEY_get0_type_name(pkey);
  throw OpensslError(std::string("unsupported key type '") + (type ? type : "unknown") +
                     "' (only P-256 and Ed25519 keys are accepted)");
}

Bytes p256_compressed_point(const EVP_PKEY* pkey) {
  const auto [x, y] = detail::p256_coordinates(pkey);
  Bytes out(kP256RawSize);
  out[0] = BN_is_odd(y.get()) ? 0x03 : 0x02;
  check(BN_bn2binpad(x.get(), out.data() + 1, kScalarBytes) == kScalarBytes,
        "encoding the P-256 public x coordinate");
  return out;
}

Bytes raw_public_key(SigAlg alg, const EVP_PKEY* pkey) {
  if (alg == SigAlg::ecdsa_p256_sha256) return p256_compressed_point(pkey);
  Bytes out(kEd25519RawSize);
  std::size_t len = out.size();
  check(EVP_PKEY_get_raw_public_key(pkey, out.data(), &len) == 1 && len == kEd25519RawSize,
        "reading the Ed25519 public key");
  return out;
}

detail::PkeyPtr p256_from_compressed(ByteView raw) {
  detail::ParamBldPtr bld(OSSL_PARAM_BLD_new());
  check(bld != nullptr, "OSSL_PARAM_BLD_new");
  check(OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, kP256GroupName, 0) ==
                1 &&
            OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, raw.data(),
                                             raw.size()) == 1,
        "building P-256 key parameters");
  detail::ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  check(params != nullptr, "OSSL_PARAM_BLD_to_param");

  detail::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  check(ctx != nullptr && EVP_PKEY_fromdata_init(ctx.get()) == 1, "EVP_PKEY_fromdata_init");
  EVP_PKEY* pkey_raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &pkey_raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    throw OpensslError(detail::openssl_error("P-256 public key is not a point on the curve"));
  }
  detail::PkeyPtr pkey(pkey_raw);
  // Decoding already checks the curve equation; this adds the point-at-infinity check and
  // guards against decoder leniency across OpenSSL versions.
  detail::PkeyCtxPtr check_ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  check(check_ctx != nullptr, "EVP_PKEY_CTX_new_from_pkey");
  if (EVP_PKEY_public_check_quick(check_ctx.get()) != 1) {
    throw OpensslError(detail::openssl_error("P-256 public key failed validation"));
  }
  return pkey;
}

// Parsed PEM block; the DER is wiped on destruction since it may hold a private key.
struct PemBlock {
  std::string label;
  Bytes der;

  PemBlock() = default;
  PemBlock(const PemBlock&) = delete;
  PemBlock& operator=(const PemBlock&) = delete;
  ~PemBlock() {
    if (!der.empty()) OPENSSL_cleanse(der.data(), der.size());
  }
};

struct ClearFree {
  std::size_t len = 0;
  void operator()(unsigned char* p) const noexcept { OPENSSL_clear_free(p, len); }
};

// Reads the first PEM block of `pem`. Encrypted (legacy "Proc-Type") blocks are refused.
void read_pem(std::string_view pem, PemBlock& block) {
  detail::BioPtr bio = detail::memory_bio(pem);
  char* name_raw = nullptr;
  char* header_raw = nullptr;
  unsigned char* data_raw = nullptr;
  long len = 0;
  if (PEM_read_bio(bio.get(), &name_raw, &header_raw, &data_raw, &len) != 1) {
    unsigned long err = ERR_peek_last_error();
    if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
      detail::drain_openssl_errors();
      throw OpensslError("not a PEM document (no '-----BEGIN' line found)");
    }
    throw OpensslError(detail::openssl_error("malformed PEM"));
  }
  detail::OpensslBuffer<char> name(name_raw);
  detail::OpensslBuffer<char> header(header_raw);
  std::unique_ptr<unsigned char, ClearFree> data(data_raw,
                                                 ClearFree{static_cast<std::size_t>(len)});
  if (header && header.get()[0] != '\0') {
    throw OpensslError("encrypted or annotated PEM (with headers) is not supported");
  }
  block.label = name ? name.get() : "";
  block.der.assign(data.get(), data.get() + len);
}

void require_label(const PemBlock& block, std::string_view expected, std::string_view what) {
  if (block.label == expected) return;
  std::string message = "expected a " + std::string(what) + " PEM block ('-----BEGIN " +
                        std::string(expected) + "-----'), found '" + block.label + "'";
  if (block.label == "ENCRYPTED PRIVATE KEY") {
    message += "; encrypted private keys are not supported";
  } else if (block.label == "EC PRIVATE KEY") {
    message += "; convert it with 'openssl pkcs8 -topk8 -nocrypt'";
  }
  throw OpensslError(message);
}

void require_all_consumed(const unsigned char* p, const PemBlock& block, std::string_view what) {
  if (p != block.der.data() + block.der.size()) {
    throw OpensslError(std::string(what) + " has trailing data after the DER structure");
  }
}

Bytes sign_message(SigAlg alg, EVP_PKEY* pkey, ByteView message) {
  detail::MdCtxPtr ctx(EVP_MD_CTX_new());
  check(ctx != nullptr, "EVP_MD_CTX_new");
  // Ed25519 is used in its pure form, which takes no separate digest.
  const char* md = alg == SigAlg::ecdsa_p256_sha256 ? "SHA2-256" : nullptr;
  check(EVP_DigestSignInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, pkey, nullptr) == 1,
        "EVP_DigestSignInit_ex");
  std::size_t len = 0;
  check(EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) == 1,
        "EVP_DigestSign (size)");
  Bytes sig(len);
  check(EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) == 1,
        "EVP_DigestSign");
  sig.resize(len);
  if (alg == SigAlg::ed25519) {
    check(sig.size() == kEd25519SigSize, "Ed25519 signature length");
    return sig;
  }

  // DER -> r || s, then low-s: of the two valid encodings (r, s) and (r, n - s) keep the one
  // with s <= n/2, so each signature has exactly one accepted form.
  const unsigned char* p = sig.data();
  detail::EcdsaSigPtr parsed(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
  check(parsed != nullptr, "d2i_ECDSA_SIG");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(parsed.get(), &r, &s);
  Bytes out(kEcdsaSigSize);
  check(BN_bn2binpad(r, out.data(), kScalarBytes) == kScalarBytes &&
            BN_bn2binpad(s, out.data() + kScalarSize, kScalarBytes) == kScalarBytes,
        "encoding ECDSA r || s");
  const P256Order& order = p256_order();
  std::span<std::uint8_t> s_bytes(out.data() + kScalarSize, kScalarSize);
  if (compare(s_bytes, order.half_n) > 0) {
    Scalar low = subtract(order.n, s_bytes);
    std::copy(low.begin(), low.end(), s_bytes.begin());
  }
  check(ecdsa_scalars_acceptable(out), "ECDSA signature out of range");
  return out;
}

// r || s -> DER for OpenSSL; the caller has range-checked both halves.
Bytes ecdsa_der(ByteView raw) {
  detail::BnPtr r(BN_bin2bn(raw.data(), kScalarBytes, nullptr));
  detail::BnPtr s(BN_bin2bn(raw.data() + kScalarSize, kScalarBytes, nullptr));
  detail::EcdsaSigPtr sig(ECDSA_SIG_new());
  check(r && s && sig, "allocating ECDSA_SIG");
  check(ECDSA_SIG_set0(sig.get(), r.get(), s.get()) == 1, "ECDSA_SIG_set0");
  // ECDSA_SIG owns r and s now.
  static_cast<void>(r.release());
  static_cast<void>(s.release());
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  check(len > 0, "i2d_ECDSA_SIG (size)");
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  check(i2d_ECDSA_SIG(sig.get(), &p) == len, "i2d_ECDSA_SIG");
  return der;
}

}  // namespace

std::string_view to_string(SigAlg alg) {
  switch (alg) {
    case SigAlg::ecdsa_p256_sha256: return "ecdsa-p256-sha256";
    case SigAlg::ed25519: return "ed25519";
  }
  return "unknown";
}

std::optional<SigAlg> sig_alg_from_string(std::string_view name) {
  if (name == "ecdsa-p256-sha256") return SigAlg::ecdsa_p256_sha256;
  if (name == "ed25519") return SigAlg::ed25519;
  return std::nullopt;
}

std::optional<SigAlg> sig_alg_from_code(std::uint64_t code) {
  if (code == static_cast<std::uint64_t>(SigAlg::ecdsa_p256_sha256)) {
    return SigAlg::ecdsa_p256_sha256;
  }
  if (code == static_cast<std::uint64_t>(SigAlg::ed25519)) return SigAlg::ed25519;
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// PublicKey

struct PublicKey::Handle {
  detail::PkeyPtr pkey;
};

PublicKey::PublicKey(SigAlg alg, Bytes raw, std::shared_ptr<Handle> handle)
    : alg_(alg), raw_(std::move(raw)), handle_(std::move(handle)) {}
PublicKey::PublicKey(const PublicKey&) = default;
PublicKey& PublicKey::operator=(const PublicKey&) = default;
PublicKey::PublicKey(PublicKey&&) noexcept = default;
PublicKey& PublicKey::operator=(PublicKey&&) noexcept = default;
PublicKey::~PublicKey() = default;

Result<PublicKey> PublicKey::from_raw(SigAlg alg, ByteView raw) {
  try {
    detail::PkeyPtr pkey;
    switch (alg) {
      case SigAlg::ecdsa_p256_sha256: {
        if (raw.size() != kP256RawSize) {
          return fail("P-256 public key must be a " + std::to_string(kP256RawSize) +
                      "-byte compressed point, got " + std::to_string(raw.size()) + " bytes");
        }
        if (raw[0] != 0x02 && raw[0] != 0x03) {
          return fail("P-256 public key must be a compressed point (prefix 02 or 03)");
        }
        pkey = p256_from_compressed(raw);
        // One key, one encoding: the fingerprint depends on the exact bytes.
        if (p256_compressed_point(pkey.get()) != Bytes(raw.begin(), raw.end())) {
          return fail("P-256 public key is not canonically encoded");
        }
        break;
      }
      case SigAlg::ed25519:
        if (raw.size() != kEd25519RawSize) {
          return fail("Ed25519 public key must be " + std::to_string(kEd25519RawSize) +
                      " bytes, got " + std::to_string(raw.size()));
        }
        pkey.reset(
            EVP_PKEY_new_raw_public_key_ex(nullptr, "ED25519", nullptr, raw.data(), raw.size()));
        check(pkey != nullptr, "importing the Ed25519 public key");
        break;
      default:
        return fail("unknown signature algorithm code " +
                    std::to_string(static_cast<unsigned>(alg)));
    }
    auto handle = std::make_shared<Handle>(Handle{std::move(pkey)});
    return PublicKey(alg, Bytes(raw.begin(), raw.end()), std::move(handle));
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

Result<PublicKey> PublicKey::from_pem(std::string_view pem) {
  try {
    PemBlock block;
    read_pem(pem, block);
    require_label(block, "PUBLIC KEY", "public key (SubjectPublicKeyInfo)");
    const unsigned char* p = block.der.data();
    detail::PkeyPtr pkey(
        d2i_PUBKEY_ex(nullptr, &p, static_cast<long>(block.der.size()), nullptr, nullptr));
    if (!pkey) throw OpensslError(detail::openssl_error("malformed SubjectPublicKeyInfo"));
    require_all_consumed(p, block, "public key");
    SigAlg alg = classify(pkey.get());
    // Rebuild from the raw form so every PublicKey passes the same validation.
    return from_raw(alg, raw_public_key(alg, pkey.get()));
  } catch (const std::exception& e) {
    return fail(std::string("public key PEM: ") + e.what());
  }
}

std::string PublicKey::pem() const {
  if (!handle_) return {};  // moved-from
  return detail::or_abort("PublicKey::pem", [&] {
    detail::BioPtr bio(BIO_new(BIO_s_mem()));
    check(bio != nullptr, "BIO_new");
    check(PEM_write_bio_PUBKEY(bio.get(), handle_->pkey.get()) == 1, "PEM_write_bio_PUBKEY");
    return detail::bio_contents(bio.get());
  });
}

Hash256 PublicKey::fingerprint() const {
  // raw_ is at most 33 bytes (a compressed P-256 point), so the input fits on the stack.
  std::array<std::uint8_t, 1 + kP256RawSize> input{};
  std::size_t n = std::min(raw_.size(), kP256RawSize);
  input[0] = static_cast<std::uint8_t>(alg_);
  std::copy_n(raw_.begin(), n, input.begin() + 1);
  return sha256(ByteView(input.data(), 1 + n));
}

bool PublicKey::verify(ByteView message, const Signature& signature) const {
  if (!handle_ || signature.alg != alg_) return false;
  try {
    Bytes der;
    ByteView sig = signature.bytes;
    const char* md = nullptr;
    if (alg_ == SigAlg::ecdsa_p256_sha256) {
      if (sig.size() != kEcdsaSigSize || !ecdsa_scalars_acceptable(sig)) return false;
      der = ecdsa_der(sig);
      sig = der;
      md = "SHA2-256";
    } else if (sig.size() != kEd25519SigSize) {
      return false;
    }
    // A context per call: the shared EVP_PKEY is only read, so concurrent verifies are safe.
    detail::MdCtxPtr ctx(EVP_MD_CTX_new());
    check(ctx != nullptr, "EVP_MD_CTX_new");
    check(EVP_DigestVerifyInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, handle_->pkey.get(),
                                  nullptr) == 1,
          "EVP_DigestVerifyInit_ex");
    bool ok =
        EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size()) == 1;
    // A rejected signature leaves entries that would otherwise surface in unrelated errors.
    if (!ok) detail::drain_openssl_errors();
    return ok;
  } catch (const std::exception&) {
    detail::drain_openssl_errors();
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// PrivateKey

struct PrivateKey::Handle {
  detail::PkeyPtr pkey;
};

PrivateKey::PrivateKey(std::unique_ptr<Handle> handle, PublicKey public_key)
    : handle_(std::move(handle)), public_key_(std::move(public_key)) {}
PrivateKey::PrivateKey(PrivateKey&&) noexcept = default;
PrivateKey& PrivateKey::operator=(PrivateKey&&) noexcept = default;
PrivateKey::~PrivateKey() = default;

Result<PrivateKey> PrivateKey::generate(SigAlg alg) {
  try {
    const char* type = nullptr;
    switch (alg) {
      case SigAlg::ecdsa_p256_sha256: type = "EC"; break;
      case SigAlg::ed25519: type = "ED25519"; break;
      default:
        return fail("unknown signature algorithm code " +
                    std::to_string(static_cast<unsigned>(alg)));
    }
    detail::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    check(ctx != nullptr && EVP_PKEY_keygen_init(ctx.get()) == 1, "EVP_PKEY_keygen_init");
    if (alg == SigAlg::ecdsa_p256_sha256) {
      check(EVP_PKEY_CTX_set_group_name(ctx.get(), kP256GroupName) == 1, "selecting curve P-256");
    }
    EVP_PKEY* pkey_raw = nullptr;
    check(EVP_PKEY_generate(ctx.get(), &pkey_raw) == 1, "EVP_PKEY_generate");
    detail::PkeyPtr pkey(pkey_raw);
    auto public_key = PublicKey::from_raw(alg, raw_public_key(alg, pkey.get()));
    if (!public_key) return std::unexpected(public_key.error());
    return PrivateKey(std::make_unique<Handle>(Handle{std::move(pkey)}), std::move(*public_key));
  } catch (const std::exception& e) {
    return fail(std::string("generating a ") + std::string(to_string(alg)) + " key: " + e.what());
  }
}

Result<PrivateKey> PrivateKey::from_pem(std::string_view pem) {
  try {
    PemBlock block;
    read_pem(pem, block);
    require_label(block, "PRIVATE KEY", "PKCS#8 private key");
    const unsigned char* p = block.der.data();
    detail::Pkcs8Ptr p8(d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(block.der.size())));
    if (!p8) throw OpensslError(detail::openssl_error("malformed PKCS#8 PrivateKeyInfo"));
    require_all_consumed(p, block, "private key");
    detail::PkeyPtr pkey(EVP_PKCS82PKEY_ex(p8.get(), nullptr, nullptr));
    if (!pkey) throw OpensslError(detail::openssl_error("unreadable PKCS#8 private key"));
    SigAlg alg = classify(pkey.get());
    // A file whose embedded public key disagrees with its private key would sign with one
    // key while advertising another.
    detail::PkeyCtxPtr check_ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
    check(check_ctx != nullptr, "EVP_PKEY_CTX_new_from_pkey");
    if (EVP_PKEY_pairwise_check(check_ctx.get()) != 1) {
      throw OpensslError(detail::openssl_error("private and public key do not match"));
    }
    auto public_key = PublicKey::from_raw(alg, raw_public_key(alg, pkey.get()));
    if (!public_key) throw OpensslError(public_key.error().message);
    return PrivateKey(std::make_unique<Handle>(Handle{std::move(pkey)}), std::move(*public_key));
  } catch (const std::exception& e) {
    return fail(std::string("private key PEM: ") + e.what());
  }
}

Result<Signature> PrivateKey::sign(ByteView message) const {
  if (!handle_) return fail("signing with a moved-from private key");
  try {
    return Signature{alg(), sign_message(alg(), handle_->pkey.get(), message)};
  } catch (const std::exception& e) {
    return fail(std::string("signing with ") + std::string(to_string(alg())) + ": " + e.what());
  }
}

std::string PrivateKey::pem() const {
  if (!handle_) return {};  // moved-from
  return detail::or_abort("PrivateKey::pem", [&] {
    // A secure-memory BIO wipes the encoded key when freed.
    detail::BioPtr bio(BIO_new(BIO_s_secmem()));
    check(bio != nullptr, "BIO_new");
    check(PEM_write_bio_PKCS8PrivateKey(bio.get(), handle_->pkey.get(), nullptr, nullptr, 0,
                                        nullptr, nullptr) == 1,
          "PEM_write_bio_PKCS8PrivateKey");
    return detail::bio_contents(bio.get());
  });
}

}  // namespace mchain::crypto
