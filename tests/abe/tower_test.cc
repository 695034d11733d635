// Fp6 = Fp2[v]/(v^3 - ξ) and Fp12 = Fp6[w]/(w^2 - v) (abe/pairing/fp6.h, fp12.h): the field
// axioms, the Karatsuba products against schoolbook products, the sparse products against full
// ones, the Frobenius maps against a^p (and their constants against powers of ξ), Granger–Scott
// squaring against squaring, the encoding, and the published pairing values of BLS12-381.
//
// The random inputs come from a seed that is new on every run and printed with any failure;
// MCHAIN_FIELD_TEST_SEED=<n> repeats a run (the same variable as field_test.cc's).
#include <gmp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "abe/pairing/fp12.h"
#include "abe/pairing/fp6.h"
#include "mpz.h"
#include "pairing_vectors.h"

namespace mchain::abe {
namespace {

constexpr int kIterations = 300;

std::uint64_t test_seed() {
  static const std::uint64_t seed = [] {
    const char* value = std::getenv("MCHAIN_FIELD_TEST_SEED");
    if (value != nullptr) return std::uint64_t{std::strtoull(value, nullptr, 0)};
    return (std::uint64_t{std::random_device{}()} << 32) ^ std::uint64_t{std::random_device{}()};
  }();
  return seed;
}

const char* const kP =
    "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffff"
    "aaab";
const char* const kR = "73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001";

using mchain::abe::testing::Mpz;

// p^k as limbs.
std::vector<std::uint64_t> p_power(unsigned long k) {
  Mpz x(kP);
  mpz_pow_ui(x.get(), x.get(), k);
  return x.limbs();
}

// Square-and-multiply for the types that have no pow of their own (Fp2, Fp6): the reference
// a^e, written independently of Fp12::pow.
template <typename F>
F power(const F& a, std::span<const std::uint64_t> e) {
  F r = F::one();
  for (std::size_t i = e.size(); i-- > 0;) {
    for (int bit = 63; bit >= 0; --bit) {
      r = r * r;
      if ((e[i] >> bit) & 1) r = r * a;
    }
  }
  return r;
}

const Fp2 kXi{Fp::one(), Fp::one()};

// Schoolbook Fp6 product: the nine products a_i b_j, then v^3 = ξ, v^4 = ξ v.
Fp6 schoolbook(const Fp6& a, const Fp6& b) {
  const std::array<Fp2, 3> x = {a.c0, a.c1, a.c2}, y = {b.c0, b.c1, b.c2};
  std::array<Fp2, 5> t{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) t[i + j] += x[i] * y[j];
  return {t[0] + t[3] * kXi, t[1] + t[4] * kXi, t[2]};
}

// Fp12 as Σ g_k w^k over Fp2 with w^6 = ξ (the whole tower flattened, v = w^2): g0 = c0.c0,
// g1 = c1.c0, g2 = c0.c1, g3 = c1.c1, g4 = c0.c2, g5 = c1.c2.
std::array<Fp2, 6> flatten(const Fp12& a) {
  return {a.c0.c0, a.c1.c0, a.c0.c1, a.c1.c1, a.c0.c2, a.c1.c2};
}
Fp12 unflatten(const std::array<Fp2, 6>& g) {
  return {Fp6{g[0], g[2], g[4]}, Fp6{g[1], g[3], g[5]}};
}

// The k-th Fp coefficient in tower order (the encoding's order).
Fp* coefficient(Fp12& a, std::size_t k) {
  const std::array<Fp*, 12> slots = {&a.c0.c0.c0, &a.c0.c0.c1, &a.c0.c1.c0, &a.c0.c1.c1,
                                     &a.c0.c2.c0, &a.c0.c2.c1, &a.c1.c0.c0, &a.c1.c0.c1,
                                     &a.c1.c1.c0, &a.c1.c1.c1, &a.c1.c2.c0, &a.c1.c2.c1};
  return slots[k];
}

// Schoolbook Fp12 product over w: 36 products, then w^(6+k) = ξ w^k. Independent of the
// Karatsuba layers and of how Fp6 is nested in Fp12.
Fp12 schoolbook(const Fp12& a, const Fp12& b) {
  const auto x = flatten(a), y = flatten(b);
  std::array<Fp2, 11> t{};
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) t[i + j] += x[i] * y[j];
  std::array<Fp2, 6> g{};
  for (int k = 0; k < 6; ++k) g[k] = t[k] + (k + 6 < 11 ? t[k + 6] * kXi : Fp2::zero());
  return unflatten(g);
}

// The final exponentiation's first step, m = a^((p^6 - 1)(p^2 + 1)) = frob^2(conj(a) a^-1) ·
// conj(a) a^-1: an element of the cyclotomic subgroup.
Fp12 easy_part(const Fp12& a) {
  const Fp12 m = a.conjugate() * a.inverse();
  return m.frobenius().frobenius() * m;
}

// An Fp12 from twelve 96-digit hex coefficients in tower order.
Fp12 from_hex(const std::array<std::string_view, 12>& hex) {
  Fp12::Encoded bytes{};
  for (std::size_t k = 0; k < 12; ++k) {
    for (std::size_t i = 0; i < 48; ++i) {
      bytes[48 * k + i] =
          static_cast<std::uint8_t>(std::stoul(std::string(hex[k].substr(2 * i, 2)), nullptr, 16));
    }
  }
  const auto a = Fp12::from_bytes(bytes);
  EXPECT_TRUE(a.has_value());
  return a.value_or(Fp12::zero());
}

class TowerTest : public ::testing::Test {
 protected:
  TowerTest() : rng_(test_seed()) {}

