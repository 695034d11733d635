// The optimal ate pairing of BLS12-381, e: G1 × G2 → GT, and the group GT itself.
//
// Convention: e is the "library" pairing (zkcrypto, blst, kilic, noble): the Miller loop over
// |x| with a final conjugation (x < 0), then the final exponentiation to the power
// 3·(p^12 − 1)/r, which is cheaper than (p^12 − 1)/r and still bilinear and non-degenerate.
// So e(G1, G2) is the cube of the value the IETF draft computes literally; see docs/abe.md.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "abe/pairing/fields.h"
#include "abe/pairing/fp12.h"
#include "abe/pairing/g1.h"
#include "abe/pairing/g2.h"

namespace mchain::abe {

// An element of GT, the order-r subgroup of Fp12^*, written multiplicatively. Every Gt built
// by this library (pairings, products, powers, checked decodings) is in that subgroup, which is
// what makes conjugation its inverse and cyclotomic squaring valid.
class Gt {
 public:
  static constexpr std::size_t kBytes = 576;
  using Encoded = std::array<std::uint8_t, kBytes>;

  Gt() : value_(Fp12::one()) {}  // the identity
  static Gt identity() { return Gt(); }
  static Gt generator();  // e(G1 generator, G2 generator), computed once

  friend Gt operator*(const Gt& a, const Gt& b) { return Gt(a.value_ * b.value_); }
  Gt& operator*=(const Gt& b) { return *this = *this * b; }
  Gt inverse() const { return Gt(value_.conjugate()); }  // unitary: a^-1 = a^(p^6)
  Gt squared() const { return Gt(value_.cyclotomic_square()); }

  // a^k for a SECRET exponent (the KEM's Y^s): fixed 4-bit windows over all of k's bits, the
  // window's table entry read by scanning the whole table with selects.
  Gt pow(const Fr& k) const;
  // a^k for a PUBLIC exponent (little-endian limbs): square-and-multiply, branches on k.
  Gt pow_vartime(std::span<const std::uint64_t> k) const;

  bool is_identity() const { return value_.is_one(); }
  friend bool operator==(const Gt& a, const Gt& b) { return a.value_ == b.value_; }

  // The 12 Fp coefficients in tower order, 48 bytes big-endian each (Fp12::to_bytes).
  Encoded to_bytes() const { return value_.to_bytes(); }
  // Refuses a wrong length, a coefficient >= p, and any element outside the order-r subgroup
  // (checked as a^r = 1 after a cyclotomic-subgroup check): a decoded GT element can then be
  // used like one this library computed.
  static std::optional<Gt> from_bytes(std::span<const std::uint8_t> bytes);

  const Fp12& value() const { return value_; }

 private:
  friend Gt final_exponentiation(const Fp12& f);
  explicit Gt(const Fp12& value) : value_(value) {}

  Fp12 value_;
};

// One (P, Q) pair of a product of pairings.
struct PairingInput {
  G1Affine p;
  G2Affine q;
};

// f_{|x|,Q}(P) with the final conjugation, shared across all pairs: one Fp12 accumulator,
// squared once per step for all pairs. Pairs with P or Q at infinity contribute 1 (skipped;
// whether a point is the identity is not treated as secret).
Fp12 miller_loop(std::span<const PairingInput> pairs);

// f^(3·(p^12 − 1)/r): the easy part (p^6 − 1)(p^2 + 1) by conjugation, inversion and
// Frobenius, then the hard part 3·Φ12(p)/r as an addition chain in powers of x (docs/abe.md).
Gt final_exponentiation(const Fp12& f);

// e(P, Q).
Gt pairing(const G1Affine& p, const G2Affine& q);
Gt pairing(const G1& p, const G2& q);

// ∏ e(P_i, Q_i) with one shared Miller loop and one final exponentiation: cheaper than the
// product of the single pairings (each extra pair costs its lines, not a whole pairing).
Gt multi_pairing(std::span<const PairingInput> pairs);

}  // namespace mchain::abe
