// The group law shared by G1 (y^2 = x^3 + 4 over Fp) and G2 (y^2 = x^3 + 4(u+1) over Fp2): a
// curve y^2 = x^3 + b with a = 0, in projective homogeneous coordinates (X : Y : Z) with
// x = X/Z, y = Y/Z, so the equation is Y^2 Z = X^3 + b Z^3 and the identity is (0 : 1 : 0).
//
// Additions and doublings use the complete formulas of Renes, Costello and Batina, "Complete
// addition formulas for prime order elliptic curves" (eprint 2015/1060), Algorithms 7 and 9 for
// a = 0 with b3 = 3b: they are correct for every pair of inputs (P + P, P + (-P), O + P, O + O),
// so there is no special case, hence no branch, anywhere in the group law.
//
// Constant time: everything except mul_vartime, from_affine's and from_compressed's verdicts and
// the loops over public exponents is a fixed sequence of field operations. operator*(Fr) takes
// secret scalars: a fixed 4-bit window whose table is read by scanning all 16 entries with a
// select, the same work for every scalar. mul_vartime branches on its scalar's bits and must
// only be given public scalars (the group order, cofactors, the curve parameter x).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string_view>

#include "abe/pairing/fields.h"

namespace mchain::abe {

// Why a point encoding was refused.
enum class PointError {
  kLength,         // not 48 (G1) or 96 (G2) bytes
  kFlags,          // compression flag clear, or an invalid flag combination or infinity encoding
  kNotInField,     // an x coordinate >= p
  kNotOnCurve,     // no y with y^2 = x^3 + b
  kNotInSubgroup,  // on the curve but not in the order-r subgroup
};

inline std::string_view describe(PointError error) {
  switch (error) {
    case PointError::kLength: return "point encoding has the wrong length";
    case PointError::kFlags: return "point encoding has invalid flag bits";
    case PointError::kNotInField: return "point coordinate is not below the field modulus";
    case PointError::kNotOnCurve: return "point is not on the curve";
    case PointError::kNotInSubgroup: return "point is not in the prime-order subgroup";
  }
  return "unknown point error";
}

// |x| for BLS12-381's parameter x = -0xd201000000010000 (public; x < 0).
inline constexpr std::uint64_t kBlsXAbs = 0xd201000000010000;

namespace curve_detail {

// A big-endian hex number of at most 2·N digits (our own constants, lower case, no prefix) as
// N big-endian bytes, zero-padded at the top.
template <std::size_t N>
constexpr std::array<std::uint8_t, N> hex_bytes(std::string_view hex) {
  std::array<std::uint8_t, N> out{};
  for (std::size_t k = 0; k < hex.size() && k < 2 * N; ++k) {
    const char c = hex[hex.size() - 1 - k];
    const int nibble = c <= '9' ? c - '0' : c - 'a' + 10;
    out[N - 1 - k / 2] |= static_cast<std::uint8_t>(nibble << (4 * (k % 2)));
  }
  return out;
}

// An Fp constant of ours from hex (lower case, at most 96 digits, < p). Anything else is a
// corrupted table, not an input: abort rather than compute with a wrong constant.
inline Fp fp_from_hex(std::string_view hex) {
  const bool digits_ok =
      hex.size() <= 96 && hex.find_first_not_of("0123456789abcdef") == std::string_view::npos;
  const std::optional<Fp> value = Fp::from_bytes(hex_bytes<48>(hex));
  if (!digits_ok || !value) std::abort();
  return *value;
}

// 1 when a == b, 0 otherwise, without a comparison on the (secret) values.
inline bool ct_equal(std::uint64_t a, std::uint64_t b) {
  const std::uint64_t d = a ^ b;
  return (((d | (0 - d)) >> 63) ^ 1) != 0;
}

}  // namespace curve_detail

// Points of y^2 = x^3 + b over F (Fp or Fp2), shared by G1 and G2 through CRTP: Derived is the
// group's class and provides
//   static F b();                   the curve constant
//   static F mul_by_3b(const F&);   a·3b, the constant of the complete formulas
// Affine is the group's affine struct {F x; F y; bool infinity;}. A default-constructed point
// is the identity.
template <typename Derived, typename F, typename Affine>
class ProjectivePoint {
 public:
  static Derived identity() { return Derived(); }

