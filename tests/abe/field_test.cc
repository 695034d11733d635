// Fp and Fr of BLS12-381 (abe/pairing/fields.h) against GMP: every operation on random inputs
// and on edge values, the encodings, and the Montgomery constants recomputed from the moduli.
//
// The random inputs come from a seed that is new on every run and printed with any failure;
// MCHAIN_FIELD_TEST_SEED=<n> repeats a run. MCHAIN_FIELD_TEST_ITERATIONS=<n> changes how many
// random inputs each test draws (default kIterations, or kPowIterations for the exponentiations).
#include <gmp.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "abe/pairing/fields.h"
#include "mpz.h"

namespace {

using mchain::abe::Fp;
using mchain::abe::Fr;

// 10^5 random inputs per operation (pairing.md section 5, mandatory self-test 1)...
constexpr int kIterations = 100'000;
// ...except the exponentiations (pow, inverse, sqrt): ~400-570 multiplications each, 25-90 us
// here, so 10^5 of each would take ~30 s. 10^4 keeps the binary under 5 s;
// MCHAIN_FIELD_TEST_ITERATIONS=100000 runs the full 10^5 for them too.
constexpr int kPowIterations = 10'000;

using mchain::abe::testing::Mpz;
// A full-width modulus, the largest prime below 2^128: sums of two elements and the CIOS
// accumulator overflow R here, which they never do for p (381 of 384 bits) or r (255 of 256),
// so only this field exercises the carry word of the final subtraction. Constants computed
// with Python and checked against GMP below like Fp's and Fr's.
struct FullWidthParams {
  static constexpr std::size_t kLimbs = 2;
  static constexpr std::array<std::uint64_t, 2> kModulus = {0xffffffffffffff61, 0xffffffffffffffff};
  static constexpr std::uint64_t kInv = 0xb5efe63d2eb11b5f;
  static constexpr std::array<std::uint64_t, 2> kR = {0x9f, 0};
  static constexpr std::array<std::uint64_t, 2> kR2 = {0x62c1, 0};
  static constexpr std::size_t kBits = 128;
  static constexpr std::size_t kBytes = 16;
};
using F128 = mchain::abe::MontgomeryField<FullWidthParams>;

// The moduli as written in pairing.md section 1 (the draft's p and r), and 2^128 - 159.
template <typename F>
struct Modulus;
template <>
struct Modulus<F128> {
  static constexpr const char* kHex = "ffffffffffffffffffffffffffffff61";
};
template <>
struct Modulus<Fp> {
  static constexpr const char* kHex =
      "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffff"
      "aaab";
};
template <>
struct Modulus<Fr> {
  static constexpr const char* kHex =
      "73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001";
};

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::strtoull(value, nullptr, 0) : fallback;
}

std::uint64_t test_seed() {
  static const std::uint64_t seed =
      env_u64("MCHAIN_FIELD_TEST_SEED",
              (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}());
  return seed;
}

// Unoptimised builds (the ASan/UBSan preset is Debug, ~20x slower here) draw a tenth: they are
// there to catch undefined behaviour and memory errors, which a tenth finds as well.
int iterations(int fallback) {
#ifndef NDEBUG
  fallback /= 10;
#endif
  return static_cast<int>(env_u64("MCHAIN_FIELD_TEST_ITERATIONS", fallback));
}

Mpz limbs_to_mpz(std::span<const std::uint64_t> limbs) {
  Mpz x;
  mpz_import(x.get(), limbs.size(), -1, sizeof(std::uint64_t), 0, 0, limbs.data());
  return x;
}

template <typename F>
class FieldTest : public ::testing::Test {
 protected:
  static constexpr std::size_t kBytes = F::kBytes;

  FieldTest() : m_(Modulus<F>::kHex), rng_(test_seed()) {}

