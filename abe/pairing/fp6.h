// Fp6 = Fp2[v]/(v^3 - ξ) with ξ = 1 + u, the middle floor of BLS12-381's extension tower
// (Fp12 = Fp6[w]/(w^2 - v) is built on it, abe/pairing/fp12.h). Elements are c0 + c1·v + c2·v^2.
//
// Constant time as Fp2 is: every operation is a fixed sequence of Fp2 operations, whatever the
// values; only the inverse of zero is special (it maps to zero, as in Fp and Fp2).
//
// Cost in Fp2 multiplications (M) and squarings (S; an Fp2 M is 3 Fp multiplications, an S 2):
// product 6M, square 2M+3S, mul_by_01 5M, mul_by_1 3M, frobenius 4 Fp multiplications.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "abe/pairing/fp2.h"

namespace mchain::abe {

namespace detail {

// An Fp from the little-endian limbs of its value (not of its Montgomery form). Only for the
// constants below, which are < p (tests/abe/tower_test.cc recomputes them); anything else would
// come out as zero.
inline Fp fp_from_value_limbs(const std::array<std::uint64_t, 6>& limbs) {
  std::array<std::uint8_t, Fp::kBytes> bytes{};
  for (std::size_t k = 0; k < Fp::kBytes; ++k) {
    bytes[Fp::kBytes - 1 - k] = static_cast<std::uint8_t>(limbs[k / 8] >> (8 * (k % 8)));
  }
  return Fp::from_bytes(bytes).value_or(Fp::zero());
}

// a · s for s in Fp: two Fp multiplications instead of an Fp2 product's three.
inline Fp2 mul_by_fp(const Fp2& a, const Fp& s) { return {a.c0 * s, a.c1 * s}; }

// The Frobenius coefficients γ_k = ξ^(k(p-1)/6), k = 0..5 (γ_0 = 1); 6 divides p - 1.
//
// Why: the tower is Fp2[w]/(w^6 - ξ) (w^2 = v), so an element is Σ g_k w^k with g_k in Fp2, and
// (g w^k)^p = g^p · w^(kp) = conj(g) · w^k · (w^6)^(k(p-1)/6) = conj(g) · γ_k · w^k. A coefficient
// of v^j is a coefficient of w^(2j) (γ_0, γ_2, γ_4); Fp12's c1 holds those of w^(2j+1).
//
// The values (little-endian limbs of the integers, not Montgomery form) were computed with
// Python (integer arithmetic in Fp2, ξ raised by square-and-multiply) and agree with the
// Montgomery-form constants in zkcrypto/bls12_381 src/fp6.rs and src/fp12.rs (frobenius_map);
// tests/abe/tower_test.cc recomputes each as a power of ξ. Fp6's Frobenius uses that γ_2 = c·u
// and γ_4 = d lie on the axes (a multiplication by an Fp each).
inline const std::array<Fp2, 6>& frobenius_gammas() {
  static const std::array<Fp2, 6> gammas = {
      Fp2::one(),
      // γ_1, both coordinates nonzero
      Fp2{fp_from_value_limbs({0x8d0775ed92235fb8, 0xf67ea53d63e7813d, 0x7b2443d784bab9c4,
                               0x0fd603fd3cbd5f4f, 0xc231beb4202c0d1f, 0x1904d3bf02bb0667}),
          fp_from_value_limbs({0x2cf78a126ddc4af3, 0x282d5ac14d6c7ec2, 0xec0c8ec971f63c5f,
                               0x54a14787b6c7b36f, 0x88e9e902231f9fb8, 0x00fc3e2b36c4e032})},
      // γ_2 = c·u
      Fp2{Fp::zero(),
          fp_from_value_limbs({0x8bfd00000000aaac, 0x409427eb4f49fffd, 0x897d29650fb85f9b,
                               0xaa0d857d89759ad4, 0xec02408663d4de85, 0x1a0111ea397fe699})},
      // γ_3 = c'(1 + u)
      Fp2{fp_from_value_limbs({0xc81084fbede3cc09, 0xee67992f72ec05f4, 0x77f76e17009241c5,
                               0x48395dabc2d3435e, 0x6831e36d6bd17ffe, 0x06af0e0437ff400b}),
          fp_from_value_limbs({0xc81084fbede3cc09, 0xee67992f72ec05f4, 0x77f76e17009241c5,
                               0x48395dabc2d3435e, 0x6831e36d6bd17ffe, 0x06af0e0437ff400b})},
      // γ_4 = d (= c + 1)
      Fp2{fp_from_value_limbs({0x8bfd00000000aaad, 0x409427eb4f49fffd, 0x897d29650fb85f9b,
                               0xaa0d857d89759ad4, 0xec02408663d4de85, 0x1a0111ea397fe699}),
          Fp::zero()},
      // γ_5, both coordinates nonzero
      Fp2{fp_from_value_limbs({0x9b18fae980078116, 0xc63a3e6e257f8732, 0x8beadf4d8e9c0566,
                               0xf39816240c0b8fee, 0xdf47fa6b48b1e045, 0x05b2cfd9013a5fd8}),
          fp_from_value_limbs({0x1ee605167ff82995, 0x5871c1908bd478cd, 0xdb45f3536814f0bd,
                               0x70df3560e77982d0, 0x6bd3ad4afa99cc91, 0x144e4211384586c1})},
  };
  return gammas;
}

}  // namespace detail

struct Fp6 {
  Fp2 c0;
  Fp2 c1;
  Fp2 c2;

  static Fp6 zero() { return {}; }
  static Fp6 one() { return {Fp2::one(), Fp2::zero(), Fp2::zero()}; }

