// Internal to chain/crypto: the steps of seal() (seal.h), exposed so that tests can check each
// against published vectors. Not part of the module's public API.
#pragma once

#include <cstddef>

#include "chain/crypto/aead.h"
#include "chain/error.h"
#include "chain/types.h"

namespace mchain::crypto::detail {

// The P-256 ECDH primitive (SP 800-56A "ECC CDH" with cofactor 1): the x coordinate of d·Q,
// 32 bytes big-endian. `private_scalar` is d (32 bytes, big-endian, in [1, n-1]); `peer_point`
// is Q as an uncompressed SEC1 point (65 bytes), checked to lie on the curve. seal() and
// open_sealed() run the same derivation on their keys.
Result<Bytes> ecdh_p256(ByteView private_scalar, ByteView peer_point);

// The AES-256-GCM key of a sealed message: HKDF-SHA256 over the ECDH secret with
// info = "mchain seal v1" || ephemeral point || recipient point (uncompressed, 65 bytes each).
Result<AeadKey> seal_key(ByteView shared_secret, ByteView ephemeral_point,
                         ByteView recipient_point);

}  // namespace mchain::crypto::detail