  // Uniform in [0, m): kBits random bits, rejected until below m.
  Mpz random_element() {
    std::array<std::uint64_t, F::kLimbs> limbs;
    Mpz x;
    do {
      for (auto& limb : limbs) limb = rng_();
      limbs[F::kLimbs - 1] &= ~std::uint64_t{0} >> (64 * F::kLimbs - F::kBits);
      x = limbs_to_mpz(limbs);
    } while (mpz_cmp(x.get(), m_.get()) >= 0);
    return x;
  }

  // x (any size) as kBytes big-endian bytes; more than kBytes bytes are cut to the low ones.
  static std::vector<std::uint8_t> encode(const Mpz& x, std::size_t length = kBytes) {
    std::size_t count = 0;
    std::vector<std::uint8_t> raw((mpz_sizeinbase(x.get(), 2) + 7) / 8 + 1);
    mpz_export(raw.data(), &count, 1, 1, 1, 0, x.get());
    raw.resize(count);
    std::vector<std::uint8_t> out(length, 0);
    for (std::size_t i = 0; i < count && i < length; ++i) out[length - 1 - i] = raw[count - 1 - i];
    return out;
  }

  static F to_field(const Mpz& x) {
    const std::optional<F> f = F::from_bytes(encode(x));
    EXPECT_TRUE(f.has_value()) << "from_bytes refused " << x;
    return f.value_or(F::zero());
  }

  static Mpz to_mpz(const F& f) {
    const typename F::Encoded bytes = f.to_bytes();
    Mpz x;
    mpz_import(x.get(), bytes.size(), 1, 1, 1, 0, bytes.data());
    return x;
  }

  // got (a field element) equals want (reduced by the caller), through its encoding and in its
  // stored form: to_bytes reduces, so only the stored limbs show a missed final subtraction.
  ::testing::AssertionResult same(const F& got, const Mpz& want) const {
    const Mpz g = to_mpz(got);
    if (!(g == want)) return ::testing::AssertionFailure() << "got " << g << ", want " << want;
    Mpz mont;
    mpz_mul_2exp(mont.get(), want.get(), 64 * F::kLimbs);
    mont = reduce(mont);
    const Mpz stored = limbs_to_mpz(got.montgomery_limbs());
    if (!(stored == mont)) {
      return ::testing::AssertionFailure()
             << "value " << g << " stored as " << stored << ", want a·R mod m = " << mont;
    }
    return ::testing::AssertionSuccess();
  }

  Mpz reduce(Mpz x) const {
    mpz_mod(x.get(), x.get(), m_.get());
    return x;
  }

