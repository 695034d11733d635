#include "abe/kpabe/kpabe.h"

#include <algorithm>
#include <map>
#include <string_view>

#include "chain/crypto/hash.h"
#include "chain/encoding/cbor.h"

namespace mchain::abe::kp {

namespace {

constexpr std::uint64_t kFormat = 1;
// HKDF info and GCM associated-data labels: version the derivations with the format.
constexpr std::string_view kKemLabel = "MCHAIN-KPABE-V01 KEM";
constexpr std::string_view kDemLabel = "MCHAIN-KPABE-V01 DEM";
// Caps for decoders facing hostile input. A tree or set encoding is bounded by the policy
// limits (1024 leaves or attributes of at most 255 bytes); the payload by what a measurement
// report can reasonably be.
constexpr std::size_t kMaxPolicyEncoding = 1 << 20;
constexpr std::size_t kMaxCiphertextEncoding = 1 << 20;
constexpr std::size_t kMaxPayload = std::size_t{64} << 20;

using cbor::DecodeError;
using cbor::Reader;
using cbor::Writer;

// A scalar that is never 0 (a zero exponent would make a key part or C' the identity).
Fr nonzero_random_scalar() {
  for (;;) {
    const Fr s = random_scalar();
    if (!s.is_zero()) return s;
  }
}

// H(a): the authority's id and the attribute's length go in front, so that attribute points are
// unrelated between authorities and no attribute's hash input is a prefix of another's.
G1 attribute_point(const AuthorityId& authority, std::string_view attribute) {
  Bytes message(authority.begin(), authority.end());
  message.push_back(static_cast<std::uint8_t>(attribute.size() >> 8));
  message.push_back(static_cast<std::uint8_t>(attribute.size()));
  message.insert(message.end(), attribute.begin(), attribute.end());
  return hash_to_g1(message, as_bytes(kAttributeDst));
}

// Points on the wire: compressed, and decoded with every check plus "not the identity" (no
// honest key, ciphertext or public key holds the identity; accepting it would let a forger
// cancel terms).
template <class Point>
Point read_point(Reader& r, std::string_view field) {
  const ByteView bytes = r.bytes_exact(field, Point::kCompressedSize);
  const auto point = Point::from_compressed(bytes);
  if (!point)
    throw DecodeError(std::string(field), std::string(describe(point.error())), r.offset());
  if (point->is_identity()) throw DecodeError(std::string(field), "is the identity", r.offset());
  return *point;
}

template <std::size_t N>
std::array<std::uint8_t, N> read_fixed(Reader& r, std::string_view field) {
  return r.fixed_bytes<N>(field);
}

// a ‖ b, into a vector sized once (also sidesteps a GCC 12 -Warray-bounds false positive on
// inserting into a vector built from a short literal).
Bytes concat(ByteView a, ByteView b) {
  Bytes out(a.size() + b.size());
  std::copy(a.begin(), a.end(), out.begin());
  std::copy(b.begin(), b.end(), out.begin() + static_cast<std::ptrdiff_t>(a.size()));
  return out;
}

// The KEM key: HKDF over Y^s, salted with the ciphertext's id and bound to its whole encoding.
crypto::AeadKey derive_key(const Gt& shared, const Ciphertext& ciphertext) {
  const Hash256 digest = crypto::sha256(ciphertext.encode());
  const Bytes info = concat(as_bytes(kKemLabel), digest);
  const Gt::Encoded ikm = shared.to_bytes();
  const Result<Bytes> okm = crypto::hkdf_sha256(ikm, ciphertext.id, info, crypto::kAeadKeySize);
  crypto::AeadKey key{};
  // HKDF only fails on empty ikm or an oversized length, neither possible here.
  if (okm) std::copy(okm->begin(), okm->end(), key.begin());
  return key;
}

Bytes dem_aad(ByteView aad) { return concat(as_bytes(kDemLabel), aad); }

}  // namespace

// ---- master keys

MasterPublicKey::MasterPublicKey(const G1& g1, const G2& g2, const Gt& y)
    : g1_(g1), g2_(g2), y_(y), id_(crypto::sha256(encode())) {}

Bytes MasterPublicKey::encode() const {
  Writer w;
  w.array(4)
      .uint(kFormat)
      .bytes(g1_.to_compressed())
      .bytes(g2_.to_compressed())
      .bytes(y_.to_bytes());
  return w.take();
}

Result<MasterPublicKey> MasterPublicKey::decode(ByteView encoded) {
  return cbor::decode(encoded, "KP-ABE master public key", [](Reader& r) {
    r.array_exact("mpk", 4);
    if (r.uint("mpk.format") != kFormat) throw DecodeError("mpk.format", "unknown", r.offset());
    const G1 g1 = read_point<G1>(r, "mpk.g1");
    const G2 g2 = read_point<G2>(r, "mpk.g2");
    const std::optional<Gt> y = Gt::from_bytes(r.bytes_exact("mpk.y", Gt::kBytes));
    if (!y) throw DecodeError("mpk.y", "is not in GT", r.offset());
    if (y->is_identity()) throw DecodeError("mpk.y", "is the identity", r.offset());
    return MasterPublicKey(g1, g2, *y);
  });
}

Bytes MasterSecretKey::encode() const {
  Writer w;
  w.array(3).uint(kFormat).bytes(authority).bytes(y.to_bytes());
  return w.take();
}

Result<MasterSecretKey> MasterSecretKey::decode(ByteView encoded) {
  return cbor::decode(encoded, "KP-ABE master secret key", [](Reader& r) {
    r.array_exact("msk", 3);
    if (r.uint("msk.format") != kFormat) throw DecodeError("msk.format", "unknown", r.offset());
    MasterSecretKey key;
    key.authority = read_fixed<32>(r, "msk.authority");
    const std::optional<Fr> y = Fr::from_bytes(r.bytes_exact("msk.y", Fr::kBytes));
    if (!y || y->is_zero()) throw DecodeError("msk.y", "is not a non-zero scalar", r.offset());
    key.y = *y;
    return key;
  });
}

Authority setup() {
  const G1 g1 = G1::generator() * nonzero_random_scalar();
  const G2 g2 = G2::generator() * nonzero_random_scalar();
  const Fr y = nonzero_random_scalar();
  // Y = e(g1^y, g2): a G1 multiplication instead of a GT exponentiation by the secret.
  MasterPublicKey mpk(g1, g2, pairing(g1 * y, g2));
  MasterSecretKey msk{mpk.id(), y};
  return {std::move(mpk), std::move(msk)};
}

// ---- user keys

Result<UserKey> keygen(const MasterPublicKey& mpk, const MasterSecretKey& msk,
                       const AccessTree& tree) {
  if (msk.authority != mpk.id())
    return fail("keygen: the master secret key is not this authority's");
  UserKey key{mpk.id(), tree, {}};
  std::map<std::string, G1, std::less<>> points;  // a policy may name an attribute twice
  for (const LeafShare& leaf : share(tree, msk.y)) {
    auto point = points.find(leaf.attribute);
    if (point == points.end()) {
      point = points.emplace(leaf.attribute, attribute_point(mpk.id(), leaf.attribute)).first;
    }
    const Fr r = nonzero_random_scalar();
    key.leaves.push_back({mpk.g1() * leaf.lambda + point->second * r, mpk.g2() * r});
  }
  return key;
}

Bytes UserKey::encode() const {
  Writer w;
  w.array(4).uint(kFormat).bytes(authority).bytes(encode_tree(tree)).array(leaves.size());
  for (const Leaf& leaf : leaves) {
    w.array(2).bytes(leaf.d_g1.to_compressed()).bytes(leaf.d_g2.to_compressed());
  }
  return w.take();
}

Result<UserKey> UserKey::decode(ByteView encoded) {
  return cbor::decode(encoded, "KP-ABE user key", [](Reader& r) {
    r.array_exact("key", 4);
    if (r.uint("key.format") != kFormat) throw DecodeError("key.format", "unknown", r.offset());
    const AuthorityId authority = read_fixed<32>(r, "key.authority");
    Result<AccessTree> tree = decode_tree(r.bytes("key.tree", kMaxPolicyEncoding));
    if (!tree) throw DecodeError("key.tree", tree.error().message, r.offset());
    const std::size_t count = r.array("key.leaves", kMaxLeaves);
    if (count != tree->leaf_count()) {
      throw DecodeError("key.leaves", "count differs from the tree's leaves", r.offset());
    }
    UserKey key{authority, std::move(*tree), {}};
    for (std::size_t i = 0; i < count; ++i) {
      r.array_exact("key.leaf", 2);
      const G1 d_g1 = read_point<G1>(r, "key.leaf.D");
      key.leaves.push_back({d_g1, read_point<G2>(r, "key.leaf.d")});
    }
    return key;
  });
}

// ---- the KEM

Bytes Ciphertext::encode() const {
  Writer w;
  w.array(6).uint(kFormat).bytes(authority).bytes(id).bytes(encode_attributes(attributes));
  w.bytes(c_prime.to_compressed()).array(c_attributes.size());
  for (const G1& c : c_attributes) w.bytes(c.to_compressed());
  return w.take();
}

Result<Ciphertext> Ciphertext::decode(ByteView encoded) {
  return cbor::decode(encoded, "KP-ABE ciphertext", [](Reader& r) {
    r.array_exact("ciphertext", 6);
    if (r.uint("ciphertext.format") != kFormat) {
      throw DecodeError("ciphertext.format", "unknown", r.offset());
    }
    Ciphertext ct;
    ct.authority = read_fixed<32>(r, "ciphertext.authority");
    ct.id = read_fixed<32>(r, "ciphertext.id");
    Result<AttributeSet> attributes =
        decode_attributes(r.bytes("ciphertext.attributes", kMaxPolicyEncoding));
    if (!attributes)
      throw DecodeError("ciphertext.attributes", attributes.error().message, r.offset());
    ct.attributes = std::move(*attributes);
    ct.c_prime = read_point<G2>(r, "ciphertext.c_prime");
    const std::size_t count = r.array("ciphertext.c_attributes", kMaxAttributes);
    if (count != ct.attributes.attributes().size()) {
      throw DecodeError("ciphertext.c_attributes", "count differs from the attributes", r.offset());
    }
    for (std::size_t i = 0; i < count; ++i) {
      ct.c_attributes.push_back(read_point<G1>(r, "ciphertext.c_attribute"));
    }
    return ct;
  });
}

Result<Encapsulation> encapsulate(const MasterPublicKey& mpk, const AttributeSet& attributes) {
  if (attributes.attributes().empty()) return fail("encapsulate: the attribute set is empty");
  const Fr s = nonzero_random_scalar();
  Ciphertext ct;
  ct.authority = mpk.id();
  crypto::random_bytes(ct.id);
  ct.attributes = attributes;
  ct.c_prime = mpk.g2() * s;
  for (const std::string& attribute : attributes.attributes()) {
    ct.c_attributes.push_back(attribute_point(mpk.id(), attribute) * s);
  }
  const crypto::AeadKey key = derive_key(mpk.y().pow(s), ct);
  return Encapsulation{std::move(ct), key};
}

Result<crypto::AeadKey> decapsulate(const UserKey& key, const Ciphertext& ct) {
  if (key.authority != ct.authority) {
    return fail("the ciphertext is for another ABE authority than this key");
  }
  if (ct.c_attributes.size() != ct.attributes.attributes().size()) {
    return fail("malformed ciphertext: one C_a per attribute expected");
  }
  const std::optional<std::vector<PlanTerm>> terms = plan(key.tree, ct.attributes);
  if (!terms) {
    const std::optional<std::string> why = explain(key.tree, ct.attributes);
    return fail("access denied: the ciphertext's attributes do not satisfy the key's policy: " +
                why.value_or("not satisfied"));
  }
  // Y^s = e(Σ ω D, C') · Π e(−ω C_a, d): one multi-pairing, the D terms folded into one point.
  const std::vector<std::string>& names = ct.attributes.attributes();
  const std::vector<std::string> leaf_attributes = key.tree.leaf_attributes();
  G1 folded;
  std::vector<PairingInput> pairs;
  pairs.reserve(terms->size() + 1);
  for (const PlanTerm& term : *terms) {
    const UserKey::Leaf& leaf = key.leaves.at(term.leaf);
    folded += leaf.d_g1 * term.omega;
    const auto at = std::lower_bound(names.begin(), names.end(), leaf_attributes.at(term.leaf));
    const G1& c = ct.c_attributes[static_cast<std::size_t>(at - names.begin())];
    pairs.push_back({(-(c * term.omega)).to_affine(), leaf.d_g2.to_affine()});
  }
  pairs.push_back({folded.to_affine(), ct.c_prime.to_affine()});
  return derive_key(multi_pairing(pairs), ct);
}

// ---- hybrid encryption

Result<Bytes> encrypt(const MasterPublicKey& mpk, const AttributeSet& attributes,
                      ByteView plaintext, ByteView aad) {
  if (plaintext.size() > kMaxPayload) return fail("encrypt: the plaintext is larger than 64 MiB");
  Result<Encapsulation> kem = encapsulate(mpk, attributes);
  if (!kem) return std::unexpected(kem.error());
  const crypto::AeadNonce nonce = crypto::random_aead_nonce();
  Writer w;
  w.array(4)
      .uint(kFormat)
      .bytes(kem->ciphertext.encode())
      .bytes(nonce)
      .bytes(crypto::aes256gcm_seal(kem->key, nonce, dem_aad(aad), plaintext));
  return w.take();
}

namespace {

struct Sealed {
  Ciphertext kem;
  crypto::AeadNonce nonce;
  Bytes body;
};

Result<Sealed> decode_sealed(ByteView sealed) {
  return cbor::decode(sealed, "KP-ABE sealed message", [](Reader& r) {
    r.array_exact("sealed", 4);
    if (r.uint("sealed.format") != kFormat)
      throw DecodeError("sealed.format", "unknown", r.offset());
    Result<Ciphertext> kem = Ciphertext::decode(r.bytes("sealed.kem", kMaxCiphertextEncoding));
    if (!kem) throw DecodeError("sealed.kem", kem.error().message, r.offset());
    const crypto::AeadNonce nonce = read_fixed<crypto::kAeadNonceSize>(r, "sealed.nonce");
    const ByteView body = r.bytes("sealed.body", kMaxPayload + crypto::kAeadTagSize);
    return Sealed{std::move(*kem), nonce, Bytes(body.begin(), body.end())};
  });
}

}  // namespace

Result<Bytes> decrypt(const UserKey& key, ByteView sealed, ByteView aad) {
  Result<Sealed> parts = decode_sealed(sealed);
  if (!parts) return std::unexpected(parts.error());
  Result<crypto::AeadKey> dem_key = decapsulate(key, parts->kem);
  if (!dem_key) return std::unexpected(dem_key.error());
  Result<Bytes> plaintext =
      crypto::aes256gcm_open(*dem_key, parts->nonce, dem_aad(aad), parts->body);
  if (!plaintext) {
    return fail(
        "the sealed message does not authenticate: it was changed, or the key is not "
        "from the authority it was sealed for");
  }
  return plaintext;
}

Result<AttributeSet> sealed_attributes(ByteView sealed) {
  Result<Sealed> parts = decode_sealed(sealed);
  if (!parts) return std::unexpected(parts.error());
  return std::move(parts->kem.attributes);
}

}  // namespace mchain::abe::kp
