// SHA-2 digests and HMAC through OpenSSL 3 EVP.
#pragma once

#include "chain/error.h"
#include "chain/types.h"

#include <memory>

namespace mchain::crypto {

Hash256 sha256(ByteView data);
Hash512 sha512(ByteView data);
Hash256 hmac_sha256(ByteView key, ByteView data);
Hash512 hmac_sha512(ByteView key, ByteView data);

namespace detail {
struct DigestState;
// Owns one EVP digest context; Sha256 and Sha512 are thin typed fronts.
class IncrementalDigest {
 public:
  explicit IncrementalDigest(int which);
  ~IncrementalDigest();
  IncrementalDigest(IncrementalDigest&&) noexcept;
  IncrementalDigest& operator=(IncrementalDigest&&) noexcept;

  void update(ByteView data);
  void finish(std::span<std::uint8_t> out);

 private:
  int which_;
  std::unique_ptr<DigestState> state_;
};
}  // namespace detail

// Incremental SHA-256 / SHA-512, for hashing data that arrives in pieces. finish() returns
// the digest and leaves the object ready for a new message.
class Sha256 {
 public:
  Sha256& update(ByteView data) {
    digest_.update(data);
    return *this;
  }
  Hash256 finish() {
    Hash256 out;
    digest_.finish(out);
    return out;
  }

 private:
  detail::IncrementalDigest digest_{0};
};

class Sha512 {
 public:
  Sha512& update(ByteView data) {
    digest_.update(data);
    return *this;
  }
  Hash512 finish() {
    Hash512 out;
    digest_.finish(out);
    return out;
  }

 private:
  detail::IncrementalDigest digest_{1};
};

// HKDF with HMAC-SHA256 (RFC 5869), extract then expand; an empty salt means HashLen zero
// bytes, as the RFC says. `length` at most 255 * 32; `ikm` must not be empty.
Result<Bytes> hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length);

// Fills `out` from OpenSSL's CSPRNG. A failing CSPRNG is unrecoverable: aborts.
void random_bytes(std::span<std::uint8_t> out);

}  // namespace mchain::crypto