  // Uniform below 2^380 < p: every draw is a canonical encoding.
  Fp random_fp() {
    std::array<std::uint8_t, 48> bytes{};
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng_());
    bytes[0] &= 0x0f;
    return Fp::from_bytes(bytes).value_or(Fp::zero());
  }
  Fp2 random_fp2() { return {random_fp(), random_fp()}; }
  Fp6 random_fp6() { return {random_fp2(), random_fp2(), random_fp2()}; }
  Fp12 random_fp12() { return {random_fp6(), random_fp6()}; }

  std::mt19937_64 rng_;
  // Printed with every failure: how to repeat the run.
  ::testing::ScopedTrace trace_{__FILE__, __LINE__,
                                "MCHAIN_FIELD_TEST_SEED=" + std::to_string(test_seed())};
};

using Fp6Test = TowerTest;
using Fp12Test = TowerTest;

// --- Fp6 ---------------------------------------------------------------------------------------

TEST_F(Fp6Test, FieldAxioms) {
  for (int i = 0; i < kIterations; ++i) {
    const Fp6 a = random_fp6(), b = random_fp6(), c = random_fp6();
    ASSERT_EQ(a + b, b + a);
    ASSERT_EQ(a * b, b * a);
    ASSERT_EQ((a + b) + c, a + (b + c));
    ASSERT_EQ((a * b) * c, a * (b * c));
    ASSERT_EQ(a * (b + c), a * b + a * c);
    ASSERT_EQ(a + Fp6::zero(), a);
    ASSERT_EQ(a * Fp6::one(), a);
    ASSERT_TRUE((a * Fp6::zero()).is_zero());
    ASSERT_TRUE(((-a) + a).is_zero());
    ASSERT_EQ(a - b + b, a);
    ASSERT_EQ(a.square(), a * a);
    ASSERT_EQ(a * a.inverse(), Fp6::one());
    Fp6 x = a;
    x += b;
    ASSERT_EQ(x, a + b);
    x -= c;
    ASSERT_EQ(x, a + b - c);
    x *= c;
    ASSERT_EQ(x, (a + b - c) * c);
    ASSERT_EQ(Fp6::select(a, b, false), a);
    ASSERT_EQ(Fp6::select(a, b, true), b);
    ASSERT_FALSE(a == b);
    ASSERT_FALSE(a.is_zero());
  }
  EXPECT_TRUE(Fp6::zero().inverse().is_zero());
  EXPECT_EQ(Fp6::one().inverse(), Fp6::one());
  EXPECT_TRUE(Fp6::zero().is_zero());
}

