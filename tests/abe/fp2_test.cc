// Fp2 = Fp[u]/(u^2+1) (abe/pairing/fp2.h): products and inverses against GMP's arithmetic on
// the coordinates, the field axioms, and the Frobenius map against a^p.
#include "abe/pairing/fp2.h"

#include <gmp.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>

namespace mchain::abe {
namespace {

constexpr int kIterations = 2000;

class Fp2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = std::random_device{}();
    random_.seed(seed_);
    mpz_init_set_str(p_,
                     "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153f"
                     "fffb9feffffffffaaab",
                     16);
  }
  void TearDown() override { mpz_clear(p_); }

  // Uniform below 2^380 < p: every draw is a canonical encoding.
  Fp random_fp() {
    std::array<std::uint8_t, 48> bytes{};
    for (auto& b : bytes) b = static_cast<std::uint8_t>(random_());
    bytes[0] &= 0x0f;
    return *Fp::from_bytes(bytes);
  }
  Fp2 random_fp2() { return {random_fp(), random_fp()}; }

  void to_mpz(const Fp& a, mpz_t out) {
    const auto bytes = a.to_bytes();
    mpz_import(out, bytes.size(), 1, 1, 1, 0, bytes.data());
  }
  // x == a (an Fp) as integers.
  bool equal(const Fp& a, const mpz_t x) {
    mpz_t y;
    mpz_init(y);
    to_mpz(a, y);
    const bool same = mpz_cmp(x, y) == 0;
    mpz_clear(y);
    return same;
  }

  std::uint32_t seed_ = 0;
  std::mt19937_64 random_;
  mpz_t p_;
};

TEST_F(Fp2Test, ProductsAndInversesAgreeWithGmp) {
  mpz_t a0, a1, b0, b1, re, im, t, n;
  for (auto* z : {&a0, &a1, &b0, &b1, &re, &im, &t, &n}) mpz_init(*z);
  for (int i = 0; i < kIterations; ++i) {
    const Fp2 a = random_fp2(), b = random_fp2();
    to_mpz(a.c0, a0);
    to_mpz(a.c1, a1);
    to_mpz(b.c0, b0);
    to_mpz(b.c1, b1);
    // (a0 b0 - a1 b1) + (a0 b1 + a1 b0) u
    mpz_mul(re, a0, b0);
    mpz_submul(re, a1, b1);
    mpz_mod(re, re, p_);
    mpz_mul(im, a0, b1);
    mpz_addmul(im, a1, b0);
    mpz_mod(im, im, p_);
    const Fp2 ab = a * b;
    ASSERT_TRUE(equal(ab.c0, re) && equal(ab.c1, im)) << "seed " << seed_;
    const Fp2 aa = a.square();
    ASSERT_EQ(aa, a * a) << "seed " << seed_;
    // a^-1 = (a0 - a1 u) / (a0^2 + a1^2)
    mpz_mul(n, a0, a0);
    mpz_addmul(n, a1, a1);
    mpz_mod(n, n, p_);
    ASSERT_NE(mpz_invert(n, n, p_), 0);
    mpz_mul(re, a0, n);
    mpz_mod(re, re, p_);
    mpz_mul(im, a1, n);
    mpz_neg(im, im);
    mpz_mod(im, im, p_);
    const Fp2 inv = a.inverse();
    ASSERT_TRUE(equal(inv.c0, re) && equal(inv.c1, im)) << "seed " << seed_;
    ASSERT_EQ(a * inv, Fp2::one()) << "seed " << seed_;
  }
  for (auto* z : {&a0, &a1, &b0, &b1, &re, &im, &t, &n}) mpz_clear(*z);
}

TEST_F(Fp2Test, FieldAxioms) {
  for (int i = 0; i < kIterations; ++i) {
    const Fp2 a = random_fp2(), b = random_fp2(), c = random_fp2();
    ASSERT_EQ(a + b, b + a);
    ASSERT_EQ(a * b, b * a);
    ASSERT_EQ((a + b) + c, a + (b + c));
    ASSERT_EQ((a * b) * c, a * (b * c));
    ASSERT_EQ(a * (b + c), a * b + a * c);
    ASSERT_EQ(a - a, Fp2::zero());
    ASSERT_EQ(a + (-a), Fp2::zero());
    ASSERT_EQ(a * Fp2::one(), a);
    const Fp2 xi{Fp::one(), Fp::one()};
    ASSERT_EQ(a.mul_by_nonresidue(), a * xi) << "seed " << seed_;
    ASSERT_TRUE((a * a.conjugate()).c1.is_zero()) << "the norm lies in Fp";
    ASSERT_EQ(Fp2::select(a, b, false), a);
    ASSERT_EQ(Fp2::select(a, b, true), b);
  }
  const Fp2 u{Fp::zero(), Fp::one()};
  EXPECT_EQ(u * u, -Fp2::one());
  EXPECT_EQ(u.square(), -Fp2::one());
  EXPECT_TRUE(Fp2::zero().inverse().is_zero());
  EXPECT_EQ(Fp2::one().inverse(), Fp2::one());
}

TEST_F(Fp2Test, FrobeniusIsThePthPower) {
  // a^p by square-and-multiply over p's bits (public), against the conjugate.
  const std::array<std::uint64_t, 6> p = FpParams::kModulus;
  for (int i = 0; i < 20; ++i) {
    const Fp2 a = random_fp2();
    Fp2 r = Fp2::one();
    for (std::size_t limb = p.size(); limb-- > 0;) {
      for (int bit = 63; bit >= 0; --bit) {
        r = r.square();
        if ((p[limb] >> bit) & 1) r *= a;
      }
    }
    ASSERT_EQ(r, a.frobenius()) << "seed " << seed_;
    ASSERT_EQ(a.frobenius().frobenius(), a);
  }
}

}  // namespace
}  // namespace mchain::abe
