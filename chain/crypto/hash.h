// SHA-2 digests and HMAC through OpenSSL 3 EVP.
#pragma once

#include "chain/types.h"

#include <memory>

namespace mchain::crypto {

Hash256 sha256(ByteView data);
Hash512 sha512(ByteView data);
Hash256 hmac_sha256(ByteView key, ByteView data);
Hash512 hmac_sha512(ByteView key, ByteView data);

// Incremental SHA-256, for hashing data that arrives in pieces.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  Sha256& update(ByteView data);
  // Returns the digest; the object can be reused after finish().
  Hash256 finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Fills `out` from OpenSSL's CSPRNG. A failing CSPRNG is unrecoverable: aborts.
void random_bytes(std::span<std::uint8_t> out);

}  // namespace mchain::crypto