TEST_F(Fp6Test, ProductsMatchSchoolbook) {
  const Fp6 v{Fp2::zero(), Fp2::one(), Fp2::zero()};
  EXPECT_EQ(v * v * v, (Fp6{kXi, Fp2::zero(), Fp2::zero()})) << "v^3 = ξ";
  for (int i = 0; i < kIterations; ++i) {
    const Fp6 a = random_fp6(), b = random_fp6();
    ASSERT_EQ(a * b, schoolbook(a, b));
    ASSERT_EQ(a.square(), schoolbook(a, a));
  }
}

TEST_F(Fp6Test, MulByNonresidueAndSparseProducts) {
  const Fp6 v{Fp2::zero(), Fp2::one(), Fp2::zero()};
  for (int i = 0; i < kIterations; ++i) {
    const Fp6 a = random_fp6();
    const Fp2 b0 = random_fp2(), b1 = random_fp2();
    ASSERT_EQ(a.mul_by_nonresidue(), a * v);
    ASSERT_EQ(a.mul_by_1(b1), (a * Fp6{Fp2::zero(), b1, Fp2::zero()}));
    ASSERT_EQ(a.mul_by_01(b0, b1), (a * Fp6{b0, b1, Fp2::zero()}));
  }
}

TEST_F(Fp6Test, FrobeniusIsThePthPower) {
  const auto p = p_power(1);
  for (int i = 0; i < 10; ++i) {
    const Fp6 a = random_fp6();
    ASSERT_EQ(a.frobenius(), power(a, std::span<const std::uint64_t>(p)));
    Fp6 x = a;
    for (int k = 0; k < 6; ++k) {
      if (k > 0) {
        ASSERT_NE(x, a) << "a^(p^" << k << ") = a for a random a";
      }
      x = x.frobenius();
    }
    ASSERT_EQ(x, a) << "a^(p^6) = a in Fp6";
  }
}

// γ_k = ξ^(k(p-1)/6) recomputed by square-and-multiply in Fp2, with the exponent from GMP.
TEST_F(Fp6Test, FrobeniusCoefficientsArePowersOfXi) {
  const auto& gamma = detail::frobenius_gammas();
  for (unsigned long k = 0; k < 6; ++k) {
    Mpz e(kP);
    mpz_sub_ui(e.get(), e.get(), 1);
    ASSERT_TRUE(mpz_divisible_ui_p(e.get(), 6));
    mpz_divexact_ui(e.get(), e.get(), 6);
    mpz_mul_ui(e.get(), e.get(), k);
    const auto limbs = e.limbs();
    EXPECT_EQ(gamma[k], power(kXi, std::span<const std::uint64_t>(limbs))) << "γ_" << k;
  }
  // The shapes Fp6::frobenius relies on.
  EXPECT_TRUE(gamma[2].c0.is_zero());
  EXPECT_TRUE(gamma[4].c1.is_zero());
}

// --- Fp12 --------------------------------------------------------------------------------------

