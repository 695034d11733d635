// AES-256-GCM with associated data, 96-bit nonces and 128-bit tags.
#pragma once

#include "chain/error.h"
#include "chain/types.h"

namespace mchain::crypto {

inline constexpr std::size_t kAeadKeySize = 32;
inline constexpr std::size_t kAeadNonceSize = 12;
inline constexpr std::size_t kAeadTagSize = 16;

using AeadKey = std::array<std::uint8_t, kAeadKeySize>;
using AeadNonce = std::array<std::uint8_t, kAeadNonceSize>;

AeadKey random_aead_key();
AeadNonce random_aead_nonce();

// Returns ciphertext || tag.
Bytes aes256gcm_seal(const AeadKey& key, const AeadNonce& nonce, ByteView aad, ByteView plaintext);
// Fails (without releasing any plaintext) when the tag does not authenticate `aad` and the input.
Result<Bytes> aes256gcm_open(const AeadKey& key, const AeadNonce& nonce, ByteView aad,
                             ByteView ciphertext_and_tag);

}  // namespace mchain::crypto
