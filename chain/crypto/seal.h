// Public-key sealing to a node key (ECIES over P-256), for secrets one host hands to another:
// when a VM migrates, the source host seals the VM's private key to the destination node's
// public key and sends it over the peer network; only that node's private key opens it.
//
// Construction (docs/seal.md):
//   e, E      a fresh P-256 key pair for every message (ephemeral)
//   Z         ECDH(e, R): the x coordinate of e·R, 32 bytes, R the recipient's node key
//   key       HKDF-SHA256(ikm = Z, salt = empty,
//                         info = "mchain seal v1" || E || R, length 32)
//   sealed    0x01 || E || nonce || AES-256-GCM(key, nonce, aad, plaintext) || tag
// with E and R as uncompressed SEC1 points (65 bytes each) and a random 12-byte nonce. Binding
// both points into the key ties the ciphertext to this recipient and this ephemeral key. The
// caller's aad is authenticated, not sent: the opener must supply the same bytes (e.g. the
// VM id and the two node ids), so a sealed secret cannot be replayed in another context.
//
// Sender anonymity: a sealed message says nothing about who made it. Authenticate the sender
// separately (the peer network does: only an admitted peer's TLS link carries it).
//
// Only P-256 node keys can receive: Ed25519 keys sign and cannot do ECDH as they are, and
// converting them to X25519 would use one key in two schemes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "chain/crypto/aead.h"
#include "chain/crypto/sign.h"
#include "chain/error.h"
#include "chain/types.h"

namespace mchain::crypto {

inline constexpr std::uint8_t kSealVersion = 1;
inline constexpr std::size_t kSealPointSize = 65;  // uncompressed SEC1 P-256 point
// Bytes a sealed message adds to its plaintext: version, ephemeral point, nonce, tag.
inline constexpr std::size_t kSealOverhead = 1 + kSealPointSize + kAeadNonceSize + kAeadTagSize;

// Seals `plaintext` to `recipient` (a P-256 node key), authenticating `aad` with it. Fails
// for an Ed25519 recipient ("sealing needs a P-256 node key").
Result<Bytes> seal(const PublicKey& recipient, ByteView plaintext, ByteView aad);

// Opens what seal() made for the public half of `recipient`, given the same `aad`. Fails
// without releasing any plaintext for an unknown version, a malformed or off-curve ephemeral
// point, truncated input, any modified byte, another recipient key or other aad.
Result<Bytes> open_sealed(const PrivateKey& recipient, ByteView sealed, ByteView aad);

}  // namespace mchain::crypto