TEST_F(Fp12Test, FieldAxioms) {
  for (int i = 0; i < kIterations; ++i) {
    const Fp12 a = random_fp12(), b = random_fp12(), c = random_fp12();
    ASSERT_EQ(a + b, b + a);
    ASSERT_EQ(a * b, b * a);
    ASSERT_EQ((a + b) + c, a + (b + c));
    ASSERT_EQ((a * b) * c, a * (b * c));
    ASSERT_EQ(a * (b + c), a * b + a * c);
    ASSERT_EQ(a + Fp12::zero(), a);
    ASSERT_EQ(a * Fp12::one(), a);
    ASSERT_TRUE((a * Fp12::zero()).is_zero());
    ASSERT_TRUE(((-a) + a).is_zero());
    ASSERT_EQ(a - b + b, a);
    ASSERT_EQ(a.square(), a * a);
    ASSERT_TRUE((a * a.inverse()).is_one());
    Fp12 x = a;
    x += b;
    ASSERT_EQ(x, a + b);
    x -= c;
    ASSERT_EQ(x, a + b - c);
    x *= c;
    ASSERT_EQ(x, (a + b - c) * c);
    ASSERT_EQ(Fp12::select(a, b, false), a);
    ASSERT_EQ(Fp12::select(a, b, true), b);
    ASSERT_FALSE(a == b);
    ASSERT_FALSE(a.is_zero());
    ASSERT_FALSE(a.is_one());
  }
  EXPECT_TRUE(Fp12::zero().inverse().is_zero());
  EXPECT_TRUE(Fp12::one().inverse().is_one());
  EXPECT_TRUE(Fp12::one().is_one());
  EXPECT_TRUE(Fp12::zero().is_zero());
  EXPECT_FALSE(Fp12::zero().is_one());
  EXPECT_FALSE(Fp12::one().is_zero());
}

// is_zero, is_one and == look at all twelve Fp coefficients.
TEST_F(Fp12Test, PredicatesSeeEveryCoefficient) {
  for (std::size_t k = 0; k < 12; ++k) {
    Fp12 zero_but_one = Fp12::zero(), one_but_one = Fp12::one();
    *coefficient(zero_but_one, k) = Fp::one();
    *coefficient(one_but_one, k) += Fp::one();
    EXPECT_FALSE(zero_but_one.is_zero()) << k;
    EXPECT_FALSE(zero_but_one == Fp12::zero()) << k;
    EXPECT_FALSE(one_but_one.is_one()) << k;
    EXPECT_FALSE(one_but_one == Fp12::one()) << k;
    EXPECT_EQ(zero_but_one, zero_but_one);
    EXPECT_EQ(Fp12::select(Fp12::zero(), zero_but_one, true), zero_but_one) << k;
  }
}

TEST_F(Fp12Test, ProductsMatchSchoolbook) {
  const Fp12 w{Fp6::zero(), Fp6::one()};
  EXPECT_EQ(w * w, (Fp12{Fp6{Fp2::zero(), Fp2::one(), Fp2::zero()}, Fp6::zero()})) << "w^2 = v";
  for (int i = 0; i < kIterations; ++i) {
    const Fp12 a = random_fp12(), b = random_fp12();
    ASSERT_EQ(a * b, schoolbook(a, b));
    ASSERT_EQ(a.square(), schoolbook(a, a));
    ASSERT_EQ(a.inverse() * schoolbook(a, b), b);
  }
}

TEST_F(Fp12Test, MulBy014MatchesFullProduct) {
  for (int i = 0; i < kIterations; ++i) {
    const Fp12 a = random_fp12();
    const Fp2 b0 = random_fp2(), b1 = random_fp2(), b4 = random_fp2();
    const Fp12 sparse{Fp6{b0, b1, Fp2::zero()}, Fp6{Fp2::zero(), b4, Fp2::zero()}};
    ASSERT_EQ(a.mul_by_014(b0, b1, b4), a * sparse);
    ASSERT_EQ(a.mul_by_014(b0, b1, b4), schoolbook(a, sparse));
  }
}

