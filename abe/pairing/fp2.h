// Fp2 = Fp[u]/(u^2 + 1), the first floor of BLS12-381's extension tower (Fp6 and Fp12 are
// built on it) and the field of G2's coordinates. Elements are c0 + c1·u.
//
// Constant time as Fp is: every operation is a fixed sequence of Fp operations; only inverse
// of zero is special (it maps to zero, as in Fp). pow branches on its (public) exponent; sqrt
// uses fixed exponents and reveals only whether a root exists.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "abe/pairing/fields.h"

namespace mchain::abe {

namespace fp2_detail {

// p >> shift, for the fixed exponents of Fp2::sqrt (public values).
constexpr std::array<std::uint64_t, 6> modulus_shifted_right(unsigned shift) {
  const std::array<std::uint64_t, 6>& m = FpParams::kModulus;
  std::array<std::uint64_t, 6> out{};
  for (std::size_t i = 0; i < 6; ++i) {
    out[i] = (m[i] >> shift) | (i + 1 < 6 ? m[i + 1] << (64 - shift) : 0);
  }
  return out;
}

// (p + 1)/2 = (p >> 1) + 1 (p is odd; no carry out of the low limb, which is not all ones).
constexpr std::array<std::uint64_t, 6> half_modulus_plus_one() {
  std::array<std::uint64_t, 6> out = modulus_shifted_right(1);
  out[0] += 1;
  return out;
}

}  // namespace fp2_detail

// True when a's canonical value is greater than (p-1)/2, i.e. when a > -a as integers in
// [0, p): the "sign" of a y-coordinate in the ZCash point encoding (zero is not largest).
// Constant time: a borrow chain over the canonical limbs, no early exit.
inline bool lexicographically_largest(const Fp& a) {
  static constexpr std::array<std::uint64_t, 6> kHalfPlusOne = fp2_detail::half_modulus_plus_one();
  const Fp::Encoded bytes = a.to_bytes();  // canonical value, big-endian
  std::uint64_t borrow = 0;
  for (std::size_t i = 0; i < 6; ++i) {
    std::uint64_t limb = 0;
    for (std::size_t k = 0; k < 8; ++k) limb |= std::uint64_t{bytes[47 - 8 * i - k]} << (8 * k);
    const std::uint64_t half = kHalfPlusOne[i];
    const std::uint64_t d = limb - half - borrow;
    // Borrow out of limb - half - borrow (Hacker's Delight 2-13), without a comparison.
    borrow = ((~limb & half) | (~(limb ^ half) & d)) >> 63;
  }
  // a - (p+1)/2 borrows iff a <= (p-1)/2.
  return borrow == 0;
}

struct Fp2 {
  Fp c0;
  Fp c1;

  static Fp2 zero() { return {}; }
  static Fp2 one() { return {Fp::one(), Fp::zero()}; }

  friend Fp2 operator+(const Fp2& a, const Fp2& b) { return {a.c0 + b.c0, a.c1 + b.c1}; }
  friend Fp2 operator-(const Fp2& a, const Fp2& b) { return {a.c0 - b.c0, a.c1 - b.c1}; }
  Fp2 operator-() const { return {-c0, -c1}; }

  // Karatsuba: (a0 + a1 u)(b0 + b1 u) = (a0 b0 - a1 b1) + ((a0 + a1)(b0 + b1) - a0 b0 - a1 b1) u,
  // three Fp multiplications instead of four.
  friend Fp2 operator*(const Fp2& a, const Fp2& b) {
    const Fp v0 = a.c0 * b.c0;
    const Fp v1 = a.c1 * b.c1;
    return {v0 - v1, (a.c0 + a.c1) * (b.c0 + b.c1) - v0 - v1};
  }
  Fp2& operator+=(const Fp2& b) { return *this = *this + b; }
  Fp2& operator-=(const Fp2& b) { return *this = *this - b; }
  Fp2& operator*=(const Fp2& b) { return *this = *this * b; }

  // (a0 + a1 u)^2 = (a0 + a1)(a0 - a1) + 2 a0 a1 u: two multiplications.
  Fp2 square() const {
    const Fp t = c0 * c1;
    return {(c0 + c1) * (c0 - c1), t + t};
  }

