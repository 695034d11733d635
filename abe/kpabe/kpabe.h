// Key-policy ABE: large-universe GPSW (Goyal, Pandey, Sahai, Waters, CCS 2006, §5) in the
// asymmetric BLS12-381 setting, as a KEM with an AES-256-GCM DEM on top (docs/abe.md "KP-ABE").
//
// The authority holds the master secret y. A verifier's key carries an access tree (abe/policy)
// whose leaves each hold a share λ of y; a ciphertext carries an attribute set. The key opens the
// ciphertext exactly when the set satisfies the tree:
//
//   setup:        y random; MPK = (g1, g2, Y = e(g1, g2)^y), id = SHA-256 of its encoding
//   keygen(tree): per leaf ℓ with attribute a, r random: D = g1^λ · H(a)^r ∈ G1, d = g2^r ∈ G2
//   encapsulate:  s random; C' = g2^s ∈ G2, C_a = H(a)^s ∈ G1 per attribute; key from Y^s
//   decapsulate:  Y^s = e(Π D^ω, C') / Π e(C_a^ω, d) over a satisfying leaf set (Σ ω λ = y)
//
// H(a) = hash_to_g1(MPK id ‖ u16 length ‖ a) (RFC 9380, kAttributeDst), so attribute points are
// private to one authority. The AES key is HKDF-SHA256(salt = the ciphertext's random id,
// ikm = Y^s, info = label ‖ SHA-256(encoded ciphertext)): changing any byte of the ciphertext
// changes the key, so GCM refuses it.
//
// Secrets (y, λ, r, s, Y^s) only meet constant-time operations; the tree, the attribute set and
// which leaves decryption uses are public.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "abe/pairing/bls12_381.h"
#include "abe/policy/policy.h"
#include "chain/crypto/aead.h"
#include "chain/error.h"
#include "chain/types.h"

namespace mchain::abe::kp {

using AuthorityId = std::array<std::uint8_t, 32>;

class MasterPublicKey {
 public:
  MasterPublicKey(const G1& g1, const G2& g2, const Gt& y);

  const G1& g1() const { return g1_; }
  const G2& g2() const { return g2_; }
  const Gt& y() const { return y_; }
  // SHA-256 of encode(): names the authority in keys and ciphertexts and salts attribute hashes.
  const AuthorityId& id() const { return id_; }

  // [1, g1 (48 bytes), g2 (96), Y (576)], canonical CBOR.
  Bytes encode() const;
  // Checks every point (field, curve, subgroup, not the identity) and Y ≠ 1 in GT.
  static Result<MasterPublicKey> decode(ByteView encoded);

 private:
  G1 g1_;
  G2 g2_;
  Gt y_;
  AuthorityId id_;
};

struct MasterSecretKey {
  AuthorityId authority;  // the MasterPublicKey it belongs to
  Fr y;

  Bytes encode() const;  // [1, authority, y (32 bytes)]
  static Result<MasterSecretKey> decode(ByteView encoded);
};

struct Authority {
  MasterPublicKey public_key;
  MasterSecretKey secret_key;
};

// A fresh authority: random g1, g2 and y.
Authority setup();

// A verifier's key for `tree`: one (D, d) pair per leaf, in leaf order.
struct UserKey {
  struct Leaf {
    G1 d_g1;  // D = g1^λ · H(a)^r
    G2 d_g2;  // d = g2^r
  };
  AuthorityId authority;
  AccessTree tree;
  std::vector<Leaf> leaves;

  // [1, authority, tree (abe/policy encoding), [[D, d], …]]
  Bytes encode() const;
  // Checks the tree, one leaf pair per tree leaf, and every point.
  static Result<UserKey> decode(ByteView encoded);
};

// Fails only when msk is not mpk's.
Result<UserKey> keygen(const MasterPublicKey& mpk, const MasterSecretKey& msk,
                       const AccessTree& tree);

// The KEM ciphertext: the attribute set in the clear (it is what keys are checked against).
struct Ciphertext {
  AuthorityId authority;
  std::array<std::uint8_t, 32> id;  // random; the HKDF salt
  AttributeSet attributes;
  G2 c_prime;                    // C' = g2^s
  std::vector<G1> c_attributes;  // C_a = H(a)^s, one per attributes.attributes(), same order

  // [1, authority, id, attributes (abe/policy encoding), C', [C_a, …]]
  Bytes encode() const;
  static Result<Ciphertext> decode(ByteView encoded);
};

struct Encapsulation {
  Ciphertext ciphertext;
  crypto::AeadKey key;
};

// Fails on an empty attribute set (nothing could ever satisfy a policy over it).
Result<Encapsulation> encapsulate(const MasterPublicKey& mpk, const AttributeSet& attributes);

// The AES key, or an error: another authority's ciphertext, or the ciphertext's attributes do
// not satisfy the key's policy (the message says which part of the policy was not met, from
// abe::explain). A key that satisfies the policy but was not made for this authority's ciphertext
// yields a wrong key, which the DEM then refuses.
Result<crypto::AeadKey> decapsulate(const UserKey& key, const Ciphertext& ciphertext);

// Hybrid encryption: encapsulate, then AES-256-GCM of `plaintext` under the KEM key with a random
// nonce; `aad` is authenticated, not stored. Encoding: [1, KEM ciphertext, nonce, GCM output].
Result<Bytes> encrypt(const MasterPublicKey& mpk, const AttributeSet& attributes,
                      ByteView plaintext, ByteView aad = {});
// Decodes, decapsulates and opens; any changed byte (or different aad) fails.
Result<Bytes> decrypt(const UserKey& key, ByteView sealed, ByteView aad = {});
// The attribute set a sealed message was encrypted under (to tell a user what it needs).
Result<AttributeSet> sealed_attributes(ByteView sealed);

}  // namespace mchain::abe::kp
