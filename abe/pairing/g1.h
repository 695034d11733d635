// G1 of BLS12-381: the order-r subgroup of E(Fp), E: y^2 = x^3 + 4 (notes on pairings, section
// 1; draft-irtf-cfrg-pairing-friendly-curves). Points are projective (abe/pairing/curve.h: the
// complete group law, constant-time scalar multiplication); this header adds the generator, the
// subgroup check and the ZCash compressed encoding.
//
// Typical use:
//   const G1 pk = G1::generator() * secret;                  // constant time in `secret`
//   const auto bytes = pk.to_compressed();                    // 48 bytes
//   std::expected<G1, PointError> back = G1::from_compressed(bytes);  // checks everything
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <span>

#include "abe/pairing/curve.h"
#include "abe/pairing/fields.h"
#include "abe/pairing/fp2.h"

namespace mchain::abe {

// An affine point of E; infinity marks the identity (whose x and y are then 0 as produced by
// to_affine, and ignored by from_affine).
struct G1Affine {
  Fp x;
  Fp y;
  bool infinity = false;
};

class G1 : public ProjectivePoint<G1, Fp, G1Affine> {
 public:
  static constexpr std::size_t kCompressedSize = 48;
  using Compressed = std::array<std::uint8_t, kCompressedSize>;

  // The standard generator (draft-irtf-cfrg-pairing-friendly-curves, BLS12-381 "G1").
  static G1 generator() {
    static const G1 g =
        make(curve_detail::fp_from_hex("17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f1"
                                       "71bac586c55e83ff97a1aeffb3af00adb22c6bb"),
             curve_detail::fp_from_hex("08b3f481e3aaa0f1a09e30ed741d8ae4fcf5e095d5d00af600db18cb2"
                                       "c04b3edd03cc744a2888ae40caa232946c5e7e1"),
             Fp::one());
    return g;
  }

  // The endomorphism phi(x, y) = (beta·x, y), beta a primitive cube root of unity in Fp. On G1
  // it acts as multiplication by -x^2 (a root of l^2 + l + 1 mod r); the choice of beta (of the
  // two) is the one for which that holds.
  G1 phi() const { return make(beta() * x(), y(), z()); }

  // Whether the point lies in the order-r subgroup: Scott's test phi(P) == -[x^2]P (eprint
  // 2021/1130 section 6; proof for BLS12-381 completed in eprint 2022/352), two multiplications by
  // the 64-bit |x| instead of one by the 255-bit r. The tests compare it with [r]P == O.
  // Constant time in P (mul_by_x branches only on the public x). The identity passes.
  bool is_torsion_free() const { return phi() == -mul_by_x().mul_by_x(); }

  // The ZCash compressed encoding: x big-endian in 48 bytes, with the top three bits of byte 0
  // being C (compressed, always 1), I (infinity) and S (y is lexicographically largest). The
  // identity is 0xc0 followed by zeros. Constant time.
  Compressed to_compressed() const {
    const G1Affine a = to_affine();
    Compressed out = a.x.to_bytes();  // p < 2^381: the top three bits are free
    out[0] |= static_cast<std::uint8_t>(0x80 | (std::uint8_t{a.infinity} << 6) |
                                        (std::uint8_t{lexicographically_largest(a.y)} << 5));
    return out;
  }

  // Decodes to_compressed's format, refusing (in this order) a wrong length, C = 0, the infinity
  // flag with any other bit set (only 0xc0 00..00 is the identity), x >= p, an x with no point,
  // and a point outside the order-r subgroup. Every point has exactly one accepted encoding.
  // The encoding is public: the checks branch on it.
  static std::expected<G1, PointError> from_compressed(std::span<const std::uint8_t> bytes) {
    if (bytes.size() != kCompressedSize) return std::unexpected(PointError::kLength);
    const bool compressed = (bytes[0] & 0x80) != 0;
    const bool infinity = (bytes[0] & 0x40) != 0;
    const bool sign = (bytes[0] & 0x20) != 0;
    if (!compressed) return std::unexpected(PointError::kFlags);
    std::array<std::uint8_t, kCompressedSize> x_bytes;
    for (std::size_t i = 0; i < kCompressedSize; ++i) x_bytes[i] = bytes[i];
    x_bytes[0] &= 0x1f;
    if (infinity) {
      std::uint8_t any = sign ? 1 : 0;
      for (std::uint8_t b : x_bytes) any |= b;
      if (any != 0) return std::unexpected(PointError::kFlags);
      return identity();
    }
    const std::optional<Fp> x = Fp::from_bytes(x_bytes);
    if (!x) return std::unexpected(PointError::kNotInField);
    const std::optional<Fp> y = (x->square() * *x + b()).sqrt();
    if (!y) return std::unexpected(PointError::kNotOnCurve);
    const G1 p = make(*x, Fp::select(*y, -*y, lexicographically_largest(*y) != sign), Fp::one());
    if (!p.is_torsion_free()) return std::unexpected(PointError::kNotInSubgroup);
    return p;
  }

 private:
  friend class ProjectivePoint<G1, Fp, G1Affine>;

  static Fp b() {
    static const Fp b4 = Fp::from_u64(4);
    return b4;
  }
  // a·12 by additions (3b = 12), cheaper than a multiplication.
  static Fp mul_by_3b(const Fp& a) {
    const Fp a2 = a + a;
    const Fp a4 = a2 + a2;
    const Fp a8 = a4 + a4;
    return a8 + a4;
  }
  // zkcrypto/bls12_381 src/g1.rs BETA (stored there in Montgomery form; this is its value).
  static Fp beta() {
    static const Fp v = curve_detail::fp_from_hex(
        "5f19672fdf76ce51ba69c6076a0f77eaddb3a93be6f89688de17d813620a00022e01fffffffefffe");
    return v;
  }
};

}  // namespace mchain::abe