  // a0 - a1 u. Since p ≡ 3 (mod 4), u^p = -u, so this is also the Frobenius map a -> a^p.
  Fp2 conjugate() const { return {c0, -c1}; }
  Fp2 frobenius() const { return conjugate(); }

  // a · ξ with ξ = 1 + u, the non-residue that Fp6 = Fp2[v]/(v^3 - ξ) is built with:
  // (a0 + a1 u)(1 + u) = (a0 - a1) + (a0 + a1) u.
  Fp2 mul_by_nonresidue() const { return {c0 - c1, c0 + c1}; }

  // a^-1 = conj(a) / (a0^2 + a1^2), the norm being in Fp; zero maps to zero.
  Fp2 inverse() const {
    const Fp t = (c0.square() + c1.square()).inverse();
    return {c0 * t, -(c1 * t)};
  }

  // a^e for a PUBLIC exponent e (little-endian limbs): square-and-multiply, which branches on
  // e's bits. Never pass a secret exponent. a^0 = 1.
  Fp2 pow(std::span<const std::uint64_t> exponent) const {
    Fp2 r = one();
    for (std::size_t i = exponent.size(); i-- > 0;) {
      for (int bit = 63; bit >= 0; --bit) {
        r = r.square();
        if ((exponent[i] >> bit) & 1) r *= *this;
      }
    }
    return r;
  }

  // A square root, nullopt when a is not a square. Algorithm 9 of Adj and Rodriguez-Henriquez,
  // "Square root computation over even extension fields" (eprint 2012/685), for p ≡ 3 (mod 4):
  // x0 = a^((p+1)/4) and alpha = a^((p-1)/2); then x0^2 = a·alpha. If alpha = -1, (u·x0)^2 = a;
  // otherwise b = (1 + alpha)^((p-1)/2) gives (b·x0)^2 = a whenever a is a square (then
  // alpha^(p+1) = 1, so (1 + alpha)^(p-1) = 1/alpha). Both candidates are computed and one is
  // selected by mask, so the work does not depend on a; instead of the paper's early exit for
  // non-squares, the result is squared and compared with a. Which of the two roots comes back
  // is whatever the formulas give (callers that need a sign pick it themselves).
  std::optional<Fp2> sqrt() const {
    static constexpr std::array<std::uint64_t, 6> kPMinus3Over4 =
        fp2_detail::modulus_shifted_right(2);  // p = 4k + 3: (p - 3)/4 = p >> 2
    static constexpr std::array<std::uint64_t, 6> kPMinus1Over2 =
        fp2_detail::modulus_shifted_right(1);  // p odd: (p - 1)/2 = p >> 1
    const Fp2 a1 = pow(kPMinus3Over4);
    const Fp2 x0 = a1 * *this;       // a^((p+1)/4)
    const Fp2 alpha = a1 * x0;       // a^((p-1)/2)
    const Fp2 via_u{-x0.c1, x0.c0};  // u·x0
    const Fp2 via_b = (one() + alpha).pow(kPMinus1Over2) * x0;
    const Fp2 x = select(via_b, via_u, alpha == -one());
    if (x.square() == *this) return x;  // the verdict is the caller's result anyway
    return std::nullopt;
  }

  // The ZCash encoding's sign of an Fp2 y-coordinate: c1 decides, and c0 when c1 is zero.
  bool lexicographically_largest() const {
    return ::mchain::abe::lexicographically_largest(c1) |
           (c1.is_zero() & ::mchain::abe::lexicographically_largest(c0));
  }

  bool is_zero() const { return c0.is_zero() & c1.is_zero(); }
  friend bool operator==(const Fp2& a, const Fp2& b) { return (a.c0 == b.c0) & (a.c1 == b.c1); }

  // b if choose_b, else a, by mask.
  static Fp2 select(const Fp2& a, const Fp2& b, bool choose_b) {
    return {Fp::select(a.c0, b.c0, choose_b), Fp::select(a.c1, b.c1, choose_b)};
  }
};

}  // namespace mchain::abe