  // The affine point as a projective one; nullopt when it is not on the curve. No subgroup check
  // (is_torsion_free does that). An affine point with infinity set is the identity whatever its
  // coordinates. The on-curve verdict is returned, so it may be branched on.
  static std::optional<Derived> from_affine(const Affine& a) {
    const bool on_curve = a.y.square() == a.x.square() * a.x + Derived::b();
    if (!(on_curve | a.infinity)) return std::nullopt;
    return select(make(a.x, a.y, F::one()), identity(), a.infinity);
  }

  // (X/Z, Y/Z), one inversion. The identity (Z = 0) comes out as {0, 0, true} without a branch:
  // the inverse of 0 is 0.
  Affine to_affine() const {
    const F z_inv = z_.inverse();
    Affine a;
    a.x = x_ * z_inv;
    a.y = y_ * z_inv;
    a.infinity = z_.is_zero();
    return a;
  }

  // The projective coordinates (not unique: (X : Y : Z) = (λX : λY : λZ)).
  const F& x() const { return x_; }
  const F& y() const { return y_; }
  const F& z() const { return z_; }

  // Renes-Costello-Batina Algorithm 7 (complete addition, a = 0): 12 multiplications, two by 3b.
  friend Derived operator+(const Derived& p, const Derived& q) { return add(p, q); }
  friend Derived operator-(const Derived& p, const Derived& q) { return p + (-q); }

  Derived operator-() const { return make(x_, -y_, z_); }

  Derived& operator+=(const Derived& q) { return self() = self() + q; }
  Derived& operator-=(const Derived& q) { return self() = self() - q; }

  // Renes-Costello-Batina Algorithm 9 (doubling, a = 0): 6 multiplications, 2 squarings, one by
  // 3b. Complete too: the identity doubles to the identity.
  Derived doubled() const {
    F t0 = y_.square();
    F z3 = t0 + t0;
    z3 = z3 + z3;
    z3 = z3 + z3;  // 8 Y^2
    F t1 = y_ * z_;
    F t2 = Derived::mul_by_3b(z_.square());
    F x3 = t2 * z3;
    F y3 = t0 + t2;
    z3 = t1 * z3;
    t1 = t2 + t2;
    t2 = t1 + t2;  // 9b Z^2
    t0 = t0 - t2;
    y3 = t0 * y3;
    y3 = x3 + y3;
    t1 = x_ * y_;
    x3 = t0 * t1;
    x3 = x3 + x3;
    return make(x3, y3, z3);
  }

  // [k]P for a SECRET scalar k. A fixed window of 4 bits from the top of k's canonical 256-bit
  // value: 4 doublings, then the table entry [digit]P, found by selecting over all 16 entries,
  // is added (complete addition, so digit 0, i.e. adding the identity, needs no special case).
  // 64 windows of identical work whatever k is: 256 doublings and 64 + 14 additions.
  Derived operator*(const Fr& scalar) const {
    std::array<Derived, 16> table;  // table[i] = [i]P; table[0] is the identity
    table[1] = self();
    for (std::size_t i = 2; i < table.size(); ++i) {
      table[i] = (i % 2 == 0) ? table[i / 2].doubled() : table[i - 1] + self();
    }
    const Fr::Encoded bytes = scalar.to_bytes();  // big-endian, fully reduced
    Derived acc;
    for (std::size_t w = 0; w < 2 * bytes.size(); ++w) {
      const std::uint64_t digit = (bytes[w / 2] >> (w % 2 == 0 ? 4 : 0)) & 0xf;
      acc = acc.doubled().doubled().doubled().doubled();
      Derived entry;
      for (std::size_t i = 0; i < table.size(); ++i) {
        entry = select(entry, table[i], curve_detail::ct_equal(i, digit));
      }
      acc += entry;
    }
    return acc;
  }

