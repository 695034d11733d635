// Algorithm-tagged signatures: ECDSA P-256 with SHA-256 (the default; a TPM can hold the key)
// and Ed25519.
//
// Encodings used on the chain:
//   public key  ECDSA: SEC1 compressed point (33 bytes);  Ed25519: 32 bytes (RFC 8032)
//   signature   ECDSA: r || s, 32 bytes each, big-endian, with s <= n/2 ("low-s", so a
//               signature has exactly one valid encoding);  Ed25519: 64 bytes (RFC 8032)
#pragma once

#include "chain/error.h"
#include "chain/types.h"

#include <memory>
#include <string>

namespace mchain::crypto {

enum class SigAlg : std::uint8_t {
  ecdsa_p256_sha256 = 1,
  ed25519 = 2,
};

std::string_view to_string(SigAlg alg);
std::optional<SigAlg> sig_alg_from_string(std::string_view name);
std::optional<SigAlg> sig_alg_from_code(std::uint64_t code);

struct Signature {
  SigAlg alg = SigAlg::ecdsa_p256_sha256;
  Bytes bytes;
  bool operator==(const Signature&) const = default;
};

class PublicKey {
 public:
  static Result<PublicKey> from_raw(SigAlg alg, ByteView raw);
  // SubjectPublicKeyInfo PEM of a P-256 or Ed25519 key.
  static Result<PublicKey> from_pem(std::string_view pem);

  PublicKey(const PublicKey&);
  PublicKey& operator=(const PublicKey&);
  PublicKey(PublicKey&&) noexcept;
  PublicKey& operator=(PublicKey&&) noexcept;
  ~PublicKey();

  SigAlg alg() const { return alg_; }
  const Bytes& raw() const { return raw_; }
  std::string pem() const;
  // SHA-256 over the algorithm code and raw key: a short, stable name for the key.
  Hash256 fingerprint() const;

  // True only for a well-formed signature of this key's algorithm over `message`.
  // ECDSA signatures with high s are rejected (see the encoding rules above).
  bool verify(ByteView message, const Signature& signature) const;

  bool operator==(const PublicKey& other) const { return alg_ == other.alg_ && raw_ == other.raw_; }

  struct Handle;  // owns the OpenSSL key; defined in sign.cc

 private:
  PublicKey(SigAlg alg, Bytes raw, std::shared_ptr<Handle> handle);
  SigAlg alg_;
  Bytes raw_;
  std::shared_ptr<Handle> handle_;
};

// Anything that can sign: a software key now, a TPM-resident key later.
class Signer {
 public:
  virtual ~Signer() = default;
  virtual SigAlg alg() const = 0;
  virtual const PublicKey& public_key() const = 0;
  virtual Result<Signature> sign(ByteView message) const = 0;
};

class PrivateKey final : public Signer {
 public:
  static Result<PrivateKey> generate(SigAlg alg);
  // PKCS#8 PEM (unencrypted) of a P-256 or Ed25519 key.
  static Result<PrivateKey> from_pem(std::string_view pem);

  PrivateKey(PrivateKey&&) noexcept;
  PrivateKey& operator=(PrivateKey&&) noexcept;
  ~PrivateKey() override;

  SigAlg alg() const override { return public_key_.alg(); }
  const PublicKey& public_key() const override { return public_key_; }
  Result<Signature> sign(ByteView message) const override;
  std::string pem() const;

  struct Handle;

 private:
  PrivateKey(std::unique_ptr<Handle> handle, PublicKey public_key);
  std::unique_ptr<Handle> handle_;
  PublicKey public_key_;
};

}  // namespace mchain::crypto
