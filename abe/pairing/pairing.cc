#include "abe/pairing/pairing.h"

#include <vector>

namespace mchain::abe {

namespace {

// |x| for BLS12-381's seed x = -0xd201000000010000 (pairing.md §1). The loop runs over its bits
// below the top one; the sign is applied by one conjugation at the end.
constexpr std::uint64_t kAbsX = 0xd201000000010000;
constexpr int kTopBitOfAbsX = 63;

// The Miller loop's running point T on the twist E': y^2 = x^3 + 4ξ, in Jacobian coordinates
// (x = X/Z^2, y = Y/Z^3), which give the cheapest tangent and chord lines.
struct JacobianPoint {
  Fp2 x, y, z;
};

// A line through points of E' evaluated at P and mapped into Fp12 by the untwist
// ψ(x', y') = (x'/w^2, y'/w^3), after multiplying by w^3 and by factors in Fp2: every such
// factor lies in a proper subfield of Fp12 and is killed by the final exponentiation. What is
// left has only the coefficients of 1, v and v·w (slots 0, 1 and 4):
//   l = slot0 + (slot1 · xP) v + (slot4 · yP) v·w
// The line for slope λ through (x_T, y_T) is yP − y_T − λ(xP − x_T) in E's coordinates; with
// x_T = x'/w^2, y_T = y'/w^3 and λ = λ'/w, times w^3 this is (λ' x' − y') − λ' xP·v + yP·v·w.
struct LineCoefficients {
  Fp2 slot0;  // λ'x' − y', scaled
  Fp2 slot1;  // −λ', scaled; multiplied by xP
  Fp2 slot4;  // 1, scaled; multiplied by yP
};

// T = 2T and the tangent at the old T. With A = X^2, B = Y^2, E = 3A, the tangent slope is
// λ' = 3x^2 / 2y = E / (2 Y Z); scaled by 2·(2YZ)·Z^2 = 2·Z3·Z^2 the coefficients are
// slot0 = 2(3X^3 − 2Y^2), slot1 = −2 E Z^2, slot4 = 2 Z3 Z^2.
LineCoefficients double_step(JacobianPoint& t) {
  const Fp2 a = t.x.square();
  const Fp2 b = t.y.square();
  const Fp2 c = b.square();
  const Fp2 zz = t.z.square();
  Fp2 d = (t.x + b).square() - a - c;  // 2 X Y^2
  d += d;                              // 4 X Y^2
  const Fp2 e = a + a + a;             // 3 X^2
  const Fp2 f = e.square();            // 9 X^4

  // 2(3X^3 − 2Y^2) = (X + E)^2 − A − F − 4B, which costs a squaring instead of a product.
  Fp2 four_b = b + b;
  four_b += four_b;
  const Fp2 slot0 = (t.x + e).square() - a - f - four_b;

  const Fp2 x3 = f - d - d;
  Fp2 eight_c = c + c;
  eight_c += eight_c;
  eight_c += eight_c;
  const Fp2 y3 = e * (d - x3) - eight_c;
  const Fp2 z3 = (t.y + t.z).square() - b - zz;  // 2 Y Z

  Fp2 slot1 = e * zz;
  slot1 = -(slot1 + slot1);
  Fp2 slot4 = z3 * zz;
  slot4 += slot4;

  t = {x3, y3, z3};
  return {slot0, slot1, slot4};
}

// T = T + Q (Q affine, T ≠ ±Q, which holds inside the loop: T = [k]Q with 1 < k < r) and the
// chord through them. With H = xq Z^2 − X and R = 2(yq Z^3 − Y), the new Z3 = 2 Z H and the
// slope is λ' = R / Z3; scaled by 2·Z3: slot0 = 2(R xq − yq Z3), slot1 = −2R, slot4 = 2 Z3.
LineCoefficients add_step(JacobianPoint& t, const G2Affine& q) {
  const Fp2 zz = t.z.square();
  const Fp2 yq2 = q.y.square();
  const Fp2 u2 = q.x * zz;
  const Fp2 s2_twice = ((q.y + t.z).square() - yq2 - zz) * zz;  // 2 yq Z^3
  const Fp2 h = u2 - t.x;
  const Fp2 hh = h.square();
  Fp2 i = hh + hh;
  i += i;  // 4 H^2
  const Fp2 j = h * i;
  const Fp2 r = s2_twice - t.y - t.y;
  const Fp2 v = t.x * i;

  const Fp2 x3 = r.square() - j - v - v;
  const Fp2 z3 = (t.z + h).square() - zz - hh;  // 2 Z H
  Fp2 yj = t.y * j;
  yj += yj;
  const Fp2 y3 = r * (v - x3) - yj;

  // 2 yq Z3 = (yq + Z3)^2 − yq^2 − Z3^2.
  const Fp2 yq_z3_twice = (q.y + z3).square() - yq2 - z3.square();
  Fp2 slot0 = r * q.x;
  slot0 = slot0 + slot0 - yq_z3_twice;
  const Fp2 slot1 = -(r + r);
  const Fp2 slot4 = z3 + z3;

  t = {x3, y3, z3};
  return {slot0, slot1, slot4};
}

// f · l(P), or f · 1 when `identity` (a pair with the point at infinity on either side).
void multiply_by_line(Fp12& f, const LineCoefficients& line, const G1Affine& p, bool identity) {
  const Fp2 c0 = Fp2::select(line.slot0, Fp2::one(), identity);
  const Fp2 c1 = Fp2::select({line.slot1.c0 * p.x, line.slot1.c1 * p.x}, Fp2::zero(), identity);
  const Fp2 c4 = Fp2::select({line.slot4.c0 * p.y, line.slot4.c1 * p.y}, Fp2::zero(), identity);
  f = f.mul_by_014(c0, c1, c4);
}

// g^|x| for g in the cyclotomic subgroup (squarings there are the cheap Granger–Scott ones).
Fp12 cyclotomic_pow_abs_x(const Fp12& g) {
  Fp12 result = g;
  for (int bit = kTopBitOfAbsX - 1; bit >= 0; --bit) {
    result = result.cyclotomic_square();
    if ((kAbsX >> bit) & 1) result *= g;
  }
  return result;
}

// g^x = conj(g^|x|): x < 0 and conjugation inverts in the cyclotomic subgroup.
Fp12 cyclotomic_pow_x(const Fp12& g) { return cyclotomic_pow_abs_x(g).conjugate(); }

Fp12 frobenius2(const Fp12& f) { return f.frobenius().frobenius(); }

// The order r as public exponent limbs (little-endian), for the GT membership check.
constexpr std::array<std::uint64_t, 4> kGroupOrder = {0xffffffff00000001, 0x53bda402fffe5bfe,
                                                      0x3339d80809a1d805, 0x73eda753299d7d48};

}  // namespace

Fp12 miller_loop(std::span<const PairingInput> pairs) {
  // e(O, Q) = e(P, O) = 1. Whether a point is the identity may be a secret (a key's component),
  // so such a pair is not skipped: it runs like the others with its lines replaced by 1.
  std::vector<JacobianPoint> points;
  std::vector<std::uint8_t> identity;
  points.reserve(pairs.size());
  identity.reserve(pairs.size());
  for (const PairingInput& pair : pairs) {
    points.push_back({pair.q.x, pair.q.y, Fp2::one()});
    identity.push_back(static_cast<std::uint8_t>(pair.p.infinity | pair.q.infinity));
  }

  Fp12 f = Fp12::one();
  for (int bit = kTopBitOfAbsX - 1; bit >= 0; --bit) {
    if (bit != kTopBitOfAbsX - 1) f = f.square();  // f is still 1 on the first step
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      multiply_by_line(f, double_step(points[i]), pairs[i].p, identity[i] != 0);
    }
    if ((kAbsX >> bit) & 1) {
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        multiply_by_line(f, add_step(points[i], pairs[i].q), pairs[i].p, identity[i] != 0);
      }
    }
  }
  return f.conjugate();  // x < 0
}

