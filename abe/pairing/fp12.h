// Fp12 = Fp6[w]/(w^2 - v), the top of BLS12-381's extension tower and the home of the pairing's
// values (GT is its subgroup of order r). Elements are c0 + c1·w with c0, c1 in Fp6.
//
// Constant time as Fp6 is: every operation is a fixed sequence of Fp6 operations, whatever the
// values; only the inverse of zero is special (it maps to zero). The exceptions are pow, which
// branches on its exponent (public only), and from_bytes, whose length check and verdict are
// the caller's result anyway.
//
// Cost in Fp2 multiplications (M) and squarings (S; an Fp2 M is 3 Fp multiplications, an S 2):
//   operator*          18M   (Karatsuba over w: 3 Fp6 products)          54 Fp mults
//   square             12M   (complex squaring: 2 Fp6 products)          36
//   mul_by_014         13M   (Fp6 mul_by_01 twice, mul_by_1 once)        39
//   cyclotomic_square   9S   (Granger–Scott: three Fp4 squarings)        18
//   frobenius           3M + 4 Fp mults                                  13
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>

#include "abe/pairing/fp6.h"

namespace mchain::abe {

namespace detail {

// An element x0 + x1 s of Fp4 = Fp2[s]/(s^2 - ξ), the view of Fp12 that cyclotomic_square uses.
struct Fp4 {
  Fp2 x0;
  Fp2 x1;
};

// (x0 + x1 s)^2 = (x0^2 + ξ x1^2) + ((x0 + x1)^2 - x0^2 - x1^2) s: 3S.
inline Fp4 fp4_square(const Fp2& x0, const Fp2& x1) {
  const Fp2 t0 = x0.square();
  const Fp2 t1 = x1.square();
  return {t0 + t1.mul_by_nonresidue(), (x0 + x1).square() - t0 - t1};
}

// 3t - 2x and 3t + 2x with additions only.
inline Fp2 three_t_minus_two_x(const Fp2& t, const Fp2& x) {
  const Fp2 d = t - x;
  return d + d + t;
}
inline Fp2 three_t_plus_two_x(const Fp2& t, const Fp2& x) {
  const Fp2 s = t + x;
  return s + s + t;
}

}  // namespace detail

struct Fp12 {
  Fp6 c0;
  Fp6 c1;

  // The encoding: 12 Fp coefficients of 48 bytes (big-endian) each, in tower order
  // c0.c0.c0, c0.c0.c1, c0.c1.c0, c0.c1.c1, c0.c2.c0, c0.c2.c1, c1.c0.c0, ..., c1.c2.c1 (the
  // e_0..e_11 of draft-irtf-cfrg-pairing-friendly-curves' pairing test vectors).
  static constexpr std::size_t kBytes = 12 * Fp::kBytes;
  using Encoded = std::array<std::uint8_t, kBytes>;

  static Fp12 zero() { return {}; }
  static Fp12 one() { return {Fp6::one(), Fp6::zero()}; }

  friend Fp12 operator+(const Fp12& a, const Fp12& b) { return {a.c0 + b.c0, a.c1 + b.c1}; }
  friend Fp12 operator-(const Fp12& a, const Fp12& b) { return {a.c0 - b.c0, a.c1 - b.c1}; }
  Fp12 operator-() const { return {-c0, -c1}; }

  // Karatsuba over w with w^2 = v: with t0 = a0 b0, t1 = a1 b1,
  // a·b = (t0 + t1 v) + ((a0 + a1)(b0 + b1) - t0 - t1) w.
  friend Fp12 operator*(const Fp12& a, const Fp12& b) {
    const Fp6 t0 = a.c0 * b.c0;
    const Fp6 t1 = a.c1 * b.c1;
    return {t0 + t1.mul_by_nonresidue(), (a.c0 + a.c1) * (b.c0 + b.c1) - t0 - t1};
  }
  Fp12& operator+=(const Fp12& b) { return *this = *this + b; }
  Fp12& operator-=(const Fp12& b) { return *this = *this - b; }
  Fp12& operator*=(const Fp12& b) { return *this = *this * b; }

