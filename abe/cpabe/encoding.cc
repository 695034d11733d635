// The byte encodings of cpabe.h (layouts there and in docs/cpabe.md §2.4, §8). Every decoder
// checks everything before returning an object: format byte, exact lengths, limits, canonical
// scalars, points in the order-r subgroup and not the identity, versions >= 1. Encodings are
// public, so the decoders branch on them freely.
#include <cstring>
#include <unordered_set>

#include "abe/cpabe/cpabe.h"
#include "abe/cpabe/internal.h"
#include "chain/crypto/hash.h"

namespace mchain::abe::cpabe {
namespace {

template <typename T>
void write_arrays(Writer& out, const AttributeArrays<T>& a) {
  for (const auto* v : {&a.pos, &a.neg, &a.any, &a.bit0, &a.bit1}) {
    for (const T& x : *v) {
      if constexpr (std::is_same_v<T, Fr>) {
        out.scalar(x);
      } else {
        out.point(x);
      }
    }
  }
}

bool read_point_arrays(Reader& in, std::size_t n, std::size_t w, AttributeArrays<G1>& a) {
  return in.points(n, a.pos) && in.points(n, a.neg) && in.points(n, a.any) &&
         in.points(w, a.bit0) && in.points(w, a.bit1);
}

// Non-zero canonical scalars (the t's: keys divide by them).
bool read_nonzero_scalars(Reader& in, std::size_t count, std::vector<Fr>& out) {
  out.clear();
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto a = in.scalar();
    if (!a || a->is_zero()) return false;
    out.push_back(*a);
  }
  return true;
}

// The common prefix of the key encodings: format ‖ sys_id ‖ version ‖ n ‖ w.
struct Prefix {
  Hash256 sys_id{};
  std::uint32_t version = 0;
  std::uint16_t n = 0;
  std::uint16_t w = 0;
};

std::optional<Prefix> read_prefix(Reader& in, std::uint8_t format) {
  const auto f = in.u8();
  const auto sys_id = in.array<32>();
  const auto version = in.u32();
  const auto n = in.u16();
  const auto w = in.u16();
  if (!f || *f != format || !sys_id || !version || *version == 0 || !n || !valid_n(*n) || !w ||
      !valid_w(*w)) {
    return std::nullopt;
  }
  return Prefix{*sys_id, *version, *n, *w};
}

void write_prefix(Writer& out, std::uint8_t format, const Hash256& sys_id, std::uint32_t version,
                  std::size_t n, std::uint16_t w) {
  out.u8(format);
  out.bytes(sys_id);
  out.u32(version);
  out.u16(static_cast<std::uint16_t>(n));
  out.u16(w);
}

}  // namespace

Bytes PublicKey::to_bytes() const {
  Writer out;
  write_prefix(out, kFormatPublicKey, sys_id, version, n(), w());
  for (const std::string& name : names) {
    out.u8(static_cast<std::uint8_t>(name.size()));
    out.bytes(name);
  }
  out.gt(y);
  write_arrays(out, t);
  return out.take();
}

std::expected<PublicKey, CpAbeError> PublicKey::from_bytes(ByteView bytes) {
  Reader in(bytes);
  const auto prefix = read_prefix(in, kFormatPublicKey);
  if (!prefix) return error(CpAbeErrc::kMalformed);
  PublicKey pk;
  pk.sys_id = prefix->sys_id;
  pk.version = prefix->version;
  std::unordered_set<std::string> seen;
  for (std::size_t i = 0; i < prefix->n; ++i) {
    const auto len = in.u8();
    if (!len) return error(CpAbeErrc::kMalformed);
    const auto name = in.bytes(*len);
    if (!name) return error(CpAbeErrc::kMalformed);
    std::string s(as_chars(*name));
    if (!valid_name(s) || !seen.insert(s).second) return error(CpAbeErrc::kMalformed);
    pk.names.push_back(std::move(s));
  }
  const auto y = in.bytes(Gt::kBytes);
  if (!y) return error(CpAbeErrc::kMalformed);
  const std::optional<Gt> gt = Gt::from_bytes(*y);
  if (!gt || gt->is_identity()) return error(CpAbeErrc::kMalformed);
  pk.y = *gt;
  if (!read_point_arrays(in, prefix->n, prefix->w, pk.t) || !in.at_end()) {
    return error(CpAbeErrc::kMalformed);
  }
  return pk;
}