  friend Fp6 operator+(const Fp6& a, const Fp6& b) {
    return {a.c0 + b.c0, a.c1 + b.c1, a.c2 + b.c2};
  }
  friend Fp6 operator-(const Fp6& a, const Fp6& b) {
    return {a.c0 - b.c0, a.c1 - b.c1, a.c2 - b.c2};
  }
  Fp6 operator-() const { return {-c0, -c1, -c2}; }

  // Karatsuba over v with v^3 = ξ (6M instead of 9): with t_i = a_i b_i,
  //   c0 = t0 + ξ((a1 + a2)(b1 + b2) - t1 - t2)
  //   c1 = (a0 + a1)(b0 + b1) - t0 - t1 + ξ t2
  //   c2 = (a0 + a2)(b0 + b2) - t0 - t2 + t1
  friend Fp6 operator*(const Fp6& a, const Fp6& b) {
    const Fp2 t0 = a.c0 * b.c0;
    const Fp2 t1 = a.c1 * b.c1;
    const Fp2 t2 = a.c2 * b.c2;
    return {t0 + ((a.c1 + a.c2) * (b.c1 + b.c2) - t1 - t2).mul_by_nonresidue(),
            (a.c0 + a.c1) * (b.c0 + b.c1) - t0 - t1 + t2.mul_by_nonresidue(),
            (a.c0 + a.c2) * (b.c0 + b.c2) - t0 - t2 + t1};
  }
  Fp6& operator+=(const Fp6& b) { return *this = *this + b; }
  Fp6& operator-=(const Fp6& b) { return *this = *this - b; }
  Fp6& operator*=(const Fp6& b) { return *this = *this * b; }

  // Chung–Hasan SQR2 (2M + 3S instead of 6M): a^2 = (a0^2 + 2ξ a1 a2) + (2 a0 a1 + ξ a2^2) v
  // + (a1^2 + 2 a0 a2) v^2, where the last coefficient comes from
  // (a0 - a1 + a2)^2 = a0^2 + a1^2 + a2^2 - 2 a0 a1 + 2 a0 a2 - 2 a1 a2.
  Fp6 square() const {
    const Fp2 s0 = c0.square();
    const Fp2 t01 = c0 * c1;
    const Fp2 s1 = t01 + t01;
    const Fp2 s2 = (c0 - c1 + c2).square();
    const Fp2 t12 = c1 * c2;
    const Fp2 s3 = t12 + t12;
    const Fp2 s4 = c2.square();
    return {s0 + s3.mul_by_nonresidue(), s1 + s4.mul_by_nonresidue(), s1 + s2 + s3 - s0 - s4};
  }

  // a · v = ξ a2 + a0 v + a1 v^2 (v^3 = ξ): a rotation and one cheap ξ multiplication. The
  // non-residue Fp12 = Fp6[w]/(w^2 - v) is built with.
  Fp6 mul_by_nonresidue() const { return {c2.mul_by_nonresidue(), c0, c1}; }

  // a · (b1 v) = ξ a2 b1 + a0 b1 v + a1 b1 v^2: 3M.
  Fp6 mul_by_1(const Fp2& b1) const { return {(c2 * b1).mul_by_nonresidue(), c0 * b1, c1 * b1}; }

  // a · (b0 + b1 v) = (a0 b0 + ξ a2 b1) + (a0 b1 + a1 b0) v + (a1 b1 + a2 b0) v^2, with the
  // middle coefficient by Karatsuba: 5M instead of 6.
  Fp6 mul_by_01(const Fp2& b0, const Fp2& b1) const {
    const Fp2 t0 = c0 * b0;
    const Fp2 t1 = c1 * b1;
    return {t0 + (c2 * b1).mul_by_nonresidue(), (c0 + c1) * (b0 + b1) - t0 - t1, t1 + c2 * b0};
  }

  // a^p = conj(a0) + conj(a1) γ_2 v + conj(a2) γ_4 v^2 (see detail::frobenius_gammas), with
  Fp6 frobenius() const {
    const auto& gamma = detail::frobenius_gammas();
    const Fp2 b1 = c1.conjugate();
    const Fp& c = gamma[2].c1;
    return {c0.conjugate(), Fp2{-(b1.c1 * c), b1.c0 * c},
            detail::mul_by_fp(c2.conjugate(), gamma[4].c0)};
  }

  // a^-1 = (A + B v + C v^2) / F with A = a0^2 - ξ a1 a2, B = ξ a2^2 - a0 a1, C = a1^2 - a0 a2
  // and F = a0 A + ξ(a2 B + a1 C) in Fp2 (a times the adjugate: a·(A + B v + C v^2) = F). Zero
  // maps to zero, because F = 0 and Fp2's inverse maps 0 to 0.
  Fp6 inverse() const {
    const Fp2 a = c0.square() - (c1 * c2).mul_by_nonresidue();
    const Fp2 b = c2.square().mul_by_nonresidue() - c0 * c1;
    const Fp2 c = c1.square() - c0 * c2;
    const Fp2 f_inv = (c0 * a + (c2 * b + c1 * c).mul_by_nonresidue()).inverse();
    return {a * f_inv, b * f_inv, c * f_inv};
  }

  bool is_zero() const { return c0.is_zero() & c1.is_zero() & c2.is_zero(); }
  friend bool operator==(const Fp6& a, const Fp6& b) {
    return (a.c0 == b.c0) & (a.c1 == b.c1) & (a.c2 == b.c2);
  }

  // b if choose_b, else a, by mask.
  static Fp6 select(const Fp6& a, const Fp6& b, bool choose_b) {
    return {Fp2::select(a.c0, b.c0, choose_b), Fp2::select(a.c1, b.c1, choose_b),
            Fp2::select(a.c2, b.c2, choose_b)};
  }
};

}  // namespace mchain::abe
