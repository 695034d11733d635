// Versioned ciphertext-policy ABE with proxy re-encryption (issue 7, item 3; docs/cpabe.md):
// the sharing paper's scheme (Cheung–Newport AND policies with negative literals and a one-time
// signature, Yu–Wang–Ren–Lou re-keying with version numbers) on BLS12-381.
//
// A system has an ordered universe of n attribute names and w signature-bit positions, both
// fixed at Setup. Keys hold a set S of attributes; ciphertexts carry an AND policy in which each
// attribute is positive, negative or absent ("don't care"). The authority can re-key attribute
// occurrences (rekey): that raises the system version, and the re-key rk lets a proxy bring
// stored ciphertexts (reencrypt) and the remaining users' keys (update_key) to the new version,
// while a revoked key that gets no update opens neither the re-encrypted nor new ciphertexts.
//
//   auto sys = setup({"member", "rank_le_1", "rank_le_2"}).value();   // w = 128
//   auto s = parse_attributes(sys.pk, "member, rank_le_2").value();
//   UserKey sk = keygen(sys.mk, s).value();
//   Policy p = parse_policy(sys.pk, "member and not rank_le_1").value();
//   Ciphertext ct = encrypt(sys.pk, p, data).value();   // KEM + AES-256-GCM + Ed25519 OTS
//   std::expected<Bytes, CpAbeError> m = decrypt(sk, ct);
//
//   auto r = rekey(sys.pk, sys.mk, revocation_set(revoked_s)).value();   // version v -> v+1
//   ct = reencrypt(ct, r.rk).value();             // by the proxy, without decrypting
//   sk = update_key(sk, r.rk).value();            // for every key except the revoked one
//
// Everything is public except MasterKey, UserKey, ReKey (which can un-revoke a key) and the
// KEM's AeadKey. Public inputs (names, n, w, policies, attribute sets S, versions, re-key
// occurrence sets, a ciphertext's verification key) may steer branches; secret scalars and group
// elements never do (constant-time scalar multiplications and GT exponentiation, fixed
// exponents for inversion). Every entry point returns std::expected; nothing throws.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "abe/pairing/bls12_381.h"
#include "chain/crypto/aead.h"
#include "chain/error.h"
#include "chain/types.h"

namespace mchain::abe::cpabe {

// Limits, enforced by setup and by every decoder (a hostile encoding must not make a decoder
// check millions of points).
inline constexpr std::size_t kMaxUniverse = 1024;  // attributes n
inline constexpr std::size_t kMaxNameLength = 255;
inline constexpr std::uint16_t kDefaultSignatureBits = 128;  // w (docs/cpabe.md §2.11)
inline constexpr std::uint16_t kMaxSignatureBits = 256;      // w: 8..256, a multiple of 8

enum class CpAbeErrc : std::uint8_t {
  kMalformed,        // an encoding (or an object built by hand) fails validation
  kWrongSystem,      // objects from different Setups (sys_id differs)
  kEmptyPolicy,      // a policy with no positive or negative literal
  kBadSignature,     // the ciphertext's one-time signature does not verify
  kVersionMismatch,  // ciphertext, key and re-key versions do not line up
  kNotAuthorized,    // the key's attribute set does not satisfy the policy
  kDecryptFailed,    // the AES-GCM tag did not verify: wrong key material or tampering
  kBadRekeySet,      // re-key occurrences empty, repeated or out of range
  kInvalidArgument,  // a parameter out of range (names, w, |S| or |policy| not n, version cap)
  kInternal,         // the system CSPRNG, OpenSSL's Ed25519 or HKDF failed
};

struct CpAbeError {
  CpAbeErrc code = CpAbeErrc::kMalformed;
  // For kVersionMismatch: the version of the object being used (ciphertext, or key for
  // update_key, or PublicKey for rekey) and the version it had to have. Zero otherwise.
  std::uint32_t have = 0;
  std::uint32_t want = 0;