  // Complex squaring: with t = a0 a1, a0^2 + a1^2 v = (a0 + a1)(a0 + a1 v) - t - t v, and the
  // w coefficient is 2t. Two Fp6 products.
  Fp12 square() const {
    const Fp6 t = c0 * c1;
    return {(c0 + c1) * (c0 + c1.mul_by_nonresidue()) - t - t.mul_by_nonresidue(), t + t};
  }

  // a^-1 = (a0 - a1 w) / (a0^2 - a1^2 v), the denominator being the norm to Fp6. Zero maps to
  // zero (Fp6's inverse does).
  Fp12 inverse() const {
    const Fp6 t = (c0.square() - c1.square().mul_by_nonresidue()).inverse();
    return {c0 * t, -(c1 * t)};
  }

  // a0 - a1 w, which is a^(p^6): w^(p^6 - 1) = ξ^((p^6 - 1)/6) = -1. For elements of norm 1
  // over Fp6 (everything after the final exponentiation's first step) this is also a^-1.
  Fp12 conjugate() const { return {c0, -c1}; }

  // a^p: with g_k the coefficient of w^k, (Σ g_k w^k)^p = Σ conj(g_k) γ_k w^k (the γ_k and
  // why: detail::frobenius_gammas). c0 holds w^0, w^2, w^4, which is Fp6's own Frobenius; c1
  // holds w^1, w^3, w^5.
  Fp12 frobenius() const {
    const auto& gamma = detail::frobenius_gammas();
    return {c0.frobenius(), Fp6{c1.c0.conjugate() * gamma[1], c1.c1.conjugate() * gamma[3],
                                c1.c2.conjugate() * gamma[5]}};
  }

  // a · ((b0 + b1 v) + (b4 v) w), i.e. a times Fp12{Fp6{b0, b1, 0}, Fp6{0, b4, 0}}: the shape
  // of a Miller-loop line evaluated at a G1 point (the M-type twist puts its three nonzero
  // coefficients at w^0, w^2 and w^3). Karatsuba over w with the sparse factors:
  // t0 = a0 (b0 + b1 v), t1 = a1 (b4 v), and (a0 + a1)(b0 + (b1 + b4) v) - t0 - t1 for w.
  Fp12 mul_by_014(const Fp2& b0, const Fp2& b1, const Fp2& b4) const {
    const Fp6 t0 = c0.mul_by_01(b0, b1);
    const Fp6 t1 = c1.mul_by_1(b4);
    return {t0 + t1.mul_by_nonresidue(), (c0 + c1).mul_by_01(b0, b1 + b4) - t0 - t1};
  }

  // a^2 for a in the cyclotomic subgroup only: a^(p^4 - p^2 + 1) = 1, which holds for anything
  // raised to (p^6 - 1)(p^2 + 1), such as the output of the final exponentiation's first step.
  // For other elements the result is wrong (norm 1 over Fp6 alone, a^(p^6 + 1) = 1, is not
  // enough). Granger and Scott, "Faster squaring in the cyclotomic subgroup of sixth degree
  // extensions" (PKC 2010): view Fp12 as Fp4[w]/(w^3 - s) with
  // Fp4 = Fp2[s]/(s^2 - ξ), s = w^3, and a = A + B w + C w^2 with
  //   A = g0 + g3 s,  B = g1 + g4 s,  C = g2 + g5 s    (g_k the coefficient of w^k:
  //   g0 = c0.c0, g1 = c1.c0, g2 = c0.c1, g3 = c1.c1, g4 = c0.c2, g5 = c1.c2).
  // Then a^2 = (3A^2 - 2 conj(A)) + (3 s C^2 + 2 conj(B)) w + (3B^2 - 2 conj(C)) w^2, where
  // conj(x0 + x1 s) = x0 - x1 s: three Fp4 squarings and additions.
  Fp12 cyclotomic_square() const {
    const detail::Fp4 a2 = detail::fp4_square(c0.c0, c1.c1);
    const detail::Fp4 b2 = detail::fp4_square(c1.c0, c0.c2);
    const detail::Fp4 c2 = detail::fp4_square(c0.c1, c1.c2);
    // s·C^2 = ξ x1 + x0 s.
    return {Fp6{detail::three_t_minus_two_x(a2.x0, c0.c0),   // g0' = 3 (A^2)_0 - 2 g0
                detail::three_t_minus_two_x(b2.x0, c0.c1),   // g2' = 3 (B^2)_0 - 2 g2
                detail::three_t_minus_two_x(c2.x0, c0.c2)},  // g4' = 3 (sC^2)_1 - 2 g4
            Fp6{detail::three_t_plus_two_x(c2.x1.mul_by_nonresidue(), c1.c0),  // g1'
                detail::three_t_plus_two_x(a2.x1, c1.c1),                      // g3'
                detail::three_t_plus_two_x(b2.x1, c1.c2)}};                    // g5'
  }