Bytes MasterKey::to_bytes() const {
  Writer out;
  write_prefix(out, kFormatMasterKey, sys_id, version, n(), w());
  out.scalar(y);
  write_arrays(out, t);
  return out.take();
}

std::expected<MasterKey, CpAbeError> MasterKey::from_bytes(ByteView bytes) {
  Reader in(bytes);
  const auto prefix = read_prefix(in, kFormatMasterKey);
  if (!prefix) return error(CpAbeErrc::kMalformed);
  MasterKey mk;
  mk.sys_id = prefix->sys_id;
  mk.version = prefix->version;
  const auto y = in.scalar();
  if (!y) return error(CpAbeErrc::kMalformed);
  mk.y = *y;
  const std::size_t n = prefix->n;
  const std::size_t w = prefix->w;
  if (!read_nonzero_scalars(in, n, mk.t.pos) || !read_nonzero_scalars(in, n, mk.t.neg) ||
      !read_nonzero_scalars(in, n, mk.t.any) || !read_nonzero_scalars(in, w, mk.t.bit0) ||
      !read_nonzero_scalars(in, w, mk.t.bit1) || !in.at_end()) {
    return error(CpAbeErrc::kMalformed);
  }
  return mk;
}

Bytes UserKey::to_bytes() const {
  Writer out;
  write_prefix(out, kFormatUserKey, sys_id, version, n(), w());
  for (const bool b : s) out.u8(b ? 1 : 0);
  out.point(d_hat);
  for (const auto* v : {&d, &f, &bit0, &bit1}) {
    for (const G2& p : *v) out.point(p);
  }
  return out.take();
}

std::expected<UserKey, CpAbeError> UserKey::from_bytes(ByteView bytes) {
  Reader in(bytes);
  const auto prefix = read_prefix(in, kFormatUserKey);
  if (!prefix) return error(CpAbeErrc::kMalformed);
  UserKey sk;
  sk.sys_id = prefix->sys_id;
  sk.version = prefix->version;
  const auto s = in.bytes(prefix->n);
  if (!s) return error(CpAbeErrc::kMalformed);
  for (const std::uint8_t b : *s) {
    if (b > 1) return error(CpAbeErrc::kMalformed);
    sk.s.push_back(b == 1);
  }
  const auto d_hat = in.point<G2>();
  if (!d_hat) return error(CpAbeErrc::kMalformed);
  sk.d_hat = *d_hat;
  if (!in.points(prefix->n, sk.d) || !in.points(prefix->n, sk.f) ||
      !in.points(prefix->w, sk.bit0) || !in.points(prefix->w, sk.bit1) || !in.at_end()) {
    return error(CpAbeErrc::kMalformed);
  }
  return sk;
}

Bytes ReKey::to_bytes() const {
  Writer out;
  out.u8(kFormatReKey);
  out.bytes(sys_id);
  out.u32(from);
  out.u32(to);
  out.u16(static_cast<std::uint16_t>(entries.size()));
  for (const ReKeyEntry& e : entries) {
    out.u16(static_cast<std::uint16_t>(e.occurrence));
    out.scalar(e.factor);
  }
  return out.take();
}