Gt final_exponentiation(const Fp12& f) {
  // Easy part, f^((p^6 − 1)(p^2 + 1)): conj(f) = f^(p^6), and the result lies in the cyclotomic
  // subgroup, where everything below may use cyclotomic squaring and conjugation as inverse.
  Fp12 m = f.conjugate() * f.inverse();
  m = frobenius2(m) * m;

  // Hard part, m^(3·Φ12(p)/r) with 3·Φ12(p)/r = (x − 1)^2 (x + p)(x^2 + p^2 − 1) + 3
  // (pairing.md §1): five exponentiations by x and three Frobenius maps.
  Fp12 a = cyclotomic_pow_x(m) * m.conjugate();        // m^(x−1)
  a = cyclotomic_pow_x(a) * a.conjugate();             // m^((x−1)^2)
  const Fp12 b = cyclotomic_pow_x(a) * a.frobenius();  // ·^(x+p)
  const Fp12 c = cyclotomic_pow_x(cyclotomic_pow_x(b)) * frobenius2(b) * b.conjugate();
  return Gt(c * m.cyclotomic_square() * m);  // · m^3
}

Gt pairing(const G1Affine& p, const G2Affine& q) {
  const PairingInput pair{p, q};
  return final_exponentiation(miller_loop({&pair, 1}));
}