TEST_F(Fp12Test, PowIsRepeatedMultiplication) {
  const Fp12 a = random_fp12();
  EXPECT_TRUE(a.pow({}).is_one());
  const std::array<std::uint64_t, 1> zero = {0};
  EXPECT_TRUE(a.pow(zero).is_one());
  EXPECT_TRUE(Fp12::zero().pow(zero).is_one());
  Fp12 x = Fp12::one();
  for (std::uint64_t e = 1; e <= 20; ++e) {
    x *= a;
    const std::array<std::uint64_t, 1> exponent = {e};
    ASSERT_EQ(a.pow(exponent), x) << "a^" << e;
  }
  // 2^64 + 3, across a limb boundary, with leading zero limbs.
  const std::array<std::uint64_t, 4> big = {3, 1, 0, 0};
  Fp12 y = a;
  for (int i = 0; i < 64; ++i) y = y.square();
  EXPECT_EQ(a.pow(big), y * a * a * a);
  // a^(e1 + e2) = a^e1 · a^e2 for random two-limb exponents (e1 + e2 fits three limbs).
  const std::array<std::uint64_t, 2> e1 = {rng_(), rng_() >> 1}, e2 = {rng_(), rng_() >> 1};
  const detail::u128 low = detail::u128{e1[0]} + e2[0];
  const std::array<std::uint64_t, 2> sum = {static_cast<std::uint64_t>(low),
                                            e1[1] + e2[1] + static_cast<std::uint64_t>(low >> 64)};
  EXPECT_EQ(a.pow(sum), a.pow(e1) * a.pow(e2));
}

TEST_F(Fp12Test, FrobeniusIsThePthPower) {
  const auto p = p_power(1);
  for (int i = 0; i < 10; ++i) {
    const Fp12 a = random_fp12();
    ASSERT_EQ(a.frobenius(), a.pow(p));
    Fp12 x = a;
    for (int k = 0; k < 12; ++k) {
      if (k > 0) {
        ASSERT_NE(x, a) << "a^(p^" << k << ") = a for a random a";
      }
      x = x.frobenius();
    }
    ASSERT_EQ(x, a) << "a^(p^12) = a";
  }
  const auto p6 = p_power(6);
  for (int i = 0; i < 4; ++i) {
    const Fp12 a = random_fp12();
    ASSERT_EQ(a.conjugate(), a.pow(p6));
    Fp12 x = a;
    for (int k = 0; k < 6; ++k) x = x.frobenius();
    ASSERT_EQ(x, a.conjugate());
  }
}

TEST_F(Fp12Test, CyclotomicSquareInTheCyclotomicSubgroup) {
  for (int i = 0; i < 50; ++i) {
    const Fp12 a = random_fp12();
    const Fp12 g = easy_part(a);
    // g^(p^4 - p^2 + 1) = 1, i.e. g^(p^4) g = g^(p^2).
    const Fp12 g2 = g.frobenius().frobenius();
    ASSERT_EQ(g2.frobenius().frobenius() * g, g2);
    ASSERT_EQ(g.cyclotomic_square(), g.square());
    // Repeated, as in the final exponentiation's x-power chains.
    Fp12 x = g, y = g;
    for (int k = 0; k < 10; ++k) {
      x = x.cyclotomic_square();
      y = y.square();
    }
    ASSERT_EQ(x, y);
    // The precondition matters: a random element, and one of norm 1 over Fp6 only
    // (conj(a)/a, whose order divides p^6 + 1 but not p^4 - p^2 + 1), give wrong squares.
    ASSERT_NE(a.cyclotomic_square(), a.square());
    const Fp12 m = a.conjugate() * a.inverse();
    ASSERT_EQ(m.conjugate(), m.inverse());
    ASSERT_NE(m.cyclotomic_square(), m.square());
  }
}