  friend bool operator==(const CpAbeError& e, CpAbeErrc c) { return e.code == c; }
};

// "version mismatch: have 1, need 2", "not authorized", ...
std::string describe(const CpAbeError& error);
std::string describe(CpAbeErrc code);

// The §2.1 layout: per attribute i (0-based) its positive, negative and don't-care element; per
// signature bit j its element for bit value 0 and 1. T = G1 in the PublicKey, Fr in the
// MasterKey (the exponents t, with T = g1^t).
template <typename T>
struct AttributeArrays {
  std::vector<T> pos, neg, any;  // n each
  std::vector<T> bit0, bit1;     // w each
};

struct PublicKey {
  Hash256 sys_id{};                // random at Setup; names the system for ever
  std::uint32_t version = 1;       // raised by every rekey
  std::vector<std::string> names;  // the universe, in order; n = names.size()
  Gt y;                            // e(g1, g2)^y
  AttributeArrays<G1> t;           // g1^t

  std::size_t n() const { return names.size(); }
  std::uint16_t w() const { return static_cast<std::uint16_t>(t.bit0.size()); }

  // 0x10 ‖ sys_id ‖ version u32 ‖ n u16 ‖ w u16 ‖ n × (len u8 ‖ name) ‖ Y (576)
  //   ‖ pos ‖ neg ‖ any ‖ bit0 ‖ bit1 (compressed G1, 48 each); integers big-endian.
  Bytes to_bytes() const;
  // Checks lengths, names (grammar, keywords, uniqueness), w, every point (field, curve,
  // subgroup, not the identity), Y in GT and Y != 1, version >= 1.
  static std::expected<PublicKey, CpAbeError> from_bytes(ByteView bytes);
};

// Secret: held by the authority only.
struct MasterKey {
  Hash256 sys_id{};
  std::uint32_t version = 1;
  Fr y;
  AttributeArrays<Fr> t;  // every t != 0

  std::size_t n() const { return t.pos.size(); }
  std::uint16_t w() const { return static_cast<std::uint16_t>(t.bit0.size()); }

  // 0x11 ‖ sys_id ‖ version u32 ‖ n u16 ‖ w u16 ‖ y ‖ pos ‖ neg ‖ any ‖ bit0 ‖ bit1 (Fr, 32
  // bytes big-endian each).
  Bytes to_bytes() const;
  // Checks lengths, canonical scalars, t != 0, version >= 1.
  static std::expected<MasterKey, CpAbeError> from_bytes(ByteView bytes);
};

// S ⊆ U as one flag per attribute, in the PublicKey's order.
using AttributeFlags = std::vector<bool>;

// Secret: a user's key for the attribute set s at `version`.
struct UserKey {
  Hash256 sys_id{};
  std::uint32_t version = 1;
  AttributeFlags s;  // public: the authority and the proxy know it
  G2 d_hat;          // g2^(y − ρ)
  std::vector<G2> d;  // g2^(ρ_i / t⁺_i) if i ∈ S, else g2^(ρ_i / t⁻_i); re-keyed by update_key
  std::vector<G2> f;           // g2^(ρ_i / t*_i)
  std::vector<G2> bit0, bit1;  // g2^(ρ_{n+j} / t⁰_j), g2^(ρ_{n+j} / t¹_j)

  std::size_t n() const { return s.size(); }
  std::uint16_t w() const { return static_cast<std::uint16_t>(bit0.size()); }