  // The operations, checked on one input each; used by the random and the edge-value tests.
  ::testing::AssertionResult check_add(const Mpz& a, const Mpz& b) const {
    Mpz want;
    mpz_add(want.get(), a.get(), b.get());
    return same(to_field(a) + to_field(b), reduce(want));
  }
  ::testing::AssertionResult check_sub(const Mpz& a, const Mpz& b) const {
    Mpz want;
    mpz_sub(want.get(), a.get(), b.get());
    return same(to_field(a) - to_field(b), reduce(want));
  }
  ::testing::AssertionResult check_mul(const Mpz& a, const Mpz& b) const {
    Mpz want;
    mpz_mul(want.get(), a.get(), b.get());
    return same(to_field(a) * to_field(b), reduce(want));
  }
  ::testing::AssertionResult check_neg(const Mpz& a) const {
    Mpz want;
    mpz_neg(want.get(), a.get());
    return same(-to_field(a), reduce(want));
  }
  ::testing::AssertionResult check_square(const Mpz& a) const {
    Mpz want;
    mpz_mul(want.get(), a.get(), a.get());
    return same(to_field(a).square(), reduce(want));
  }
  // a^-1, and 0 for 0 (documented in montgomery.h).
  ::testing::AssertionResult check_inverse(const Mpz& a) const {
    Mpz want;
    if (mpz_sgn(a.get()) != 0) mpz_invert(want.get(), a.get(), m_.get());
    const F inv = to_field(a).inverse();
    if (auto r = same(inv, want); !r) return r;
    if (mpz_sgn(a.get()) != 0 && !(inv * to_field(a) == F::one())) {
      return ::testing::AssertionFailure() << "a * a^-1 != 1";
    }
    return ::testing::AssertionSuccess();
  }
  ::testing::AssertionResult check_pow(const Mpz& a, std::span<const std::uint64_t> e) const {
    Mpz want;
    mpz_powm(want.get(), a.get(), limbs_to_mpz(e).get(), m_.get());
    return same(to_field(a).pow(e), want) << " (exponent " << limbs_to_mpz(e) << ")";
  }
  // Fp only: a root exactly when GMP says a is a residue (or zero), the root squares to a, and
  // it is a^((p+1)/4) as documented.
  ::testing::AssertionResult check_sqrt(const Mpz& a, bool* had_root = nullptr) const {
    const std::optional<F> s = to_field(a).sqrt();
    const bool residue = mpz_sgn(a.get()) == 0 || mpz_legendre(a.get(), m_.get()) == 1;
    if (had_root != nullptr) *had_root = residue;
    if (s.has_value() != residue) {
      return ::testing::AssertionFailure()
             << "sqrt " << (s ? "found a root" : "found no root") << ", GMP's Legendre symbol "
             << mpz_legendre(a.get(), m_.get());
    }
    if (!s) return ::testing::AssertionSuccess();
    Mpz squared = to_mpz(*s);
    mpz_mul(squared.get(), squared.get(), squared.get());
    if (!(reduce(squared) == a)) return ::testing::AssertionFailure() << "sqrt(a)^2 != a";
    if (!(s->square() == to_field(a))) return ::testing::AssertionFailure() << "s.square() != a";
    Mpz exponent, want;
    mpz_add_ui(exponent.get(), m_.get(), 1);
    mpz_fdiv_q_2exp(exponent.get(), exponent.get(), 2);
    mpz_powm(want.get(), a.get(), exponent.get(), m_.get());
    return same(*s, want);
  }

  // 0, 1, 2, m-1, m-2, (m±1)/2, 2^(64k)-1 (all limbs ff..ff below the top), the largest value
  // whose lower limbs are all ff..ff (top limb of m minus one), R mod m and 2^(kBits-1).
  std::vector<Mpz> edge_values() const {
    std::vector<Mpz> out;
    auto add = [&](const Mpz& x) { out.push_back(x); };
    for (unsigned long small : {0UL, 1UL, 2UL, 3UL}) {
      Mpz x;
      mpz_set_ui(x.get(), small);
      add(x);
    }
    for (unsigned long below : {1UL, 2UL, 3UL}) {
      Mpz x;
      mpz_sub_ui(x.get(), m_.get(), below);
      add(x);
    }
    Mpz half;
    mpz_fdiv_q_2exp(half.get(), m_.get(), 1);  // (m-1)/2
    add(half);
    mpz_add_ui(half.get(), half.get(), 1);  // (m+1)/2
    add(half);
    for (std::size_t k = 1; k < F::kLimbs; ++k) {
      Mpz x;
      mpz_ui_pow_ui(x.get(), 2, 64 * k);
      mpz_sub_ui(x.get(), x.get(), 1);
      add(x);
    }
    std::array<std::uint64_t, F::kLimbs> limbs;
    limbs.fill(~std::uint64_t{0});
    limbs[F::kLimbs - 1] = F::kModulus[F::kLimbs - 1] - 1;
    add(limbs_to_mpz(limbs));
    Mpz r;
    mpz_ui_pow_ui(r.get(), 2, 64 * F::kLimbs);
    add(reduce(r));
    Mpz top;
    mpz_ui_pow_ui(top.get(), 2, F::kBits - 1);
    add(top);
    return out;
  }

  std::vector<std::uint64_t> random_exponent() {
    std::vector<std::uint64_t> e(rng_() % (F::kLimbs + 2));  // 0 .. N+1 limbs
    for (auto& limb : e) limb = rng_();
    return e;
  }