  // [k]P for a PUBLIC scalar k (little-endian limbs, any length): double-and-add from the top set
  // bit, branching on k's bits. Never pass a secret.
  Derived mul_vartime(std::span<const std::uint64_t> scalar) const {
    Derived acc;
    bool started = false;
    for (std::size_t i = scalar.size(); i-- > 0;) {
      for (int bit = 63; bit >= 0; --bit) {
        if (started) acc = acc.doubled();
        if ((scalar[i] >> bit) & 1) {
          acc += self();
          started = true;
        }
      }
    }
    return acc;
  }

  // [x]P for BLS12-381's parameter x = -|x| (public), as the subgroup checks need it.
  Derived mul_by_x() const {
    const std::uint64_t x_abs[1] = {kBlsXAbs};
    return -mul_vartime(x_abs);
  }

  bool is_identity() const { return z_.is_zero(); }

  // Y^2 Z == X^3 + b Z^3, and not (0 : 0 : 0), which satisfies the equation but is no point.
  bool is_on_curve() const {
    const F z2 = z_.square();
    const bool equation = y_.square() * z_ == x_.square() * x_ + Derived::b() * z2 * z_;
    return equation & !(y_.is_zero() & z_.is_zero());
  }

  // Projective equality: X1 Z2 == X2 Z1 and Y1 Z2 == Y2 Z1. Since only the identity has Z = 0,
  // this also holds exactly when both are the identity (whose X is 0 and Y is not).
  friend bool operator==(const Derived& p, const Derived& q) {
    const ProjectivePoint& a = p;
    const ProjectivePoint& b = q;
    return (a.x_ * b.z_ == b.x_ * a.z_) & (a.y_ * b.z_ == b.y_ * a.z_);
  }

  // q if choose_b, else p, by mask.
  static Derived select(const Derived& p, const Derived& q, bool choose_b) {
    const ProjectivePoint& a = p;
    const ProjectivePoint& b = q;
    return make(F::select(a.x_, b.x_, choose_b), F::select(a.y_, b.y_, choose_b),
                F::select(a.z_, b.z_, choose_b));
  }

 protected:
  // (X : Y : Z) as given; the caller guarantees it is a point (or the identity).
  static Derived make(const F& x, const F& y, const F& z) {
    Derived d;
    ProjectivePoint& base = d;
    base.x_ = x;
    base.y_ = y;
    base.z_ = z;
    return d;
  }

 private:
  // Algorithm 7 itself (a member, so that it may use Derived's private mul_by_3b).
  static Derived add(const ProjectivePoint& a, const ProjectivePoint& b) {
    F t0 = a.x_ * b.x_;
    F t1 = a.y_ * b.y_;
    F t2 = a.z_ * b.z_;
    F t3 = (a.x_ + a.y_) * (b.x_ + b.y_);
    F t4 = t0 + t1;
    t3 = t3 - t4;  // X1 Y2 + X2 Y1
    t4 = (a.y_ + a.z_) * (b.y_ + b.z_);
    F x3 = t1 + t2;
    t4 = t4 - x3;  // Y1 Z2 + Y2 Z1
    x3 = (a.x_ + a.z_) * (b.x_ + b.z_);
    F y3 = t0 + t2;
    y3 = x3 - y3;  // X1 Z2 + X2 Z1
    x3 = t0 + t0;
    t0 = x3 + t0;  // 3 X1 X2
    t2 = Derived::mul_by_3b(t2);
    F z3 = t1 + t2;
    t1 = t1 - t2;
    y3 = Derived::mul_by_3b(y3);
    x3 = t4 * y3;
    t2 = t3 * t1;
    x3 = t2 - x3;
    y3 = y3 * t0;
    t1 = t1 * z3;
    y3 = t1 + y3;
    t0 = t0 * t3;
    z3 = z3 * t4;
    z3 = z3 + t0;
    return make(x3, y3, z3);
  }

  Derived& self() { return static_cast<Derived&>(*this); }
  const Derived& self() const { return static_cast<const Derived&>(*this); }

  F x_ = F::zero();
  F y_ = F::one();
  F z_ = F::zero();
};

}  // namespace mchain::abe
