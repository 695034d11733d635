// The CP-ABE scheme of docs/cpabe.md §2: Setup, KeyGen, the KEM and its DEM with the one-time
// signature, Verify, Rekey, ReEncrypt and UpdateKey.
//
// Constant time: the secrets are y, the t's, ρ, s, the re-key factors, Y^s and the keys' group
// elements. They only enter constant-time operations: Fr arithmetic and inversion (a fixed
// exponent), G1/G2 multiplication by an Fr (operator* or FixedBase::mul), Gt::pow, the pairing,
// HKDF and AES-GCM. Every branch and array index depends on public data only: n, w, the policy,
// the attribute set S of a key, the re-keyed occurrences, the bits of a ciphertext's (public)
// verification key, versions, sizes, and the zero-redraw of fresh random scalars.
#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "abe/cpabe/cpabe.h"
#include "abe/cpabe/internal.h"
#include "chain/crypto/hash.h"
#include "chain/crypto/sign.h"

namespace mchain::abe::cpabe {

const FixedBase<G1>& g1_table() {
  static const auto* table = new FixedBase<G1>(G1::generator());
  return *table;
}

const FixedBase<G2>& g2_table() {
  static const auto* table = new FixedBase<G2>(G2::generator());
  return *table;
}

Fr random_nonzero_scalar() {
  Fr a = random_scalar();
  while (a.is_zero()) a = random_scalar();
  return a;
}

void wipe(void* data, std::size_t size) { OPENSSL_cleanse(data, size); }

std::string describe(CpAbeErrc code) {
  switch (code) {
    case CpAbeErrc::kMalformed: return "malformed encoding or object";
    case CpAbeErrc::kWrongSystem: return "objects from different systems";
    case CpAbeErrc::kEmptyPolicy: return "empty policy";
    case CpAbeErrc::kBadSignature: return "bad one-time signature";
    case CpAbeErrc::kVersionMismatch: return "version mismatch";
    case CpAbeErrc::kNotAuthorized: return "not authorized";
    case CpAbeErrc::kDecryptFailed: return "decryption failed";
    case CpAbeErrc::kBadRekeySet: return "bad re-key occurrence set";
    case CpAbeErrc::kInvalidArgument: return "invalid argument";
    case CpAbeErrc::kInternal: return "internal failure";
  }
  return "unknown error";
}

std::string describe(const CpAbeError& e) {
  std::string out = describe(e.code);
  if (e.code == CpAbeErrc::kVersionMismatch) {
    out += ": have " + std::to_string(e.have) + ", need " + std::to_string(e.want);
  }
  return out;
}

std::vector<bool> verification_key_bits(ByteView kv, std::uint16_t w) {
  crypto::Sha256 h;
  h.update(as_bytes(kTagVerificationKey)).update(kv);
  const Hash256 digest = h.finish();
  const std::size_t count = std::min<std::size_t>(w, 8 * digest.size());
  std::vector<bool> bits(count);
  for (std::size_t j = 0; j < count; ++j) bits[j] = ((digest[j / 8] >> (7 - j % 8)) & 1) != 0;
  return bits;
}

namespace {

// Sizes agree with each other and with the limits (objects can be built by hand; the decoders
// check this and more).
template <typename T>
bool arrays_fit(const AttributeArrays<T>& a, std::size_t n, std::size_t w) {
  return valid_n(n) && valid_w(w) && a.pos.size() == n && a.neg.size() == n && a.any.size() == n &&
         a.bit0.size() == w && a.bit1.size() == w;
}
bool well_formed(const PublicKey& pk) {
  return pk.version >= 1 && arrays_fit(pk.t, pk.names.size(), pk.t.bit0.size());
}
bool well_formed(const MasterKey& mk) {
  return mk.version >= 1 && arrays_fit(mk.t, mk.t.pos.size(), mk.t.bit0.size());
}
bool well_formed(const UserKey& sk) {
  const std::size_t n = sk.s.size();
  const std::size_t w = sk.bit0.size();
  return sk.version >= 1 && valid_n(n) && valid_w(w) && sk.d.size() == n && sk.f.size() == n &&
         sk.bit1.size() == w;
}
bool well_formed(const ReKey& rk) {
  if (rk.from < 1 || rk.to <= rk.from || rk.entries.empty()) return false;
  for (std::size_t i = 0; i < rk.entries.size(); ++i) {
    if (rk.entries[i].factor.is_zero()) return false;
    if (i > 0 && rk.entries[i].occurrence <= rk.entries[i - 1].occurrence) return false;
  }
  return true;
}
// Entries are increasing, so the last is the largest occurrence.
bool occurrences_fit(const ReKey& rk, std::size_t n) {
  return rk.entries.back().occurrence < 2 * n;
}

std::expected<void, CpAbeError> check_signature(const Ciphertext& ct) {
  const auto kv = crypto::PublicKey::from_raw(crypto::SigAlg::ed25519, CiphertextAccess::kv(ct));
  if (!kv) return error(CpAbeErrc::kBadSignature);
  Writer message;
  message.bytes(kTagSignature);
  message.bytes(ct.digest());
  const auto& sig = CiphertextAccess::signature(ct);
  const crypto::Signature signature{crypto::SigAlg::ed25519, Bytes(sig.begin(), sig.end())};
  if (!kv->verify(message.take(), signature)) return error(CpAbeErrc::kBadSignature);
  return {};
}

// key = HKDF-SHA256(salt = ct_id, ikm = Z (576 bytes), info = tag ‖ SHA-256(header), 32).
std::expected<crypto::AeadKey, CpAbeError> derive_key(const Gt& z, const Hash256& ct_id,
                                                      ByteView header) {
  Gt::Encoded ikm = z.to_bytes();
  Writer info;
  info.bytes(kTagKem);
  info.bytes(crypto::sha256(header));
  auto okm = crypto::hkdf_sha256(ikm, ct_id, info.take(), crypto::kAeadKeySize);
  wipe(ikm);
  if (!okm || okm->size() != crypto::kAeadKeySize) return error(CpAbeErrc::kInternal);
  crypto::AeadKey key;
  std::memcpy(key.data(), okm->data(), key.size());
  wipe(okm->data(), okm->size());
  return key;
}

// Encrypt (with a message) or Encapsulate (without): §2.4 steps 1–4. On success key_out holds
// the KEM's key.
std::expected<Ciphertext, CpAbeError> seal(const PublicKey& pk, const Policy& policy,
                                           const ByteView* message, crypto::AeadKey& key_out) {
  if (!well_formed(pk)) return error(CpAbeErrc::kMalformed);
  if (policy.lits.size() != pk.n()) return error(CpAbeErrc::kInvalidArgument);
  bool any_literal = false;
  for (const Literal l : policy.lits) {
    if (l != Literal::kAny && l != Literal::kPos && l != Literal::kNeg) {
      return error(CpAbeErrc::kInvalidArgument);
    }
    any_literal |= l != Literal::kAny;
  }
  if (!any_literal) return error(CpAbeErrc::kEmptyPolicy);
  if (message && message->size() > std::numeric_limits<std::uint32_t>::max()) {
    return error(CpAbeErrc::kInvalidArgument);
  }
  const std::size_t n = pk.n();
  const std::uint16_t w = pk.w();

  // 1. The one-time key pair and the bits its verification key selects.
  auto ots = crypto::PrivateKey::generate(crypto::SigAlg::ed25519);
  if (!ots || ots->public_key().raw().size() != kVerificationKeySize) {
    return error(CpAbeErrc::kInternal);
  }
  CiphertextAccess::Parts parts;
  std::memcpy(parts.kv.data(), ots->public_key().raw().data(), kVerificationKeySize);
  const std::vector<bool> bits = verification_key_bits(parts.kv, w);

  // 2. The KEM: Z = Y^s, E* = g1^s, E_i = T_{occ(i)}^s, K_j = T^{b_j}_j^s.
  Fr s = random_nonzero_scalar();
  Gt z = pk.y.pow(s);
  parts.e_star = g1_table().mul(s);
  parts.k.reserve(w);
  for (std::size_t j = 0; j < w; ++j)
    parts.k.push_back((bits[j] ? pk.t.bit1[j] : pk.t.bit0[j]) * s);
  parts.e.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const G1& base = policy.lits[i] == Literal::kPos   ? pk.t.pos[i]
                     : policy.lits[i] == Literal::kNeg ? pk.t.neg[i]
                                                       : pk.t.any[i];
    parts.e.push_back(base * s);
  }
  wipe(s);

