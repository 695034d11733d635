// Fp2 = Fp[u]/(u^2 + 1), the first floor of BLS12-381's extension tower (Fp6 and Fp12 are
// built on it) and the field of G2's coordinates. Elements are c0 + c1·u.
//
// Constant time as Fp is: every operation is a fixed sequence of Fp operations; only inverse
// of zero is special (it maps to zero, as in Fp).
#pragma once

#include "abe/pairing/fields.h"

namespace mchain::abe {

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

  bool is_zero() const { return c0.is_zero() & c1.is_zero(); }
  friend bool operator==(const Fp2& a, const Fp2& b) { return (a.c0 == b.c0) & (a.c1 == b.c1); }

  // b if choose_b, else a, by mask.
  static Fp2 select(const Fp2& a, const Fp2& b, bool choose_b) {
    return {Fp::select(a.c0, b.c0, choose_b), Fp::select(a.c1, b.c1, choose_b)};
  }
};

}  // namespace mchain::abe