// Fixed external values through the whole tower: the published library value is the cube of the
// literal one, both have order r, and both lie in the cyclotomic subgroup.
TEST_F(Fp12Test, PublishedPairingValues) {
  const Fp12 literal = from_hex(testing::kPairingLiteral);
  const Fp12 library = from_hex(testing::kPairingLibrary);
  EXPECT_EQ(literal * literal * literal, library);
  EXPECT_EQ(literal.cyclotomic_square() * literal, library);
  const std::array<std::uint64_t, 1> three = {3};
  EXPECT_EQ(literal.pow(three), library);
  Mpz r(kR);
  const auto r_limbs = r.limbs();
  EXPECT_TRUE(literal.pow(r_limbs).is_one());
  EXPECT_TRUE(library.pow(r_limbs).is_one());
  EXPECT_FALSE(literal.is_one());
  for (const Fp12& g : {literal, library}) {
    EXPECT_EQ(g.cyclotomic_square(), g.square());
    EXPECT_EQ(g.conjugate(), g.inverse());
    const Fp12 g2 = g.frobenius().frobenius();
    EXPECT_EQ(g2.frobenius().frobenius() * g, g2);
  }
}

TEST_F(Fp12Test, Encoding) {
  for (int i = 0; i < kIterations; ++i) {
    const Fp12 a = random_fp12();
    const auto bytes = a.to_bytes();
    const auto back = Fp12::from_bytes(bytes);
    ASSERT_TRUE(back.has_value());
    ASSERT_EQ(*back, a);
    ASSERT_EQ(back->to_bytes(), bytes);
  }
  // Tower order: the k-th 48-byte block is c0.c0.c0, c0.c0.c1, c0.c1.c0, ..., c1.c2.c1.
  Fp12 a;
  for (std::size_t k = 0; k < 12; ++k) *coefficient(a, k) = Fp::from_u64(0x100 + k);
  const auto bytes = a.to_bytes();
  for (std::size_t k = 0; k < 12; ++k) {
    for (std::size_t i = 0; i < 46; ++i) ASSERT_EQ(bytes[48 * k + i], 0) << k;
    EXPECT_EQ(bytes[48 * k + 46], 0x01) << k;
    EXPECT_EQ(bytes[48 * k + 47], k) << k;
  }
  EXPECT_TRUE(Fp12::zero().to_bytes() == Fp12::Encoded{});

  // Lengths other than 576.
  const std::vector<std::uint8_t> long_bytes(Fp12::kBytes + 1, 0);
  const std::span<const std::uint8_t> all(long_bytes);
  EXPECT_TRUE(Fp12::from_bytes(all.first(Fp12::kBytes)).has_value());
  EXPECT_FALSE(Fp12::from_bytes(all).has_value());
  EXPECT_FALSE(Fp12::from_bytes(all.first(Fp12::kBytes - 1)).has_value());
  EXPECT_FALSE(Fp12::from_bytes(all.first(48)).has_value());
  EXPECT_FALSE(Fp12::from_bytes({}).has_value());

  // p (not canonical) in each position is refused; p - 1 is accepted.
  Fp::Encoded p_bytes{};
  for (std::size_t i = 0; i < 48; ++i) {
    p_bytes[i] = static_cast<std::uint8_t>(std::stoul(std::string(kP + 2 * i, 2), nullptr, 16));
  }
  Fp::Encoded p_minus_one = p_bytes;
  p_minus_one[47] -= 1;  // p ends in ...ab
  const Fp12::Encoded good = random_fp12().to_bytes();
  for (std::size_t k = 0; k < 12; ++k) {
    Fp12::Encoded bad = good;
    std::copy(p_bytes.begin(), p_bytes.end(), bad.begin() + 48 * k);
    EXPECT_FALSE(Fp12::from_bytes(bad).has_value()) << "p at coefficient " << k;
    std::fill(bad.begin() + 48 * k, bad.begin() + 48 * (k + 1), 0xff);
    EXPECT_FALSE(Fp12::from_bytes(bad).has_value()) << "all-ones at coefficient " << k;
    std::copy(p_minus_one.begin(), p_minus_one.end(), bad.begin() + 48 * k);
    const auto decoded = Fp12::from_bytes(bad);
    ASSERT_TRUE(decoded.has_value()) << "p - 1 at coefficient " << k;
    EXPECT_EQ(decoded->to_bytes(), bad);
  }
}

}  // namespace
}  // namespace mchain::abe