  // 3. The header, the key and (for encrypt) the DEM.
  crypto::random_bytes(parts.ct_id);
  Writer sealed;
  sealed.u8(message ? kFormatCiphertext : kFormatKemCiphertext);
  sealed.bytes(pk.sys_id);
  sealed.u16(static_cast<std::uint16_t>(n));
  sealed.u16(w);
  for (const Literal l : policy.lits) sealed.u8(static_cast<std::uint8_t>(l));
  sealed.bytes(parts.ct_id);
  sealed.point(parts.e_star);
  for (const G1& k : parts.k) sealed.point(k);
  sealed.bytes(parts.kv);
  crypto::AeadNonce nonce{};
  if (message) {
    nonce = crypto::random_aead_nonce();
    sealed.bytes(nonce);
    sealed.u32(static_cast<std::uint32_t>(message->size()));
  }
  parts.header_size = sealed.size();
  parts.sealed = sealed.take();
  auto key = derive_key(z, parts.ct_id, parts.sealed);
  wipe(z);
  if (!key) return std::unexpected(key.error());
  if (message) {
    const Bytes body = crypto::aes256gcm_seal(*key, nonce, parts.sealed, *message);
    parts.sealed.insert(parts.sealed.end(), body.begin(), body.end());
  }

  // 4. The one-time signature over the whole sealed part; the signing key dies with `ots`.
  Writer to_sign;
  to_sign.bytes(kTagSignature);
  to_sign.bytes(crypto::sha256(parts.sealed));
  const auto signature = ots->sign(to_sign.take());
  if (!signature || signature->bytes.size() != kSignatureSize) {
    wipe(*key);
    return error(CpAbeErrc::kInternal);
  }
  std::memcpy(parts.signature.data(), signature->bytes.data(), kSignatureSize);