std::expected<ReKey, CpAbeError> ReKey::from_bytes(ByteView bytes) {
  Reader in(bytes);
  const auto format = in.u8();
  const auto sys_id = in.array<32>();
  const auto from = in.u32();
  const auto to = in.u32();
  const auto count = in.u16();
  if (!format || *format != kFormatReKey || !sys_id || !from || *from == 0 || !to || *to <= *from ||
      !count || *count == 0 || *count > 2 * kMaxUniverse) {
    return error(CpAbeErrc::kMalformed);
  }
  ReKey rk;
  rk.sys_id = *sys_id;
  rk.from = *from;
  rk.to = *to;
  for (std::size_t i = 0; i < *count; ++i) {
    const auto occurrence = in.u16();
    const auto factor = in.scalar();
    if (!occurrence || !factor || factor->is_zero()) return error(CpAbeErrc::kMalformed);
    if (!rk.entries.empty() && *occurrence <= rk.entries.back().occurrence) {
      return error(CpAbeErrc::kMalformed);
    }
    rk.entries.push_back({*occurrence, *factor});
  }
  if (!in.at_end()) return error(CpAbeErrc::kMalformed);
  return rk;
}

std::expected<std::size_t, CpAbeError> CiphertextAccess::parse_sealed(ByteView bytes,
                                                                      Ciphertext& ct) {
  Reader in(bytes);
  const auto format = in.u8();
  const auto sys_id = in.array<32>();
  const auto n = in.u16();
  const auto w = in.u16();
  if (!format || (*format != kFormatCiphertext && *format != kFormatKemCiphertext) || !sys_id ||
      !n || !valid_n(*n) || !w || !valid_w(*w)) {
    return error(CpAbeErrc::kMalformed);
  }
  ct.sys_id_ = *sys_id;
  const auto as = in.bytes(*n);
  if (!as) return error(CpAbeErrc::kMalformed);
  ct.policy_.lits.clear();
  bool any_literal = false;
  for (const std::uint8_t b : *as) {
    if (b > 2) return error(CpAbeErrc::kMalformed);
    any_literal |= b != 0;
    ct.policy_.lits.push_back(static_cast<Literal>(b));
  }
  if (!any_literal) return error(CpAbeErrc::kMalformed);
  const auto ct_id = in.array<32>();
  if (!ct_id) return error(CpAbeErrc::kMalformed);
  ct.ct_id_ = *ct_id;
  const auto e_star = in.point<G1>();
  if (!e_star) return error(CpAbeErrc::kMalformed);
  ct.e_star_ = *e_star;
  if (!in.points(*w, ct.k_)) return error(CpAbeErrc::kMalformed);
  const auto kv = in.array<kVerificationKeySize>();
  if (!kv) return error(CpAbeErrc::kMalformed);
  ct.kv_ = *kv;
  if (*format == kFormatCiphertext) {
    const auto nonce = in.bytes(crypto::kAeadNonceSize);
    const auto length = in.u32();
    if (!nonce || !length) return error(CpAbeErrc::kMalformed);
    ct.header_size_ = in.position();
    if (!in.bytes(std::size_t{*length} + crypto::kAeadTagSize)) {
      return error(CpAbeErrc::kMalformed);
    }
  } else {
    ct.header_size_ = in.position();
  }
  ct.sealed_.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(in.position()));
  return in.position();
}

std::expected<Ciphertext, CpAbeError> Ciphertext::from_bytes(ByteView bytes) {
  Ciphertext ct;
  const auto sealed_size = CiphertextAccess::parse_sealed(bytes, ct);
  if (!sealed_size) return std::unexpected(sealed_size.error());
  Reader in(bytes.subspan(*sealed_size));
  const auto signature = in.array<kSignatureSize>();
  const auto version = in.u32();
  if (!signature || !version || *version == 0) return error(CpAbeErrc::kMalformed);
  ct.signature_ = *signature;
  ct.version_ = *version;
  if (!in.points(ct.n(), ct.e_) || !in.at_end()) return error(CpAbeErrc::kMalformed);
  return ct;
}

Bytes Ciphertext::to_bytes() const {
  Writer out;
  out.bytes(sealed_);
  out.bytes(signature_);
  out.u32(version_);
  for (const G1& e : e_) out.point(e);
  return out.take();
}

std::size_t Ciphertext::payload_size() const {
  return has_payload() ? sealed_.size() - header_size_ - crypto::kAeadTagSize : 0;
}

Hash256 Ciphertext::digest() const { return crypto::sha256(sealed_); }

}  // namespace mchain::abe::cpabe