  Mpz m_;
  std::mt19937_64 rng_;
  // Printed with every failure: how to repeat the run.
  ::testing::ScopedTrace trace_{__FILE__, __LINE__,
                                "MCHAIN_FIELD_TEST_SEED=" + std::to_string(test_seed())};
};

using Fields = ::testing::Types<Fp, Fr, F128>;
class FieldNames {
 public:
  template <typename F>
  static std::string GetName(int) {
    return std::is_same_v<F, Fp> ? "Fp" : std::is_same_v<F, Fr> ? "Fr" : "F128";
  }
};
TYPED_TEST_SUITE(FieldTest, Fields, FieldNames);

TYPED_TEST(FieldTest, ConstantsMatchGmp) {
  using F = TypeParam;
  const Mpz& m = this->m_;
  EXPECT_EQ(limbs_to_mpz(F::kModulus), m);
  EXPECT_EQ(mpz_sizeinbase(m.get(), 2), F::kBits);
  EXPECT_EQ((F::kBits + 7) / 8, F::kBytes);

  Mpz r, r2, inv, word;
  mpz_ui_pow_ui(r.get(), 2, 64 * F::kLimbs);
  mpz_mod(r.get(), r.get(), m.get());
  mpz_mul(r2.get(), r.get(), r.get());
  mpz_mod(r2.get(), r2.get(), m.get());
  mpz_ui_pow_ui(word.get(), 2, 64);
  ASSERT_NE(mpz_invert(inv.get(), m.get(), word.get()), 0);
  mpz_sub(inv.get(), word.get(), inv.get());  // -m^-1 mod 2^64

  using P = typename F::Params;
  EXPECT_GT(mpz_probab_prime_p(m.get(), 40), 0);
  EXPECT_EQ(limbs_to_mpz(P::kR), r);
  EXPECT_EQ(limbs_to_mpz(P::kR2), r2);
  EXPECT_EQ(limbs_to_mpz(std::array{P::kInv}), inv);

  // one is R in Montgomery form; from_u64(1) and from_bytes(1) agree with it.
  EXPECT_EQ(limbs_to_mpz(F::one().montgomery_limbs()), r);
  EXPECT_TRUE(F::from_u64(1) == F::one());
  EXPECT_TRUE(F::zero().is_zero());
  EXPECT_FALSE(F::one().is_zero());
  EXPECT_FALSE(F::one() == F::zero());
}

// Fp has the p ≡ 3 (mod 4) square root; Fr (r ≡ 1 mod 4) must not offer it.
template <typename F>
concept HasSqrt = requires(const F& f) {
  f.sqrt();
};
TEST(FieldApi, SqrtOnlyWhereTheModulusIsThreeModFour) {
  static_assert(HasSqrt<Fp>);
  static_assert(!HasSqrt<Fr>);
  EXPECT_EQ(mchain::abe::FpParams::kModulus[0] & 3, 3u);
  EXPECT_EQ(mchain::abe::FrParams::kModulus[0] & 3, 1u);
}

TYPED_TEST(FieldTest, RandomAdd) {
  for (int i = iterations(kIterations); i-- > 0;) {
    const Mpz a = this->random_element(), b = this->random_element();
    ASSERT_TRUE(this->check_add(a, b)) << "a=" << a << " b=" << b;
  }
}

TYPED_TEST(FieldTest, RandomSub) {
  for (int i = iterations(kIterations); i-- > 0;) {
    const Mpz a = this->random_element(), b = this->random_element();
    ASSERT_TRUE(this->check_sub(a, b)) << "a=" << a << " b=" << b;
  }
}

TYPED_TEST(FieldTest, RandomNeg) {
  for (int i = iterations(kIterations); i-- > 0;) {
    const Mpz a = this->random_element();
    ASSERT_TRUE(this->check_neg(a)) << "a=" << a;
  }
}

TYPED_TEST(FieldTest, RandomMul) {
  for (int i = iterations(kIterations); i-- > 0;) {
    const Mpz a = this->random_element(), b = this->random_element();
    ASSERT_TRUE(this->check_mul(a, b)) << "a=" << a << " b=" << b;
  }
}