  parts.sys_id = pk.sys_id;
  parts.policy = policy;
  parts.version = pk.version;
  key_out = *key;
  wipe(*key);
  return CiphertextAccess::make(std::move(parts));
}

}  // namespace

std::expected<SystemKeys, CpAbeError> setup(std::span<const std::string> names, std::uint16_t w) {
  if (!valid_n(names.size()) || !valid_w(w)) return error(CpAbeErrc::kInvalidArgument);
  std::unordered_set<std::string_view> seen;
  for (const std::string& name : names) {
    if (!valid_name(name) || !seen.insert(name).second) return error(CpAbeErrc::kInvalidArgument);
  }
  const std::size_t n = names.size();
  SystemKeys out;
  crypto::random_bytes(out.pk.sys_id);
  out.mk.sys_id = out.pk.sys_id;
  out.pk.version = out.mk.version = 1;
  out.pk.names.assign(names.begin(), names.end());

  // Every t must be invertible (keys hold g2^(ρ/t)); y may be anything.
  out.mk.y = random_scalar();
  // Y = e(g1^y, g2): a pairing on a secret G1 point rather than a GT exponentiation by y.
  out.pk.y = pairing(g1_table().mul(out.mk.y), G2::generator());
  auto fill = [&](std::vector<Fr>& t, std::vector<G1>& big_t, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      t.push_back(random_nonzero_scalar());
      big_t.push_back(g1_table().mul(t.back()));
    }
  };
  fill(out.mk.t.pos, out.pk.t.pos, n);
  fill(out.mk.t.neg, out.pk.t.neg, n);
  fill(out.mk.t.any, out.pk.t.any, n);
  fill(out.mk.t.bit0, out.pk.t.bit0, w);
  fill(out.mk.t.bit1, out.pk.t.bit1, w);
  return out;
}