  // 0x12 ‖ sys_id ‖ version u32 ‖ n u16 ‖ w u16 ‖ S (n bytes, 0 or 1) ‖ d_hat ‖ d ‖ f ‖ bit0
  //   ‖ bit1 (compressed G2, 96 each).
  Bytes to_bytes() const;
  // Checks lengths, S bytes, every point (subgroup, not the identity), version >= 1.
  static std::expected<UserKey, CpAbeError> from_bytes(ByteView bytes);
};

// A policy AS: for each attribute (in the PublicKey's order) +i, ¬i or don't care. At least one
// literal must not be kAny.
enum class Literal : std::uint8_t { kAny = 0, kPos = 1, kNeg = 2 };
struct Policy {
  std::vector<Literal> lits;
  bool operator==(const Policy&) const = default;
};

// "member and not rank_le_1": literals joined by `and`, each an attribute name, optionally
// preceded by `not` (keywords case-insensitive, names case-sensitive). Errors give the 1-based
// byte position, e.g. "position 16: unknown attribute 'rank_le_9'". An attribute may appear once.
Result<Policy> parse_policy(const PublicKey& pk, std::string_view text);
// The canonical text of a policy: literals in universe order, e.g. "member and not rank_le_1".
std::string to_string(const PublicKey& pk, const Policy& policy);
// "member, rank_le_2" (comma-separated names; empty text is the empty set; repeats collapse).
Result<AttributeFlags> parse_attributes(const PublicKey& pk, std::string_view text);
// Whether S satisfies AS: i ∈ S for every +i and i ∉ S for every ¬i (sizes must agree).
bool satisfies(const AttributeFlags& s, const Policy& policy);

// A ciphertext: the sealed part (signed, never changed), the one-time signature, and the
// versioned part (the version and the E_i, changed by reencrypt). Built by encrypt/encapsulate,
// reencrypt or from_bytes, so it always holds validated points and the sealed bytes its fields
// were parsed from.
//
// Wire format (docs/cpabe.md §2.4), integers big-endian:
//   sealed     format u8 (0x01 encrypt, 0x02 encapsulate) ‖ sys_id ‖ n u16 ‖ w u16
//              ‖ AS (n bytes: 0 = any, 1 = +, 2 = ¬) ‖ ct_id (32) ‖ E* ‖ K_1..K_w (G1, 48 each)
//              ‖ K_v (Ed25519, 32) [‖ nonce (12) ‖ L u32 ‖ body and GCM tag (L + 16)]
//   signature  Ed25519 over "MCHAIN-CPABE-V1 ots" ‖ SHA-256(sealed) (64)
//   versioned  version u32 ‖ E_1..E_n (G1, 48 each)
class Ciphertext {
 public:
  // Checks the format, lengths, AS (bytes 0..2, not all 0), every point (subgroup, not the
  // identity) and version >= 1. The signature is checked by verify, decrypt and reencrypt.
  static std::expected<Ciphertext, CpAbeError> from_bytes(ByteView bytes);
  Bytes to_bytes() const;

  const Hash256& sys_id() const { return sys_id_; }
  std::uint32_t version() const { return version_; }
  const Policy& policy() const { return policy_; }
  std::size_t n() const { return policy_.lits.size(); }
  std::uint16_t w() const { return static_cast<std::uint16_t>(k_.size()); }
  const Hash256& id() const { return ct_id_; }
  // True for encrypt's ciphertexts (they carry the data), false for encapsulate's.
  bool has_payload() const { return !sealed_.empty() && sealed_[0] == 0x01; }
  std::size_t payload_size() const;  // L (0 without payload)

  // The sealed part's bytes and their SHA-256: what a chain commits to. reencrypt changes
  // neither (nor the signature), so the versioned part can live in replaceable storage.
  ByteView sealed() const { return sealed_; }
  Hash256 digest() const;

  // The versioned part's E_i (E_i for a kAny attribute is its don't-care component).
  const std::vector<G1>& components() const { return e_; }

 private:
  friend struct CiphertextAccess;  // the scheme's implementation (abe/cpabe/internal.h)

  Bytes sealed_;
  std::array<std::uint8_t, 64> signature_{};
  std::uint32_t version_ = 1;
  std::vector<G1> e_;

  // Parsed from sealed_.
  Hash256 sys_id_{};
  Policy policy_;
  Hash256 ct_id_{};
  G1 e_star_;
  std::vector<G1> k_;
  std::array<std::uint8_t, 32> kv_{};
  std::size_t header_size_ = 0;  // the sealed bytes before the body (all of them without payload)
};

// A re-key rk from version `from` to `to` (to = from + 1 from rekey; larger from compose).
// Secret: anyone holding it can update a revoked key.
struct ReKeyEntry {
  std::uint32_t occurrence = 0;  // 0-based: i for +i, n + i for ¬i
  Fr factor;                     // t′ / t (never 0)
  bool operator==(const ReKeyEntry&) const = default;
};
struct ReKey {
  Hash256 sys_id{};
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  std::vector<ReKeyEntry> entries;  // strictly increasing occurrences, at least one