TYPED_TEST(FieldTest, RandomSquare) {
  for (int i = iterations(kIterations); i-- > 0;) {
    const Mpz a = this->random_element();
    ASSERT_TRUE(this->check_square(a)) << "a=" << a;
  }
}

TYPED_TEST(FieldTest, RandomInverse) {
  for (int i = iterations(kPowIterations); i-- > 0;) {
    const Mpz a = this->random_element();
    ASSERT_TRUE(this->check_inverse(a)) << "a=" << a;
  }
}

TYPED_TEST(FieldTest, RandomPow) {
  for (int i = iterations(kPowIterations); i-- > 0;) {
    const Mpz a = this->random_element();
    const std::vector<std::uint64_t> e = this->random_exponent();
    ASSERT_TRUE(this->check_pow(a, e)) << "a=" << a;
  }
}

// Random elements (about half are squares, half are not) and random squares, which must have
// a root. Fr has no sqrt (r ≡ 1 mod 4; see FieldApi above).
using FpFieldTest = FieldTest<Fp>;
TEST_F(FpFieldTest, RandomSqrt) {
  int roots = 0, non_residues = 0;
  for (int i = iterations(kPowIterations); i-- > 0;) {
    Mpz a = random_element();
    if (i % 2 == 0) {
      mpz_mul(a.get(), a.get(), a.get());
      a = reduce(a);
    }
    bool had_root = false;
    ASSERT_TRUE(check_sqrt(a, &had_root)) << "a=" << a;
    ++(had_root ? roots : non_residues);
  }
  // Both branches were exercised (each is about 1/4 of the draws at the very least).
  if (iterations(kPowIterations) >= 100) {
    EXPECT_GT(roots, iterations(kPowIterations) / 4);
    EXPECT_GT(non_residues, iterations(kPowIterations) / 8);
  }
}

TYPED_TEST(FieldTest, RandomMontgomeryRoundTrip) {
  using F = TypeParam;
  for (int i = iterations(kIterations); i-- > 0;) {
    const Mpz a = this->random_element();
    const std::vector<std::uint8_t> bytes = this->encode(a);
    const std::optional<F> f = F::from_bytes(bytes);
    ASSERT_TRUE(f.has_value()) << "a=" << a;
    const typename F::Encoded back = f->to_bytes();
    ASSERT_TRUE(std::equal(back.begin(), back.end(), bytes.begin(), bytes.end())) << "a=" << a;
    // The stored form really is a·R mod m.
    Mpz mont;
    mpz_mul_2exp(mont.get(), a.get(), 64 * F::kLimbs);
    ASSERT_EQ(limbs_to_mpz(f->montgomery_limbs()), this->reduce(mont)) << "a=" << a;
  }
}

TYPED_TEST(FieldTest, FromU64) {
  using F = TypeParam;
  for (int i = iterations(kIterations); i-- > 0;) {
    const std::uint64_t v =
        i < 4 ? ~std::uint64_t{0} * static_cast<std::uint64_t>(i & 1) + i : this->rng_();
    const Mpz want = limbs_to_mpz(std::array{v});
    ASSERT_TRUE(this->same(F::from_u64(v), want)) << "v=" << v;
    ASSERT_TRUE(F::from_u64(v) == this->to_field(want)) << "v=" << v;
  }
}

TYPED_TEST(FieldTest, EqualityAndSelect) {
  using F = TypeParam;
  for (int i = iterations(kIterations) / 10; i-- > 0;) {
    const Mpz a = this->random_element();
    const Mpz b = i % 2 == 0 ? a : this->random_element();
    const F fa = this->to_field(a), fb = this->to_field(b);
    ASSERT_EQ(fa == fb, a == b) << "a=" << a << " b=" << b;
    ASSERT_EQ(fa.is_zero(), mpz_sgn(a.get()) == 0);
    ASSERT_TRUE(F::select(fa, fb, false) == fa);
    ASSERT_TRUE(F::select(fa, fb, true) == fb);
  }
}