std::expected<SystemKeys, CpAbeError> setup(std::initializer_list<std::string_view> names,
                                            std::uint16_t w) {
  const std::vector<std::string> copy(names.begin(), names.end());
  return setup(std::span<const std::string>(copy), w);
}

std::expected<UserKey, CpAbeError> keygen(const MasterKey& mk, const AttributeFlags& s) {
  if (!well_formed(mk)) return error(CpAbeErrc::kMalformed);
  const std::size_t n = mk.n();
  const std::size_t w = mk.w();
  if (s.size() != n) return error(CpAbeErrc::kInvalidArgument);

  // ρ_1..ρ_n for the attributes, ρ_{n+1}..ρ_{n+w} for the signature bits; ρ = Σ ρ_k.
  std::vector<Fr> rho(n + w);
  Fr rho_sum = Fr::zero();
  for (Fr& r : rho) {
    r = random_scalar();
    rho_sum += r;
  }
  const FixedBase<G2>& g2 = g2_table();
  UserKey sk;
  sk.sys_id = mk.sys_id;
  sk.version = mk.version;
  sk.s = s;
  Fr exponent = mk.y - rho_sum;
  sk.d_hat = g2.mul(exponent);
  sk.d.reserve(n);
  sk.f.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    // S is public: which of t⁺_i, t⁻_i the key is built on is no secret.
    exponent = rho[i] * (s[i] ? mk.t.pos[i] : mk.t.neg[i]).inverse();
    sk.d.push_back(g2.mul(exponent));
    exponent = rho[i] * mk.t.any[i].inverse();
    sk.f.push_back(g2.mul(exponent));
  }
  sk.bit0.reserve(w);
  sk.bit1.reserve(w);
  for (std::size_t j = 0; j < w; ++j) {
    exponent = rho[n + j] * mk.t.bit0[j].inverse();
    sk.bit0.push_back(g2.mul(exponent));
    exponent = rho[n + j] * mk.t.bit1[j].inverse();
    sk.bit1.push_back(g2.mul(exponent));
  }
  wipe(rho.data(), rho.size() * sizeof(Fr));
  wipe(rho_sum);
  wipe(exponent);
  return sk;
}

std::expected<Encapsulation, CpAbeError> encapsulate(const PublicKey& pk, const Policy& policy) {
  crypto::AeadKey key{};
  auto ct = seal(pk, policy, nullptr, key);
  if (!ct) return std::unexpected(ct.error());
  return Encapsulation{std::move(*ct), key};
}

std::expected<Ciphertext, CpAbeError> encrypt(const PublicKey& pk, const Policy& policy,
                                              ByteView message) {
  crypto::AeadKey key{};
  auto ct = seal(pk, policy, &message, key);
  wipe(key);
  return ct;
}

std::expected<void, CpAbeError> verify(const PublicKey& pk, const Ciphertext& ct) {
  if (!well_formed(pk)) return error(CpAbeErrc::kMalformed);
  if (ct.sys_id() != pk.sys_id) return error(CpAbeErrc::kWrongSystem);
  if (ct.n() != pk.n() || ct.w() != pk.w()) return error(CpAbeErrc::kMalformed);
  return check_signature(ct);
}

