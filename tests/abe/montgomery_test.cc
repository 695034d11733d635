// The limb kernels behind MontgomeryField (abe/pairing/montgomery.h) against GMP, each one
// directly: the portable C++ (detail::PortableKernels) and, on x86-64, the inline assembly
// (detail::X86Kernels: add and sub always, mul only where the CPU has BMI2 and ADX). The field
// tests (field_test.cc, fp2_test.cc) only reach whichever kernel MontgomeryField picks on the
// machine that runs them; this file keeps the other one tested too.
//
// Besides Fp and Fr, the kernels get moduli chosen to stress their bounds: the assembly assumes
// m < 2^(64N-1), so moduli with the top limb just below 2^63 make its carry chains run as full as
// they can, moduli with a top limb of 1 make the reduction do most of the work, and full-width
// moduli (portable code only) make sums and products carry out of the top limb.
//
// The random inputs come from a seed that is new on every run and printed with any failure;
// MCHAIN_FIELD_TEST_SEED=<n> repeats a run (as in field_test.cc).
#include "abe/pairing/montgomery.h"

#include <gmp.h>
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "abe/pairing/fields.h"
#include "mpz.h"

namespace mchain::abe {
namespace {

// Random inputs per kernel, operation and modulus (8 moduli).
constexpr int kIterations = 20'000;

// -m^-1 mod 2^64 for odd m, by Newton's iteration (m·m ≡ 1 mod 8, and each step doubles the number
// of correct low bits: 3, 6, 12, 24, 48, 96).
constexpr std::uint64_t minus_inverse(std::uint64_t m) {
  std::uint64_t x = m;
  for (int i = 0; i < 5; ++i) x *= 2 - m * x;
  return 0 - x;
}

// Only what the kernels read: kLimbs, kModulus, kInv.
template <std::size_t N, std::uint64_t... Limbs>
struct TestModulus {
  static constexpr std::size_t kLimbs = N;
  static constexpr std::array<std::uint64_t, N> kModulus = {Limbs...};
  static constexpr std::uint64_t kInv = minus_inverse(kModulus[0]);
  static_assert(sizeof...(Limbs) == N && (kModulus[0] & 1) == 1);
};

// 2^383 - 2^254 - 0x1d5 (odd, not prime: Montgomery multiplication needs only gcd(m, 2^64) = 1).
using Top6 = TestModulus<6, 0xfffffffffffffe2b, 0xffffffffffffffff, 0xffffffffffffffff,
                         0xbfffffffffffffff, 0xffffffffffffffff, 0x7fffffffffffffff>;
// 2^255 - 19.
using Top4 =
    TestModulus<4, 0xffffffffffffffed, 0xffffffffffffffff, 0xffffffffffffffff, 0x7fffffffffffffff>;
// Just above 2^320 and 2^192, with irregular low limbs.
using Low6 = TestModulus<6, 0x3c5a1f0e2d4b6987, 0x0123456789abcdef, 0xfedcba9876543210,
                         0x8000000000000001, 0x5555555555555555, 0x0000000000000001>;
using Low4 =
    TestModulus<4, 0x9e3779b97f4a7c15, 0xf39cc0605cedc834, 0x1082276bf3a27251, 0x0000000000000001>;
// Full width, 2^384 - 317 and 2^256 - 189: only the portable kernels take these (the x86-64 ones
// need the top bit clear), and only here do sums and the CIOS accumulator carry out of the top
// limb, so only these reach the portable code's carry word.
using Full6 = TestModulus<6, 0xfffffffffffffec3, 0xffffffffffffffff, 0xffffffffffffffff,
                          0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff>;
using Full4 =
    TestModulus<4, 0xffffffffffffff43, 0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff>;

std::uint64_t test_seed() {
  static const std::uint64_t seed = []() -> std::uint64_t {
    const char* value = std::getenv("MCHAIN_FIELD_TEST_SEED");
    if (value != nullptr) return std::strtoull(value, nullptr, 0);
    return (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  }();
  return seed;
}

// Unoptimised builds (the sanitizer preset) draw a tenth.
int iterations() {
#ifndef NDEBUG
  return kIterations / 10;
#else
  return kIterations;
#endif
}

using mchain::abe::testing::Mpz;

template <std::size_t N>
Mpz to_mpz(const std::array<std::uint64_t, N>& limbs) {
  Mpz x;
  mpz_import(x.get(), N, -1, sizeof(std::uint64_t), 0, 0, limbs.data());
  return x;
}

// x < 2^(64N) as N limbs.
template <std::size_t N>
std::array<std::uint64_t, N> to_limbs(const Mpz& x) {
  std::array<std::uint64_t, N> out{};
  std::size_t count = 0;
  mpz_export(out.data(), &count, -1, sizeof(std::uint64_t), 0, 0, x.get());
  return out;
}

// The operations a kernel may offer, and which kernel to call.
enum class Op { kAdd, kSub, kMul };
enum class Kernel { kPortable, kX86 };

const char* name(Op op) { return op == Op::kAdd ? "add" : op == Op::kSub ? "sub" : "mul"; }
const char* name(Kernel k) { return k == Kernel::kPortable ? "portable" : "x86-64"; }

template <typename P>
class MontgomeryKernelTest : public ::testing::Test {
 protected:
  static constexpr std::size_t N = P::kLimbs;
  using Limbs = std::array<std::uint64_t, N>;

  MontgomeryKernelTest() : m_(to_mpz(P::kModulus)), rng_(test_seed()) {
    mpz_ui_pow_ui(r_inverse_.get(), 2, 64 * N);
    EXPECT_NE(mpz_invert(r_inverse_.get(), r_inverse_.get(), m_.get()), 0);
  }

  // Whether this machine can run `kernel`'s `op` for P.
  static bool available(Kernel kernel, Op op) {
    if (kernel == Kernel::kPortable) return true;
#if MCHAIN_ABE_X86_64_ASM
    if (!detail::X86Kernels<P>::kFits) return false;
    return op != Op::kMul || detail::kCpuHasBmi2Adx;
#else
    (void)op;
    return false;
#endif
  }

  static Limbs run(Kernel kernel, Op op, const Limbs& a, const Limbs& b) {
#if MCHAIN_ABE_X86_64_ASM
    if constexpr (detail::X86Kernels<P>::kFits) {
      if (kernel == Kernel::kX86) {
        switch (op) {
          case Op::kAdd: return detail::X86Kernels<P>::add(a, b);
          case Op::kSub: return detail::X86Kernels<P>::sub(a, b);
          case Op::kMul: return detail::X86Kernels<P>::mul(a, b);
        }
      }
    }
#endif
    (void)kernel;
    switch (op) {
      case Op::kAdd: return detail::PortableKernels<P>::add(a, b);
      case Op::kSub: return detail::PortableKernels<P>::sub(a, b);
      case Op::kMul: break;
    }
    return detail::PortableKernels<P>::mul(a, b);
  }

  // (a + b), (a - b) or a·b·2^(-64N), mod m.
  Mpz expected(Op op, const Mpz& a, const Mpz& b) const {
    Mpz want;
    switch (op) {
      case Op::kAdd: mpz_add(want.get(), a.get(), b.get()); break;
      case Op::kSub: mpz_sub(want.get(), a.get(), b.get()); break;
      case Op::kMul:
        mpz_mul(want.get(), a.get(), b.get());
        mpz_mul(want.get(), want.get(), r_inverse_.get());
        break;
    }
    mpz_mod(want.get(), want.get(), m_.get());
    return want;
  }

  // The kernel's result on (a, b) equals GMP's, limb for limb (so fully reduced).
  ::testing::AssertionResult check(Kernel kernel, Op op, const Mpz& a, const Mpz& b) const {
    const Limbs la = to_limbs<N>(a), lb = to_limbs<N>(b);
    const Limbs got = run(kernel, op, la, lb);
    const Limbs want = to_limbs<N>(expected(op, a, b));
    if (got != want) {
      return ::testing::AssertionFailure()
             << name(kernel) << " " << name(op) << "(" << a.hex() << ", " << b.hex()
             << ") = " << to_mpz(got).hex() << ", want " << to_mpz(want).hex();
    }
    // a·a through one array (squaring passes the same operand twice).
    if (op == Op::kMul && run(kernel, op, la, la) != to_limbs<N>(expected(op, a, a))) {
      return ::testing::AssertionFailure() << name(kernel) << " mul(a, a) for a = " << a.hex();
    }
    return ::testing::AssertionSuccess();
  }

  // Uniform in [0, m): random limbs cut to m's bit length, rejected until below m.
  Mpz random_element() {
    const std::size_t bits = mpz_sizeinbase(m_.get(), 2);
    Limbs limbs;
    Mpz x;
    do {
      for (auto& limb : limbs) limb = rng_();
      limbs[N - 1] &= ~std::uint64_t{0} >> (64 * N - bits);
      x = to_mpz(limbs);
    } while (mpz_cmp(x.get(), m_.get()) >= 0);
    return x;
  }

  // 0, 1, 2, m-1, m-2, (m±1)/2, 2^(64k)-1 below m, the value with every limb but the top all-ones,
  // and 2^(64N) mod m (the Montgomery one).
  std::vector<Mpz> edge_values() const {
    std::vector<Mpz> out;
    for (unsigned long small : {0UL, 1UL, 2UL}) {
      Mpz x;
      mpz_set_ui(x.get(), small);
      out.push_back(x);
    }
    for (unsigned long below : {1UL, 2UL}) {
      Mpz x;
      mpz_sub_ui(x.get(), m_.get(), below);
      out.push_back(x);
    }
    Mpz half;
    mpz_fdiv_q_2exp(half.get(), m_.get(), 1);
    out.push_back(half);
    mpz_add_ui(half.get(), half.get(), 1);
    out.push_back(half);
    for (std::size_t k = 1; k < N; ++k) {
      Mpz x;
      mpz_ui_pow_ui(x.get(), 2, 64 * k);
      mpz_sub_ui(x.get(), x.get(), 1);
      if (mpz_cmp(x.get(), m_.get()) < 0) out.push_back(x);
    }
    Limbs limbs;
    limbs.fill(~std::uint64_t{0});
    limbs[N - 1] = P::kModulus[N - 1] - 1;
    out.push_back(to_mpz(limbs));
    Mpz r;
    mpz_ui_pow_ui(r.get(), 2, 64 * N);
    mpz_mod(r.get(), r.get(), m_.get());
    out.push_back(r);
    return out;
  }

  void check_random(Kernel kernel, Op op) {
    if (!available(kernel, op)) GTEST_SKIP() << name(kernel) << " " << name(op) << " not here";
    for (int i = iterations(); i-- > 0;) {
      const Mpz a = random_element(), b = random_element();
      ASSERT_TRUE(check(kernel, op, a, b));
    }
  }

  void check_edges(Kernel kernel) {
    const std::vector<Mpz> values = edge_values();
    int ran = 0;
    for (Op op : {Op::kAdd, Op::kSub, Op::kMul}) {
      if (!available(kernel, op)) continue;
      ++ran;
      for (const Mpz& a : values) {
        for (const Mpz& b : values) EXPECT_TRUE(check(kernel, op, a, b));
      }
    }
    if (ran == 0) GTEST_SKIP() << name(kernel) << " kernels not here";
  }

  Mpz m_;
  Mpz r_inverse_;  // 2^(-64N) mod m
  std::mt19937_64 rng_;
  ::testing::ScopedTrace trace_{__FILE__, __LINE__,
                                "MCHAIN_FIELD_TEST_SEED=" + std::to_string(test_seed())};
};

// The portable kernels on every modulus; the x86-64 ones on those they take (top bit clear).
template <typename P>
class MontgomeryPortableKernelTest : public MontgomeryKernelTest<P> {};
template <typename P>
class MontgomeryX86KernelTest : public MontgomeryKernelTest<P> {};

using AllModuli = ::testing::Types<FpParams, FrParams, Top6, Top4, Low6, Low4, Full6, Full4>;
using X86Moduli = ::testing::Types<FpParams, FrParams, Top6, Top4, Low6, Low4>;
class ModulusNames {
 public:
  template <typename P>
  static std::string GetName(int i) {
    static const char* const kNames[] = {"Fp",   "Fr",   "Top6",  "Top4",
                                         "Low6", "Low4", "Full6", "Full4"};
    return kNames[i];
  }
};
TYPED_TEST_SUITE(MontgomeryPortableKernelTest, AllModuli, ModulusNames);
TYPED_TEST_SUITE(MontgomeryX86KernelTest, X86Moduli, ModulusNames);

TYPED_TEST(MontgomeryPortableKernelTest, Add) { this->check_random(Kernel::kPortable, Op::kAdd); }
TYPED_TEST(MontgomeryPortableKernelTest, Sub) { this->check_random(Kernel::kPortable, Op::kSub); }
TYPED_TEST(MontgomeryPortableKernelTest, Mul) { this->check_random(Kernel::kPortable, Op::kMul); }
TYPED_TEST(MontgomeryPortableKernelTest, EdgeValues) { this->check_edges(Kernel::kPortable); }

// These skip where there is no assembly (other targets), and Mul also on x86-64 CPUs without BMI2
// and ADX.
TYPED_TEST(MontgomeryX86KernelTest, Add) { this->check_random(Kernel::kX86, Op::kAdd); }
TYPED_TEST(MontgomeryX86KernelTest, Sub) { this->check_random(Kernel::kX86, Op::kSub); }
TYPED_TEST(MontgomeryX86KernelTest, Mul) { this->check_random(Kernel::kX86, Op::kMul); }
TYPED_TEST(MontgomeryX86KernelTest, EdgeValues) { this->check_edges(Kernel::kX86); }

// On x86-64 the assembly covers exactly the BLS12-381 fields, and the multiplication kernel follows
// CPUID: a CPU with BMI2 and ADX must not silently run the slow portable code.
TEST(MontgomeryKernelDispatch, X86KernelsCoverFpAndFr) {
#if MCHAIN_ABE_X86_64_ASM
  EXPECT_TRUE(detail::X86Kernels<FpParams>::kFits);
  EXPECT_TRUE(detail::X86Kernels<FrParams>::kFits);
  __builtin_cpu_init();
  const bool has = __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("adx");
  EXPECT_EQ(detail::kCpuHasBmi2Adx, has);
#else
  GTEST_SKIP() << "no x86-64 kernels on this target";
#endif
}

}  // namespace
}  // namespace mchain::abe