Gt pairing(const G1& p, const G2& q) { return pairing(p.to_affine(), q.to_affine()); }

Gt multi_pairing(std::span<const PairingInput> pairs) {
  return final_exponentiation(miller_loop(pairs));
}

Gt Gt::generator() {
  static const Gt value = pairing(G1::generator(), G2::generator());
  return value;
}

Gt Gt::pow(const Fr& k) const {
  // table[j] = a^j, j < 16.
  std::array<Fp12, 16> table;
  table[0] = Fp12::one();
  for (std::size_t j = 1; j < table.size(); ++j) table[j] = table[j - 1] * value_;

  const Fr::Encoded bits = k.to_bytes();  // big-endian
  Fp12 result = Fp12::one();
  for (std::size_t nibble = 0; nibble < 2 * bits.size(); ++nibble) {
    for (int s = 0; s < 4; ++s) result = result.cyclotomic_square();
    const std::uint64_t byte = bits[nibble / 2];
    const std::uint64_t window = (nibble % 2 == 0 ? byte >> 4 : byte) & 0xf;
    Fp12 entry = table[0];
    for (std::uint64_t j = 1; j < table.size(); ++j) {
      entry = Fp12::select(entry, table[j], detail::is_zero_bit(j ^ window) == 1);
    }
    result *= entry;
  }
  return Gt(result);
}

Gt Gt::pow_vartime(std::span<const std::uint64_t> k) const {
  Fp12 result = Fp12::one();
  for (std::size_t i = k.size(); i-- > 0;) {
    for (int bit = 63; bit >= 0; --bit) {
      result = result.cyclotomic_square();
      if ((k[i] >> bit) & 1) result *= value_;
    }
  }
  return Gt(result);
}

std::optional<Gt> Gt::from_bytes(std::span<const std::uint8_t> bytes) {
  const std::optional<Fp12> value = Fp12::from_bytes(bytes);
  if (!value) return std::nullopt;
  // In the cyclotomic subgroup (order Φ12(p) = p^4 − p^2 + 1) iff f^(p^4) · f = f^(p^2); only
  // there is cyclotomic squaring (used by pow_vartime) correct. Then GT is its order-r part.
  const Fp12 f2 = frobenius2(*value);
  if (!(frobenius2(f2) * *value == f2)) return std::nullopt;
  const Gt candidate(*value);
  if (!candidate.pow_vartime(kGroupOrder).is_identity()) return std::nullopt;
  return candidate;
}

}  // namespace mchain::abe