std::expected<crypto::AeadKey, CpAbeError> decapsulate(const UserKey& sk, const Ciphertext& ct) {
  if (!well_formed(sk)) return error(CpAbeErrc::kMalformed);
  if (ct.sys_id() != sk.sys_id) return error(CpAbeErrc::kWrongSystem);
  if (ct.n() != sk.n() || ct.w() != sk.w()) return error(CpAbeErrc::kMalformed);
  if (auto ok = check_signature(ct); !ok) return std::unexpected(ok.error());
  if (ct.version() != sk.version) {
    return error(CpAbeErrc::kVersionMismatch, ct.version(), sk.version);
  }
  if (!satisfies(sk.s, ct.policy())) return error(CpAbeErrc::kNotAuthorized);

  // Z′ = e(E*, D̂) · ∏_i e(E_i, D_i or F_i) · ∏_j e(K_j, D̂_{j,b_j}) (§2.5 step 4); the choices
  // follow the public policy and the public verification key.
  const std::size_t n = ct.n();
  const std::size_t w = ct.w();
  const std::vector<bool> bits = verification_key_bits(CiphertextAccess::kv(ct), ct.w());
  std::vector<PairingInput> pairs;
  pairs.reserve(1 + n + w);
  pairs.push_back({CiphertextAccess::e_star(ct).to_affine(), sk.d_hat.to_affine()});
  for (std::size_t i = 0; i < n; ++i) {
    const G2& x = ct.policy().lits[i] == Literal::kAny ? sk.f[i] : sk.d[i];
    pairs.push_back({ct.components()[i].to_affine(), x.to_affine()});
  }
  for (std::size_t j = 0; j < w; ++j) {
    const G2& x = bits[j] ? sk.bit1[j] : sk.bit0[j];
    pairs.push_back({CiphertextAccess::k(ct)[j].to_affine(), x.to_affine()});
  }
  Gt z = multi_pairing(pairs);
  wipe(pairs.data(), pairs.size() * sizeof(PairingInput));
  auto key = derive_key(z, ct.id(), CiphertextAccess::header(ct));
  wipe(z);
  return key;
}

std::expected<Bytes, CpAbeError> decrypt(const UserKey& sk, const Ciphertext& ct) {
  if (!ct.has_payload()) return error(CpAbeErrc::kInvalidArgument);
  auto key = decapsulate(sk, ct);
  if (!key) return std::unexpected(key.error());
  auto plain = crypto::aes256gcm_open(*key, CiphertextAccess::nonce(ct),
                                      CiphertextAccess::header(ct), CiphertextAccess::body(ct));
  wipe(*key);
  if (!plain) return error(CpAbeErrc::kDecryptFailed);
  return std::move(*plain);
}

std::vector<std::uint32_t> revocation_set(const AttributeFlags& s) {
  std::vector<std::uint32_t> out;
  out.reserve(s.size());
  const auto n = static_cast<std::uint32_t>(s.size());
  for (std::uint32_t i = 0; i < n; ++i) out.push_back(s[i] ? i : n + i);
  std::ranges::sort(out);
  return out;
}

std::expected<Rekeyed, CpAbeError> rekey(const PublicKey& pk, const MasterKey& mk,
                                         std::span<const std::uint32_t> gamma) {
  if (!well_formed(pk) || !well_formed(mk) || pk.n() != mk.n() || pk.w() != mk.w()) {
    return error(CpAbeErrc::kMalformed);
  }
  if (pk.sys_id != mk.sys_id) return error(CpAbeErrc::kWrongSystem);
  if (pk.version != mk.version) return error(CpAbeErrc::kVersionMismatch, pk.version, mk.version);
  if (pk.version == std::numeric_limits<std::uint32_t>::max()) {
    return error(CpAbeErrc::kInvalidArgument);
  }
  const std::size_t n = pk.n();
  std::vector<std::uint32_t> occurrences(gamma.begin(), gamma.end());
  std::ranges::sort(occurrences);
  if (occurrences.empty() || occurrences.back() >= 2 * n ||
      std::ranges::adjacent_find(occurrences) != occurrences.end()) {
    return error(CpAbeErrc::kBadRekeySet);
  }

  Rekeyed out{pk, mk, ReKey{}};
  out.rk.sys_id = pk.sys_id;
  out.rk.from = pk.version;
  out.rk.to = pk.version + 1;
  for (const std::uint32_t k : occurrences) {
    Fr& t = k < n ? out.mk.t.pos[k] : out.mk.t.neg[k - n];
    G1& big_t = k < n ? out.pk.t.pos[k] : out.pk.t.neg[k - n];
    // t′ = u·t with u uniform in Fr \ {0, 1}: t′ is uniform among the non-zero scalars other
    // than t (a factor of 1 would leave a revoked key working), u is the re-key factor t′/t, and
    // the redraw looks at fresh randomness only, never at t.
    Fr u = random_nonzero_scalar();
    while (u == Fr::one()) u = random_nonzero_scalar();
    out.rk.entries.push_back({k, u});
    t = u * t;
    big_t = g1_table().mul(t);
    wipe(u);
  }
  out.pk.version = out.mk.version = out.rk.to;
  return out;
}

