// Shared by the cpabe implementation files only: wire reading and writing, the domain-separation
// tags, the fixed-base multiplication tables, the Ciphertext's internals and secret wiping.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "abe/cpabe/cpabe.h"

namespace mchain::abe::cpabe {

// Format bytes: the first byte of every encoding, so that no encoding of one kind parses as
// another.
inline constexpr std::uint8_t kFormatCiphertext = 0x01;
inline constexpr std::uint8_t kFormatKemCiphertext = 0x02;
inline constexpr std::uint8_t kFormatPublicKey = 0x10;
inline constexpr std::uint8_t kFormatMasterKey = 0x11;
inline constexpr std::uint8_t kFormatUserKey = 0x12;
inline constexpr std::uint8_t kFormatReKey = 0x13;

inline constexpr std::size_t kSignatureSize = 64;
inline constexpr std::size_t kVerificationKeySize = 32;

// Domain-separation tags (docs/cpabe.md §2.4).
inline constexpr std::string_view kTagVerificationKey = "MCHAIN-CPABE-V1 vk";
inline constexpr std::string_view kTagKem = "MCHAIN-CPABE-V1 kem";
inline constexpr std::string_view kTagSignature = "MCHAIN-CPABE-V1 ots";

inline std::unexpected<CpAbeError> error(CpAbeErrc code, std::uint32_t have = 0,
                                         std::uint32_t want = 0) {
  return std::unexpected(CpAbeError{code, have, want});
}

// Appends big-endian integers, bytes and compressed points.
class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    u8(static_cast<std::uint8_t>(v >> 8));
    u8(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  void bytes(ByteView b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void bytes(std::string_view s) { bytes(as_bytes(s)); }
  void point(const G1& p) { bytes(p.to_compressed()); }
  void point(const G2& p) { bytes(p.to_compressed()); }
  void scalar(const Fr& a) { bytes(a.to_bytes()); }
  void gt(const Gt& a) { bytes(a.to_bytes()); }
  std::size_t size() const { return out_.size(); }
  Bytes take() { return std::move(out_); }

 private:
  Bytes out_;
};

// Reads what Writer writes. Every read reports failure (short input, an invalid point or scalar)
// through its result; the encodings are public, so the checks may branch.
class Reader {
 public:
  explicit Reader(ByteView in) : in_(in) {}

  std::optional<ByteView> bytes(std::size_t n) {
    if (in_.size() - pos_ < n) return std::nullopt;
    const ByteView out = in_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  std::optional<std::uint8_t> u8() {
    const auto b = bytes(1);
    if (!b) return std::nullopt;
    return (*b)[0];
  }
  std::optional<std::uint16_t> u16() {
    const auto b = bytes(2);
    if (!b) return std::nullopt;
    return static_cast<std::uint16_t>(((*b)[0] << 8) | (*b)[1]);
  }
  std::optional<std::uint32_t> u32() {
    const auto b = bytes(4);
    if (!b) return std::nullopt;
    return (std::uint32_t{(*b)[0]} << 24) | (std::uint32_t{(*b)[1]} << 16) |
           (std::uint32_t{(*b)[2]} << 8) | std::uint32_t{(*b)[3]};
  }
  template <std::size_t N>
  std::optional<std::array<std::uint8_t, N>> array() {
    const auto b = bytes(N);
    if (!b) return std::nullopt;
    std::array<std::uint8_t, N> out;
    std::memcpy(out.data(), b->data(), N);
    return out;
  }
  // A point of the order-r subgroup other than the identity (none of the scheme's elements is
  // the identity except with negligible probability, and an identity would pair to 1).
  template <typename G>
  std::optional<G> point() {
    const auto b = bytes(G::kCompressedSize);
    if (!b) return std::nullopt;
    const auto p = G::from_compressed(*b);
    if (!p || p->is_identity()) return std::nullopt;
    return *p;
  }
  template <typename G>
  bool points(std::size_t count, std::vector<G>& out) {
    out.clear();
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      const auto p = point<G>();
      if (!p) return false;
      out.push_back(*p);
    }
    return true;
  }
  // A canonical scalar (< r).
  std::optional<Fr> scalar() {
    const auto b = bytes(Fr::kBytes);
    if (!b) return std::nullopt;
    return Fr::from_bytes(*b);
  }

  std::size_t position() const { return pos_; }
  bool at_end() const { return pos_ == in_.size(); }

 private:
  ByteView in_;
  std::size_t pos_ = 0;
};

// [k]B for a fixed base B with a precomputed table: row i holds [d·16^i]B for d = 0..15, and
// [k]B is the sum over the 64 nibbles k_i of row i's entry k_i. Each entry is read by scanning the
// whole row with selects, and the complete addition formulas take the identity (d = 0) like any
// point, so the cost is 64 additions and 1024 selects whatever k is. About three times faster
// than G::operator* (256 doublings + 64 additions); used for every multiple of g1 and g2.
template <typename G>
class FixedBase {
 public:
  explicit FixedBase(const G& base) {
    G row_base = base;  // [16^i]B
    for (auto& row : table_) {
      row[0] = G::identity();
      for (std::size_t d = 1; d < row.size(); ++d) row[d] = row[d - 1] + row_base;
      row_base = row[15] + row_base;
    }
  }

  G mul(const Fr& k) const {
    const Fr::Encoded bytes = k.to_bytes();  // big-endian: nibble i is in byte 31 − i/2
    G acc = G::identity();
    for (std::size_t i = 0; i < table_.size(); ++i) {
      const std::uint64_t byte = bytes[bytes.size() - 1 - i / 2];
      const std::uint64_t nibble = (i % 2 == 0 ? byte : byte >> 4) & 0xf;
      G entry = table_[i][0];
      for (std::uint64_t d = 1; d < 16; ++d) {
        entry = G::select(entry, table_[i][d], detail::is_zero_bit(d ^ nibble) == 1);
      }
      acc += entry;
    }
    return acc;
  }

 private:
  std::array<std::array<G, 16>, 64> table_;
};

// The tables for the standard generators, built on first use (thread-safe static init).
const FixedBase<G1>& g1_table();
const FixedBase<G2>& g2_table();

// A uniform non-zero scalar: zero is redrawn (that branch reveals only that a draw was zero).
Fr random_nonzero_scalar();

// Best-effort erasure of a secret in memory (a dead store the compiler may not remove).
void wipe(void* data, std::size_t size);
template <typename T>
void wipe(T& value) {
  wipe(&value, sizeof value);
}

// The Ciphertext's internals for the implementation files.
struct CiphertextAccess {
  // Parses a sealed part (everything but the signature and versioned part) into ct, checking
  // it as from_bytes does. Returns the number of bytes the sealed part takes in `bytes`.
  static std::expected<std::size_t, CpAbeError> parse_sealed(ByteView bytes, Ciphertext& ct);

  // A ciphertext from parts the caller has just computed (encrypt), without re-decoding them.
  struct Parts {
    Bytes sealed;
    std::size_t header_size = 0;
    Hash256 sys_id{};
    Policy policy;
    Hash256 ct_id{};
    G1 e_star;
    std::vector<G1> k;
    std::array<std::uint8_t, 32> kv{};
    std::array<std::uint8_t, 64> signature{};
    std::uint32_t version = 1;
    std::vector<G1> e;
  };
  static Ciphertext make(Parts parts) {
    Ciphertext ct;
    ct.sealed_ = std::move(parts.sealed);
    ct.header_size_ = parts.header_size;
    ct.sys_id_ = parts.sys_id;
    ct.policy_ = std::move(parts.policy);
    ct.ct_id_ = parts.ct_id;
    ct.e_star_ = parts.e_star;
    ct.k_ = std::move(parts.k);
    ct.kv_ = parts.kv;
    ct.signature_ = parts.signature;
    ct.version_ = parts.version;
    ct.e_ = std::move(parts.e);
    return ct;
  }

  static Bytes& sealed(Ciphertext& ct) { return ct.sealed_; }
  static std::array<std::uint8_t, 64>& signature(Ciphertext& ct) { return ct.signature_; }
  static const std::array<std::uint8_t, 64>& signature(const Ciphertext& ct) {
    return ct.signature_;
  }
  static std::uint32_t& version(Ciphertext& ct) { return ct.version_; }
  static std::vector<G1>& components(Ciphertext& ct) { return ct.e_; }
  static const G1& e_star(const Ciphertext& ct) { return ct.e_star_; }
  static const std::vector<G1>& k(const Ciphertext& ct) { return ct.k_; }
  static const std::array<std::uint8_t, 32>& kv(const Ciphertext& ct) { return ct.kv_; }
  static ByteView header(const Ciphertext& ct) {
    return ByteView(ct.sealed_).first(ct.header_size_);
  }
  static ByteView body(const Ciphertext& ct) {
    return ByteView(ct.sealed_).subspan(ct.header_size_);
  }
  // The nonce sits just before L in the header of a ciphertext with payload.
  static crypto::AeadNonce nonce(const Ciphertext& ct) {
    crypto::AeadNonce out;
    std::memcpy(out.data(), ct.sealed_.data() + ct.header_size_ - 4 - out.size(), out.size());
    return out;
  }
};

// Whether a name is allowed in a universe (the grammar of setup).
bool valid_name(std::string_view name);

// The parameter ranges of setup, also enforced by the decoders.
inline bool valid_w(std::size_t w) { return w >= 8 && w <= kMaxSignatureBits && w % 8 == 0; }
inline bool valid_n(std::size_t n) { return n >= 1 && n <= kMaxUniverse; }

}  // namespace mchain::abe::cpabe