  // a^e for a PUBLIC exponent e (little-endian limbs, any length): square-and-multiply, which
  // branches on e's bits, so never pass a secret exponent. a^0 = 1, also for a = 0. Leading
  // zero bits are skipped (again a function of e only).
  Fp12 pow(std::span<const std::uint64_t> exponent) const {
    Fp12 r = one();
    bool started = false;
    for (std::size_t i = exponent.size(); i-- > 0;) {
      for (int bit = 63; bit >= 0; --bit) {
        if (started) r = r.square();
        if ((exponent[i] >> bit) & 1) {
          r = started ? r * *this : *this;
          started = true;
        }
      }
    }
    return r;
  }

  bool is_zero() const { return c0.is_zero() & c1.is_zero(); }
  bool is_one() const { return (c0 == Fp6::one()) & c1.is_zero(); }
  friend bool operator==(const Fp12& a, const Fp12& b) { return (a.c0 == b.c0) & (a.c1 == b.c1); }

  // b if choose_b, else a, by mask.
  static Fp12 select(const Fp12& a, const Fp12& b, bool choose_b) {
    return {Fp6::select(a.c0, b.c0, choose_b), Fp6::select(a.c1, b.c1, choose_b)};
  }

  // The canonical encoding (see kBytes): constant time, as each Fp::to_bytes is.
  Encoded to_bytes() const {
    Encoded out{};
    std::size_t offset = 0;
    for (const Fp* x : coefficients(*this)) {
      const Fp::Encoded e = x->to_bytes();
      for (std::size_t k = 0; k < Fp::kBytes; ++k) out[offset + k] = e[k];
      offset += Fp::kBytes;
    }
    return out;
  }

  // The encoding back to an element: nullopt unless it is exactly kBytes long and every
  // coefficient is < p, so each element has exactly one encoding. All twelve coefficients are
  // decoded whatever the others hold; only the verdict is branched on.
  static std::optional<Fp12> from_bytes(std::span<const std::uint8_t> bytes) {
    if (bytes.size() != kBytes) return std::nullopt;
    Fp12 out;
    bool valid = true;
    std::size_t offset = 0;
    for (Fp* x : coefficients(out)) {
      const std::optional<Fp> decoded = Fp::from_bytes(bytes.subspan(offset, Fp::kBytes));
      valid &= decoded.has_value();
      *x = decoded.value_or(Fp::zero());
      offset += Fp::kBytes;
    }
    if (!valid) return std::nullopt;
    return out;
  }

 private:
  // The twelve Fp coefficients in tower order (the encoding's order).
  template <typename Self>
  static std::array<std::conditional_t<std::is_const_v<Self>, const Fp*, Fp*>, 12> coefficients(
      Self& a) {
    return std::array{&a.c0.c0.c0, &a.c0.c0.c1, &a.c0.c1.c0, &a.c0.c1.c1, &a.c0.c2.c0, &a.c0.c2.c1,
                      &a.c1.c0.c0, &a.c1.c0.c1, &a.c1.c1.c0, &a.c1.c1.c1, &a.c1.c2.c0, &a.c1.c2.c1};
  }
};

}  // namespace mchain::abe