std::expected<ReKey, CpAbeError> compose(const ReKey& first, const ReKey& second) {
  if (!well_formed(first) || !well_formed(second)) return error(CpAbeErrc::kMalformed);
  if (first.sys_id != second.sys_id) return error(CpAbeErrc::kWrongSystem);
  if (second.from != first.to) return error(CpAbeErrc::kVersionMismatch, second.from, first.to);
  ReKey out;
  out.sys_id = first.sys_id;
  out.from = first.from;
  out.to = second.to;
  std::size_t a = 0, b = 0;
  const auto& x = first.entries;
  const auto& y = second.entries;
  while (a < x.size() || b < y.size()) {
    if (b == y.size() || (a < x.size() && x[a].occurrence < y[b].occurrence)) {
      out.entries.push_back(x[a++]);
    } else if (a == x.size() || y[b].occurrence < x[a].occurrence) {
      out.entries.push_back(y[b++]);
    } else {
      out.entries.push_back({x[a].occurrence, x[a].factor * y[b].factor});
      ++a;
      ++b;
    }
  }
  return out;
}

std::expected<Ciphertext, CpAbeError> reencrypt(const Ciphertext& ct, const ReKey& rk) {
  if (!well_formed(rk)) return error(CpAbeErrc::kMalformed);
  if (ct.sys_id() != rk.sys_id) return error(CpAbeErrc::kWrongSystem);
  if (auto ok = check_signature(ct); !ok) return std::unexpected(ok.error());
  if (ct.version() != rk.from) return error(CpAbeErrc::kVersionMismatch, ct.version(), rk.from);
  const std::size_t n = ct.n();
  if (!occurrences_fit(rk, n)) return error(CpAbeErrc::kBadRekeySet);

  Ciphertext out = ct;
  std::vector<G1>& e = CiphertextAccess::components(out);
  for (const ReKeyEntry& entry : rk.entries) {
    // Occurrence k re-keys +i (k = i) or ¬i (k = n + i); only a literal of that sign uses it.
    const bool negative = entry.occurrence >= n;
    const std::size_t i = negative ? entry.occurrence - n : entry.occurrence;
    if (ct.policy().lits[i] == (negative ? Literal::kNeg : Literal::kPos)) {
      e[i] = e[i] * entry.factor;
    }
  }
  CiphertextAccess::version(out) = rk.to;
  return out;
}

std::expected<UserKey, CpAbeError> update_key(const UserKey& sk, const ReKey& rk) {
  if (!well_formed(sk) || !well_formed(rk)) return error(CpAbeErrc::kMalformed);
  if (sk.sys_id != rk.sys_id) return error(CpAbeErrc::kWrongSystem);
  if (sk.version != rk.from) return error(CpAbeErrc::kVersionMismatch, sk.version, rk.from);
  const std::size_t n = sk.n();
  if (!occurrences_fit(rk, n)) return error(CpAbeErrc::kBadRekeySet);

  UserKey out = sk;
  for (const ReKeyEntry& entry : rk.entries) {
    // D_i is built on occurrence i if i ∈ S, on n + i otherwise (S is public).
    const bool negative = entry.occurrence >= n;
    const std::size_t i = negative ? entry.occurrence - n : entry.occurrence;
    if (sk.s[i] != negative) {
      Fr inverse = entry.factor.inverse();
      out.d[i] = out.d[i] * inverse;
      wipe(inverse);
    }
  }
  out.version = rk.to;
  return out;
}

}  // namespace mchain::abe::cpabe