  // 0x13 ‖ sys_id ‖ from u32 ‖ to u32 ‖ count u16 ‖ count × (occurrence u16 ‖ factor (32))
  Bytes to_bytes() const;
  // Checks lengths, 1 <= from < to, count >= 1, increasing occurrences, canonical non-zero
  // factors. Occurrences are checked against n when the re-key is applied.
  static std::expected<ReKey, CpAbeError> from_bytes(ByteView bytes);
};

struct SystemKeys {
  PublicKey pk;
  MasterKey mk;
};

// A fresh system at version 1. names: 1..kMaxUniverse distinct names of 1..255 characters of
// [A-Za-z0-9_.:-], none of them `and`, `or` or `not` (in any case); w: 8..256, a multiple of 8.
std::expected<SystemKeys, CpAbeError> setup(std::span<const std::string> names,
                                            std::uint16_t w = kDefaultSignatureBits);
std::expected<SystemKeys, CpAbeError> setup(std::initializer_list<std::string_view> names,
                                            std::uint16_t w = kDefaultSignatureBits);

// A key for S (|S| = n) at the master key's version.
std::expected<UserKey, CpAbeError> keygen(const MasterKey& mk, const AttributeFlags& s);

// The KEM alone: a signed ciphertext without payload (format 0x02) and the AES-256 key it
// encapsulates. decapsulate returns that key for a key whose S satisfies the policy; it cannot
// notice a wrong key (a colluding or stale one gets a different key): the DEM must authenticate.
struct Encapsulation {
  Ciphertext ct;
  crypto::AeadKey key;
};
std::expected<Encapsulation, CpAbeError> encapsulate(const PublicKey& pk, const Policy& policy);
std::expected<crypto::AeadKey, CpAbeError> decapsulate(const UserKey& sk, const Ciphertext& ct);

// KEM + AES-256-GCM (the sealed header as associated data) + one-time signature over all of it.
std::expected<Ciphertext, CpAbeError> encrypt(const PublicKey& pk, const Policy& policy,
                                              ByteView message);
// Checks (in order) system, sizes, signature, version, policy; then pairs and opens.
std::expected<Bytes, CpAbeError> decrypt(const UserKey& sk, const Ciphertext& ct);

// The keyless check a chain node runs before storing or re-encrypting: same system and sizes as
// pk, and a valid one-time signature (the points were checked when the ciphertext was built).
std::expected<void, CpAbeError> verify(const PublicKey& pk, const Ciphertext& ct);

// The occurrences a key for S holds (i if i ∈ S, n + i otherwise), ascending: the set to re-key
// to revoke that key (docs/cpabe.md §5 says why nothing smaller is safe in general).
std::vector<std::uint32_t> revocation_set(const AttributeFlags& s);

// Re-keys the occurrences in gamma (0-based, < 2n, distinct, at least one): new t′ for each,
// PK and MK at version v + 1, and the re-key from v to v + 1.
struct Rekeyed {
  PublicKey pk;
  MasterKey mk;
  ReKey rk;
};
std::expected<Rekeyed, CpAbeError> rekey(const PublicKey& pk, const MasterKey& mk,
                                         std::span<const std::uint32_t> gamma);

// The re-key from first.from to second.to (second.from must be first.to): per occurrence the
// product of the factors, so one application equals applying both in order.
std::expected<ReKey, CpAbeError> compose(const ReKey& first, const ReKey& second);

// Raises each re-keyed literal's E_i to its factor and sets the version to rk.to; the sealed part
// and the signature stay byte-identical. Requires ct.version() == rk.from.
std::expected<Ciphertext, CpAbeError> reencrypt(const Ciphertext& ct, const ReKey& rk);

// Raises each D_i whose occurrence (for the key's S) is re-keyed to the factor's inverse and sets
// the version to rk.to. Requires sk.version == rk.from.
std::expected<UserKey, CpAbeError> update_key(const UserKey& sk, const ReKey& rk);

// The w bits b_1..b_w a verification key selects (docs/cpabe.md §2.4): the first w/8 bytes of
// SHA-256("MCHAIN-CPABE-V1 vk" ‖ kv), most significant bit first. Exposed for tests.
std::vector<bool> verification_key_bits(ByteView kv, std::uint16_t w);

}  // namespace mchain::abe::cpabe
