#include "chain/encoding/fields.h"

namespace mchain::cbor {

namespace {
// Both of our algorithms encode signatures in 64 bytes and keys in at most 33.
constexpr std::size_t kMaxSignatureBytes = 64;
constexpr std::size_t kMaxPublicKeyBytes = 64;
}  // namespace

void expect_version(Reader& r, std::string_view field, std::uint64_t expected,
                    std::string_view what) {
  const std::size_t at = r.offset();
  if (std::uint64_t v = r.uint(field); v != expected) {
    throw DecodeError(std::string(field),
                      "unknown " + std::string(what) + " version " + std::to_string(v), at);
  }
}

std::string read_id(Reader& r, std::string_view field, bool allow_empty) {
  const std::size_t at = r.offset();
  std::string id(r.text(field, kMaxIdLength));
  if (!(allow_empty && id.empty()) && !valid_id(id)) {
    throw DecodeError(std::string(field), "must be 1-64 characters of [A-Za-z0-9._:@-]", at);
  }
  return id;
}

void write_signature(Writer& w, const crypto::Signature& signature) {
  w.array(2).uint(static_cast<std::uint64_t>(signature.alg)).bytes(signature.bytes);
}

namespace {
crypto::Signature read_signature_body(Reader& r, std::string_view field) {
  const std::size_t alg_at = r.offset();
  auto alg = crypto::sig_alg_from_code(r.uint(field));
  if (!alg) throw DecodeError(std::string(field), "unknown signature algorithm", alg_at);
  ByteView bytes = r.bytes(field, kMaxSignatureBytes);
  return crypto::Signature{*alg, Bytes(bytes.begin(), bytes.end())};
}
}  // namespace

crypto::Signature read_signature(Reader& r, std::string_view field) {
  r.array_exact(field, 2);
  return read_signature_body(r, field);
}

void write_optional_signature(Writer& w, const std::optional<crypto::Signature>& signature) {
  if (signature) {
    write_signature(w, *signature);
  } else {
    w.array(0);
  }
}

std::optional<crypto::Signature> read_optional_signature(Reader& r, std::string_view field) {
  const std::size_t at = r.offset();
  std::size_t count = r.array(field, 2);
  if (count == 0) return std::nullopt;
  if (count != 2) throw DecodeError(std::string(field), "a signature is [] or [alg, bytes]", at);
  return read_signature_body(r, field);
}

void write_public_key(Writer& w, const crypto::PublicKey& key) {
  w.array(2).uint(static_cast<std::uint64_t>(key.alg())).bytes(key.raw());
}

crypto::PublicKey read_public_key(Reader& r, std::string_view field) {
  const std::size_t at = r.offset();
  r.array_exact(field, 2);
  auto alg = crypto::sig_alg_from_code(r.uint(field));
  if (!alg) throw DecodeError(std::string(field), "unknown key algorithm", at);
  ByteView raw = r.bytes(field, kMaxPublicKeyBytes);
  auto key = crypto::PublicKey::from_raw(*alg, raw);
  if (!key) throw DecodeError(std::string(field), key.error().message, at);
  return *std::move(key);
}

}  // namespace mchain::cbor