TYPED_TEST(FieldTest, EdgeValues) {
  using F = TypeParam;
  const std::vector<Mpz> values = this->edge_values();
  std::vector<std::vector<std::uint64_t>> exponents = {{}, {0}, {1}, {2}, {~std::uint64_t{0}}};
  for (std::uint64_t below : {1, 2}) {  // m-1 and m-2
    std::vector<std::uint64_t> e(F::kModulus.begin(), F::kModulus.end());
    e[0] -= below;
    exponents.push_back(e);
  }
  for (const Mpz& a : values) {
    EXPECT_TRUE(this->check_neg(a)) << "a=" << a;
    EXPECT_TRUE(this->check_square(a)) << "a=" << a;
    EXPECT_TRUE(this->check_inverse(a)) << "a=" << a;
    if constexpr (std::is_same_v<F, Fp>) {
      EXPECT_TRUE(this->check_sqrt(a)) << "a=" << a;
    }
    for (const auto& e : exponents) EXPECT_TRUE(this->check_pow(a, e)) << "a=" << a;
    for (const Mpz& b : values) {
      EXPECT_TRUE(this->check_add(a, b)) << "a=" << a << " b=" << b;
      EXPECT_TRUE(this->check_sub(a, b)) << "a=" << a << " b=" << b;
      EXPECT_TRUE(this->check_mul(a, b)) << "a=" << a << " b=" << b;
    }
  }
  // The documented conventions.
  EXPECT_TRUE(F::zero().inverse().is_zero());
  EXPECT_TRUE((-F::zero()).is_zero());
  EXPECT_TRUE(F::zero().pow(std::vector<std::uint64_t>{}) == F::one());
}

TYPED_TEST(FieldTest, FromBytesRefusesNonCanonical) {
  using F = TypeParam;
  const Mpz& m = this->m_;
  Mpz m_plus_one, all_bits, all_bytes, m_minus_one;
  mpz_add_ui(m_plus_one.get(), m.get(), 1);
  mpz_ui_pow_ui(all_bits.get(), 2, F::kBits);  // 2^kBits - 1: 2^381-1 for Fp, 2^255-1 for Fr
  mpz_sub_ui(all_bits.get(), all_bits.get(), 1);
  mpz_ui_pow_ui(all_bytes.get(), 2, 8 * F::kBytes);
  mpz_sub_ui(all_bytes.get(), all_bytes.get(), 1);
  for (const Mpz* bad :
       {&m, &std::as_const(m_plus_one), &std::as_const(all_bits), &std::as_const(all_bytes)}) {
    EXPECT_FALSE(F::from_bytes(this->encode(*bad)).has_value()) << *bad;
  }
  // Values from m up to m + 2^16 (the low limb's edge) that fit the encoding are refused too.
  for (unsigned long k = 0; k < (1UL << 16); k += 257) {
    Mpz x;
    mpz_add_ui(x.get(), m.get(), k);
    if (mpz_sizeinbase(x.get(), 2) > 8 * F::kBytes) break;
    EXPECT_FALSE(F::from_bytes(this->encode(x)).has_value()) << x;
  }
  mpz_sub_ui(m_minus_one.get(), m.get(), 1);
  EXPECT_TRUE(F::from_bytes(this->encode(m_minus_one)).has_value());

  // Wrong lengths, even when the value would fit (leading zero byte, or one byte short).
  const Mpz one = limbs_to_mpz(std::array<std::uint64_t, 1>{1});
  for (std::size_t length :
       {std::size_t{0}, std::size_t{1}, F::kBytes - 1, F::kBytes + 1, 2 * F::kBytes}) {
    EXPECT_FALSE(F::from_bytes(this->encode(one, length)).has_value()) << "length " << length;
  }
  EXPECT_TRUE(F::from_bytes(this->encode(one, F::kBytes)).has_value());
}

}  // namespace
