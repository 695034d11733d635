// G2 of BLS12-381: the order-r subgroup of E'(Fp2), E': y^2 = x^3 + 4(u+1), the M-type sextic
// twist (notes on pairings, section 1; draft-irtf-cfrg-pairing-friendly-curves). Points are
// projective (abe/pairing/curve.h); this header adds the generator, the subgroup check and the
// ZCash compressed encoding, as g1.h does for G1.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <span>

#include "abe/pairing/curve.h"
#include "abe/pairing/fields.h"
#include "abe/pairing/fp2.h"

namespace mchain::abe {

// An affine point of E'; infinity marks the identity (x = y = 0 from to_affine, ignored by
// from_affine).
struct G2Affine {
  Fp2 x;
  Fp2 y;
  bool infinity = false;
};

class G2 : public ProjectivePoint<G2, Fp2, G2Affine> {
 public:
  static constexpr std::size_t kCompressedSize = 96;
  using Compressed = std::array<std::uint8_t, kCompressedSize>;

  // The standard generator (draft-irtf-cfrg-pairing-friendly-curves, BLS12-381 "G2"),
  // x = x0 + x1·u, y = y0 + y1·u.
  static G2 generator() {
    static const G2 g = make(
        Fp2{curve_detail::fp_from_hex("024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae"
                                      "3d1770bac0326a805bbefd48056c8c121bdb8"),
            curve_detail::fp_from_hex("13e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7"
                                      "f5049334cf11213945d57e5ac7d055d042b7e")},
        Fp2{curve_detail::fp_from_hex("0ce5d527727d6e118cc9cdc6da2e351aadfd9baa8cbdd3a76d429a69516"
                                      "0d12c923ac9cc3baca289e193548608b82801"),
            curve_detail::fp_from_hex("0606c4a02ea734cc32acd2b02bc28b99cb3e287e85a763af267492ab572"
                                      "e99ab3f370d275cec1da1aaa9075ff05f79be")},
        Fp2::one());
    return g;
  }

  // The untwist-Frobenius-twist endomorphism psi(x, y) = (conj(x)·c1, conj(y)·c2) with
  // c1 = 1/(u+1)^((p-1)/3) and c2 = 1/(u+1)^((p-1)/2); conj is the p-power Frobenius of Fp2. On
  // projective coordinates Z is conjugated too. On G2 it acts as multiplication by x (that is
  // the subgroup test below).
  G2 psi() const {
    return make(x().conjugate() * psi_c1(), y().conjugate() * psi_c2(), z().conjugate());
  }

  // Whether the point lies in the order-r subgroup: psi(P) == [x]P (eprint 2021/1130 section 4;
  // proof completed in eprint 2022/352), one multiplication by the 64-bit |x| instead of one by
  // the 255-bit r. The tests compare it with [r]P == O. Constant time in P. The identity passes.
  bool is_torsion_free() const { return psi() == mul_by_x(); }

  // The ZCash compressed encoding: x1 then x0, each big-endian in 48 bytes; the top three bits
  // of byte 0 are C (always 1), I (infinity) and S (y is lexicographically largest: y1 decides,
  // y0 when y1 = 0). The identity is 0xc0 followed by 95 zero bytes. Constant time.
  Compressed to_compressed() const {
    const G2Affine a = to_affine();
    const Fp::Encoded x1 = a.x.c1.to_bytes();
    const Fp::Encoded x0 = a.x.c0.to_bytes();
    Compressed out;
    for (std::size_t i = 0; i < x1.size(); ++i) {
      out[i] = x1[i];
      out[x1.size() + i] = x0[i];
    }
    out[0] |= static_cast<std::uint8_t>(0x80 | (std::uint8_t{a.infinity} << 6) |
                                        (std::uint8_t{a.y.lexicographically_largest()} << 5));
    return out;
  }

  // Decodes to_compressed's format, refusing (in this order) a wrong length, C = 0, the infinity
  // flag with any other bit set, x1 or x0 >= p, an x with no point, and a point outside the
  // order-r subgroup. Every point has exactly one accepted encoding. The encoding is public:
  // the checks branch on it.
  static std::expected<G2, PointError> from_compressed(std::span<const std::uint8_t> bytes) {
    if (bytes.size() != kCompressedSize) return std::unexpected(PointError::kLength);
    const bool compressed = (bytes[0] & 0x80) != 0;
    const bool infinity = (bytes[0] & 0x40) != 0;
    const bool sign = (bytes[0] & 0x20) != 0;
    if (!compressed) return std::unexpected(PointError::kFlags);
    std::array<std::uint8_t, 48> x1_bytes;
    std::array<std::uint8_t, 48> x0_bytes;
    for (std::size_t i = 0; i < 48; ++i) {
      x1_bytes[i] = bytes[i];
      x0_bytes[i] = bytes[48 + i];
    }
    x1_bytes[0] &= 0x1f;
    if (infinity) {
      std::uint8_t any = sign ? 1 : 0;
      for (std::size_t i = 0; i < 48; ++i) any |= x1_bytes[i] | x0_bytes[i];
      if (any != 0) return std::unexpected(PointError::kFlags);
      return identity();
    }
    const std::optional<Fp> x1 = Fp::from_bytes(x1_bytes);
    const std::optional<Fp> x0 = Fp::from_bytes(x0_bytes);
    if (!x1 || !x0) return std::unexpected(PointError::kNotInField);
    const Fp2 x{*x0, *x1};
    const std::optional<Fp2> y = (x.square() * x + b()).sqrt();
    if (!y) return std::unexpected(PointError::kNotOnCurve);
    const G2 p = make(x, Fp2::select(*y, -*y, y->lexicographically_largest() != sign), Fp2::one());
    if (!p.is_torsion_free()) return std::unexpected(PointError::kNotInSubgroup);
    return p;
  }

 private:
  friend class ProjectivePoint<G2, Fp2, G2Affine>;

  // b = 4(u + 1)
  static Fp2 b() {
    static const Fp2 v{Fp::from_u64(4), Fp::from_u64(4)};
    return v;
  }
  // a·3b = a·12(u + 1): the non-residue multiplication, then ·12 by additions.
  static Fp2 mul_by_3b(const Fp2& a) {
    const Fp2 t = a.mul_by_nonresidue();
    const Fp2 t2 = t + t;
    const Fp2 t4 = t2 + t2;
    const Fp2 t8 = t4 + t4;
    return t8 + t4;
  }
  // psi's constants, computed from their definitions with Python (the tests recompute them with
  // Fp2::pow and Fp2::inverse).
  static const Fp2& psi_c1() {
    static const Fp2 v{Fp::zero(), curve_detail::fp_from_hex(
                                       "1a0111ea397fe699ec02408663d4de85aa0d857d89759ad4897d29650"
                                       "fb85f9b409427eb4f49fffd8bfd00000000aaad")};
    return v;
  }
  static const Fp2& psi_c2() {
    static const Fp2 v{
        curve_detail::fp_from_hex("135203e60180a68ee2e9c448d77a2cd91c3dedd930b1cf60"
                                  "ef396489f61eb45e304466cf3e67fa0af1ee7b04121bdea2"),
        curve_detail::fp_from_hex("06af0e0437ff400b6831e36d6bd17ffe48395dabc2d3435e"
                                  "77f76e17009241c5ee67992f72ec05f4c81084fbede3cc09")};
    return v;
  }
};

}  // namespace mchain::abe
