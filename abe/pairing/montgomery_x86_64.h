// x86-64 inline-assembly kernels for MontgomeryField (abe/pairing/montgomery.h), which includes
// this header on x86-64 with GCC or Clang only; do not include it directly.
//
// gcc 12 turns the portable unsigned __int128 carry chains into slow code (~100 ns for an Fp
// multiplication here, against 34 ns below), so for the two moduli that matter, Fp (6 limbs) and Fr (4 limbs), the
// hot operations are written out by hand:
//   - add and sub: add/adc or sub/sbb chains and a cmov select; baseline x86-64.
//   - mul: CIOS Montgomery multiplication with mulx and two independent carry chains, adcx
//     (CF) for the low halves of the products and adox (OF) for the high halves. Needs BMI2
//     and ADX (Intel Broadwell, AMD Zen and later); MontgomeryField checks CPUID once at start-up
//     and uses the portable code on older CPUs.
//
// All kernels need a modulus with its top bit clear (m < 2^(64N-1)), which both BLS12-381
// moduli have (381 of 384 bits, 255 of 256); other moduli use the portable code. That bound
// keeps every intermediate value of a sum or of a CIOS round within N+1 limbs (below), so no
// carry word beyond the top limb is needed.
//
// Constant time: the instruction sequence is fixed; no branch and no address depends on the
// operands. The final conditional subtraction is a cmov on the carry or borrow flag.
//
// Inline-asm contract: operands are read through pointer registers, so every asm statement
// declares a "memory" clobber (dummy "m" operands for the arrays would cost one register each
// in unoptimised builds, and the multiplication already needs 13 of the 14 free registers).
// Results come back in output registers; every scratch register is an early-clobber output, a
// read-write input, or rdx (clobbered).
#pragma once

#include <cpuid.h>

#include <array>
#include <cstddef>
#include <cstdint>

namespace mchain::abe::detail {

// True when the CPU has BMI2 (mulx) and ADX (adcx, adox), from CPUID leaf 7. Both extend only
// the general-purpose instruction set, so no operating-system support is needed.
inline bool cpu_has_bmi2_adx() {
#if defined(__BMI2__) && defined(__ADX__)
  return true;  // the compiler was told the target has them
#else
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ebx & bit_BMI2) != 0 && (ebx & bit_ADX) != 0;
#endif
}

// Read once at start-up. Code that multiplies during static initialisation, before this is set,
// reads false and takes the portable path: slower, never wrong.
inline const bool kCpuHasBmi2Adx = cpu_has_bmi2_adx();

// The modulus limbs followed by -m^-1 mod 2^64, so that one pointer register reaches both.
template <typename P>
struct X86ModulusAndInverse {
  static constexpr std::array<std::uint64_t, P::kLimbs + 1> kValue = [] {
    std::array<std::uint64_t, P::kLimbs + 1> v{};
    for (std::size_t i = 0; i < P::kLimbs; ++i) v[i] = P::kModulus[i];
    v[P::kLimbs] = P::kInv;
    return v;
  }();
};

// clang-format off
// Building blocks of the assembly text. Register operands are named %[...] in the templates;
// T0..T6 below are the names of the operands holding the running total t, low limb first.

// t += rdx · src[j] at limbs (TL, TH): the low half of the product on the CF chain into TL,
// the high half on the OF chain into TH. lo and hi are scratch.
#define MCHAIN_X86_MULADD(src, j, TL, TH)         \
  "mulxq 8*" #j "(%[" #src "]), %[lo], %[hi]\n\t" \
  "adcxq %[lo], %[" #TL "]\n\t"                   \
  "adoxq %[hi], %[" #TH "]\n\t"

// Clears CF and OF (and lo) to start both carry chains.
#define MCHAIN_X86_CLEAR_FLAGS "xorl %k[lo], %k[lo]\n\t"

// rdx = b[i].
#define MCHAIN_X86_LOAD_B(i) "movq 8*" #i "(%[b]), %%rdx\n\t"

// rdx = q = t[0] · (-m^-1) mod 2^64, which makes t + q·m divisible by 2^64.
#define MCHAIN_X86_LOAD_Q(T0, N) \
  "movq %[" #T0 "], %%rdx\n\t"   \
  "imulq 8*" #N "(%[m]), %%rdx\n\t"

// One reduction step, for 6 and 4 limbs: t = (t + q·m) / 2^64. T0 becomes exactly 0 (and is the
// next round's top limb); the carry out of T0 is 1 unless T0 was already 0.
#define MCHAIN_X86_REDUCE6(T0, T1, T2, T3, T4, T5, T6) \
  MCHAIN_X86_LOAD_Q(T0, 6)                             \
  MCHAIN_X86_CLEAR_FLAGS                               \
  MCHAIN_X86_MULADD(m, 0, T0, T1)                      \
  MCHAIN_X86_MULADD(m, 1, T1, T2)                      \
  MCHAIN_X86_MULADD(m, 2, T2, T3)                      \
  MCHAIN_X86_MULADD(m, 3, T3, T4)                      \
  MCHAIN_X86_MULADD(m, 4, T4, T5)                      \
  MCHAIN_X86_MULADD(m, 5, T5, T6)                      \
  "adcq $0, %[" #T6 "]\n\t"
#define MCHAIN_X86_REDUCE4(T0, T1, T2, T3, T4) \
  MCHAIN_X86_LOAD_Q(T0, 4)                     \
  MCHAIN_X86_CLEAR_FLAGS                       \
  MCHAIN_X86_MULADD(m, 0, T0, T1)              \
  MCHAIN_X86_MULADD(m, 1, T1, T2)              \
  MCHAIN_X86_MULADD(m, 2, T2, T3)              \
  MCHAIN_X86_MULADD(m, 3, T3, T4)              \
  "adcq $0, %[" #T4 "]\n\t"

// Round i >= 1: t += a·b[i], then one reduction step. The top limb (T6 or T4) is the register
// the previous reduction step zeroed.
#define MCHAIN_X86_ROUND6(i, T0, T1, T2, T3, T4, T5, T6) \
  MCHAIN_X86_LOAD_B(i)                                   \
  MCHAIN_X86_CLEAR_FLAGS                                 \
  MCHAIN_X86_MULADD(a, 0, T0, T1)                        \
  MCHAIN_X86_MULADD(a, 1, T1, T2)                        \
  MCHAIN_X86_MULADD(a, 2, T2, T3)                        \
  MCHAIN_X86_MULADD(a, 3, T3, T4)                        \
  MCHAIN_X86_MULADD(a, 4, T4, T5)                        \
  MCHAIN_X86_MULADD(a, 5, T5, T6)                        \
  "adcq $0, %[" #T6 "]\n\t"                             \
  MCHAIN_X86_REDUCE6(T0, T1, T2, T3, T4, T5, T6)
#define MCHAIN_X86_ROUND4(i, T0, T1, T2, T3, T4) \
  MCHAIN_X86_LOAD_B(i)                           \
  MCHAIN_X86_CLEAR_FLAGS                         \
  MCHAIN_X86_MULADD(a, 0, T0, T1)                \
  MCHAIN_X86_MULADD(a, 1, T1, T2)                \
  MCHAIN_X86_MULADD(a, 2, T2, T3)                \
  MCHAIN_X86_MULADD(a, 3, T3, T4)                \
  "adcq $0, %[" #T4 "]\n\t"                     \
  MCHAIN_X86_REDUCE4(T0, T1, T2, T3, T4)

// clang-format on

template <typename P>
struct X86Kernels {
  static constexpr std::size_t N = P::kLimbs;
  using Limbs = std::array<std::uint64_t, N>;

  // Whether these kernels apply to P at all (see the top of this file).
  static constexpr bool kFits = (N == 4 || N == 6) && (P::kModulus[N - 1] >> 63) == 0;

  // (a + b) mod m for a, b < m. a + b < 2m < 2^(64N) never carries out of the top limb; then
  // s = a + b - m is kept unless it borrowed.
  [[gnu::always_inline]] static Limbs add(const Limbs& a, const Limbs& b) {
    static_assert(kFits);
    const std::uint64_t* m = P::kModulus.data();
    if constexpr (N == 6) {
      std::uint64_t r0, r1, r2, r3, r4, r5, s0, s1, s2, s3;
      std::uint64_t pa = reinterpret_cast<std::uintptr_t>(a.data());
      std::uint64_t pb = reinterpret_cast<std::uintptr_t>(b.data());
      __asm__(
          "movq 0(%[a]), %[r0]\n\t"
          "movq 8(%[a]), %[r1]\n\t"
          "movq 16(%[a]), %[r2]\n\t"
          "movq 24(%[a]), %[r3]\n\t"
          "movq 32(%[a]), %[r4]\n\t"
          "movq 40(%[a]), %[r5]\n\t"
          "addq 0(%[b]), %[r0]\n\t"
          "adcq 8(%[b]), %[r1]\n\t"
          "adcq 16(%[b]), %[r2]\n\t"
          "adcq 24(%[b]), %[r3]\n\t"
          "adcq 32(%[b]), %[r4]\n\t"
          "adcq 40(%[b]), %[r5]\n\t"
          // a and b are no longer needed: their registers take the top two limbs of s.
          "movq %[r0], %[s0]\n\t"
          "movq %[r1], %[s1]\n\t"
          "movq %[r2], %[s2]\n\t"
          "movq %[r3], %[s3]\n\t"
          "movq %[r4], %[a]\n\t"
          "movq %[r5], %[b]\n\t"
          "subq 0(%[m]), %[s0]\n\t"
          "sbbq 8(%[m]), %[s1]\n\t"
          "sbbq 16(%[m]), %[s2]\n\t"
          "sbbq 24(%[m]), %[s3]\n\t"
          "sbbq 32(%[m]), %[a]\n\t"
          "sbbq 40(%[m]), %[b]\n\t"
          "cmovncq %[s0], %[r0]\n\t"
          "cmovncq %[s1], %[r1]\n\t"
          "cmovncq %[s2], %[r2]\n\t"
          "cmovncq %[s3], %[r3]\n\t"
          "cmovncq %[a], %[r4]\n\t"
          "cmovncq %[b], %[r5]\n\t"
          : [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [r4] "=&r"(r4),
            [r5] "=&r"(r5), [s0] "=&r"(s0), [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3),
            [a] "+r"(pa), [b] "+r"(pb)
          : [m] "r"(m)
          : "cc", "memory");
      return {r0, r1, r2, r3, r4, r5};
    } else {
      std::uint64_t r0, r1, r2, r3, s0, s1;
      std::uint64_t pa = reinterpret_cast<std::uintptr_t>(a.data());
      std::uint64_t pb = reinterpret_cast<std::uintptr_t>(b.data());
      __asm__(
          "movq 0(%[a]), %[r0]\n\t"
          "movq 8(%[a]), %[r1]\n\t"
          "movq 16(%[a]), %[r2]\n\t"
          "movq 24(%[a]), %[r3]\n\t"
          "addq 0(%[b]), %[r0]\n\t"
          "adcq 8(%[b]), %[r1]\n\t"
          "adcq 16(%[b]), %[r2]\n\t"
          "adcq 24(%[b]), %[r3]\n\t"
          "movq %[r0], %[s0]\n\t"
          "movq %[r1], %[s1]\n\t"
          "movq %[r2], %[a]\n\t"
          "movq %[r3], %[b]\n\t"
          "subq 0(%[m]), %[s0]\n\t"
          "sbbq 8(%[m]), %[s1]\n\t"
          "sbbq 16(%[m]), %[a]\n\t"
          "sbbq 24(%[m]), %[b]\n\t"
          "cmovncq %[s0], %[r0]\n\t"
          "cmovncq %[s1], %[r1]\n\t"
          "cmovncq %[a], %[r2]\n\t"
          "cmovncq %[b], %[r3]\n\t"
          : [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [s0] "=&r"(s0),
            [s1] "=&r"(s1), [a] "+r"(pa), [b] "+r"(pb)
          : [m] "r"(m)
          : "cc", "memory");
      return {r0, r1, r2, r3};
    }
  }

  // (a - b) mod m for a, b < m. d = a - b wraps by 2^(64N) when a < b; then d + m wraps back,
  // and that carry out of d + m happens exactly when d wrapped (a - b + m > 0 always, and
  // a - b + m < 2m < 2^(64N) when a >= b), so the carry selects d + m.
  [[gnu::always_inline]] static Limbs sub(const Limbs& a, const Limbs& b) {
    static_assert(kFits);
    const std::uint64_t* m = P::kModulus.data();
    if constexpr (N == 6) {
      std::uint64_t r0, r1, r2, r3, r4, r5, s0, s1, s2, s3;
      std::uint64_t pa = reinterpret_cast<std::uintptr_t>(a.data());
      std::uint64_t pb = reinterpret_cast<std::uintptr_t>(b.data());
      __asm__(
          "movq 0(%[a]), %[r0]\n\t"
          "movq 8(%[a]), %[r1]\n\t"
          "movq 16(%[a]), %[r2]\n\t"
          "movq 24(%[a]), %[r3]\n\t"
          "movq 32(%[a]), %[r4]\n\t"
          "movq 40(%[a]), %[r5]\n\t"
          "subq 0(%[b]), %[r0]\n\t"
          "sbbq 8(%[b]), %[r1]\n\t"
          "sbbq 16(%[b]), %[r2]\n\t"
          "sbbq 24(%[b]), %[r3]\n\t"
          "sbbq 32(%[b]), %[r4]\n\t"
          "sbbq 40(%[b]), %[r5]\n\t"
          "movq %[r0], %[s0]\n\t"
          "movq %[r1], %[s1]\n\t"
          "movq %[r2], %[s2]\n\t"
          "movq %[r3], %[s3]\n\t"
          "movq %[r4], %[a]\n\t"
          "movq %[r5], %[b]\n\t"
          "addq 0(%[m]), %[s0]\n\t"
          "adcq 8(%[m]), %[s1]\n\t"
          "adcq 16(%[m]), %[s2]\n\t"
          "adcq 24(%[m]), %[s3]\n\t"
          "adcq 32(%[m]), %[a]\n\t"
          "adcq 40(%[m]), %[b]\n\t"
          "cmovcq %[s0], %[r0]\n\t"
          "cmovcq %[s1], %[r1]\n\t"
          "cmovcq %[s2], %[r2]\n\t"
          "cmovcq %[s3], %[r3]\n\t"
          "cmovcq %[a], %[r4]\n\t"
          "cmovcq %[b], %[r5]\n\t"
          : [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [r4] "=&r"(r4),
            [r5] "=&r"(r5), [s0] "=&r"(s0), [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3),
            [a] "+r"(pa), [b] "+r"(pb)
          : [m] "r"(m)
          : "cc", "memory");
      return {r0, r1, r2, r3, r4, r5};
    } else {
      std::uint64_t r0, r1, r2, r3, s0, s1;
      std::uint64_t pa = reinterpret_cast<std::uintptr_t>(a.data());
      std::uint64_t pb = reinterpret_cast<std::uintptr_t>(b.data());
      __asm__(
          "movq 0(%[a]), %[r0]\n\t"
          "movq 8(%[a]), %[r1]\n\t"
          "movq 16(%[a]), %[r2]\n\t"
          "movq 24(%[a]), %[r3]\n\t"
          "subq 0(%[b]), %[r0]\n\t"
          "sbbq 8(%[b]), %[r1]\n\t"
          "sbbq 16(%[b]), %[r2]\n\t"
          "sbbq 24(%[b]), %[r3]\n\t"
          "movq %[r0], %[s0]\n\t"
          "movq %[r1], %[s1]\n\t"
          "movq %[r2], %[a]\n\t"
          "movq %[r3], %[b]\n\t"
          "addq 0(%[m]), %[s0]\n\t"
          "adcq 8(%[m]), %[s1]\n\t"
          "adcq 16(%[m]), %[a]\n\t"
          "adcq 24(%[m]), %[b]\n\t"
          "cmovcq %[s0], %[r0]\n\t"
          "cmovcq %[s1], %[r1]\n\t"
          "cmovcq %[a], %[r2]\n\t"
          "cmovcq %[b], %[r3]\n\t"
          : [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [s0] "=&r"(s0),
            [s1] "=&r"(s1), [a] "+r"(pa), [b] "+r"(pb)
          : [m] "r"(m)
          : "cc", "memory");
      return {r0, r1, r2, r3};
    }
  }

  // a·b·2^(-64N) mod m for a, b < m (a and b may be the same array). Requires BMI2 and ADX:
  // callers check kCpuHasBmi2Adx.
  //
  // CIOS, one round per limb b[i] (see PortableKernels::mul for the algorithm), with t in N+1
  // registers: t += a·b[i], then q = t[0]·(-m^-1) and t = (t + q·m) / 2^64. Bounds, with
  // m < 2^(64N)/2: t < 2m before each round, so t + a·b[i] + q·m < 2m + 2(2^64 - 1)m < 2^(64N+64),
  // N+1 limbs, and t < 2m again after the division; hence the final adc into the top limb of
  // each chain never carries out. The division by 2^64 is free: the zeroed low register becomes
  // the top limb of the next round (it holds exactly 0, which the next round's top starts from),
  // so the operand names rotate from round to round.
  [[gnu::always_inline]] static Limbs mul(const Limbs& a, const Limbs& b) {
    static_assert(kFits);
    const std::uint64_t* m = X86ModulusAndInverse<P>::kValue.data();
    std::uint64_t pa = reinterpret_cast<std::uintptr_t>(a.data());
    std::uint64_t pb = reinterpret_cast<std::uintptr_t>(b.data());
    std::uint64_t lo, hi;
    if constexpr (N == 6) {
      std::uint64_t r0, r1, r2, r3, r4, r5, r6;
      __asm__(
          // Round 0: t = a·b[0], one adc chain (t starts at zero).
          MCHAIN_X86_LOAD_B(0)
          "mulxq 0(%[a]), %[r0], %[r1]\n\t"
          "mulxq 8(%[a]), %[lo], %[r2]\n\t"
          "addq %[lo], %[r1]\n\t"
          "mulxq 16(%[a]), %[lo], %[r3]\n\t"
          "adcq %[lo], %[r2]\n\t"
          "mulxq 24(%[a]), %[lo], %[r4]\n\t"
          "adcq %[lo], %[r3]\n\t"
          "mulxq 32(%[a]), %[lo], %[r5]\n\t"
          "adcq %[lo], %[r4]\n\t"
          "mulxq 40(%[a]), %[lo], %[r6]\n\t"
          "adcq %[lo], %[r5]\n\t"
          "adcq $0, %[r6]\n\t"
          MCHAIN_X86_REDUCE6(r0, r1, r2, r3, r4, r5, r6)
          MCHAIN_X86_ROUND6(1, r1, r2, r3, r4, r5, r6, r0)
          MCHAIN_X86_ROUND6(2, r2, r3, r4, r5, r6, r0, r1)
          MCHAIN_X86_ROUND6(3, r3, r4, r5, r6, r0, r1, r2)
          MCHAIN_X86_ROUND6(4, r4, r5, r6, r0, r1, r2, r3)
          MCHAIN_X86_ROUND6(5, r5, r6, r0, r1, r2, r3, r4)
          // t = (r6 r0 r1 r2 r3 r4) < 2m. s = t - m in the free registers (r5, lo, hi, rdx,
          // and a and b, no longer needed); keep s unless it borrowed.
          "movq %[r6], %[r5]\n\t"
          "movq %[r0], %[lo]\n\t"
          "movq %[r1], %[hi]\n\t"
          "movq %[r2], %%rdx\n\t"
          "movq %[r3], %[a]\n\t"
          "movq %[r4], %[b]\n\t"
          "subq 0(%[m]), %[r5]\n\t"
          "sbbq 8(%[m]), %[lo]\n\t"
          "sbbq 16(%[m]), %[hi]\n\t"
          "sbbq 24(%[m]), %%rdx\n\t"
          "sbbq 32(%[m]), %[a]\n\t"
          "sbbq 40(%[m]), %[b]\n\t"
          "cmovncq %[r5], %[r6]\n\t"
          "cmovncq %[lo], %[r0]\n\t"
          "cmovncq %[hi], %[r1]\n\t"
          "cmovncq %%rdx, %[r2]\n\t"
          "cmovncq %[a], %[r3]\n\t"
          "cmovncq %[b], %[r4]\n\t"
          : [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [r4] "=&r"(r4),
            [r5] "=&r"(r5), [r6] "=&r"(r6), [lo] "=&r"(lo), [hi] "=&r"(hi), [a] "+r"(pa),
            [b] "+r"(pb)
          : [m] "r"(m)
          : "rdx", "cc", "memory");
      return {r6, r0, r1, r2, r3, r4};
    } else {
      std::uint64_t r0, r1, r2, r3, r4;
      __asm__(
          MCHAIN_X86_LOAD_B(0)
          "mulxq 0(%[a]), %[r0], %[r1]\n\t"
          "mulxq 8(%[a]), %[lo], %[r2]\n\t"
          "addq %[lo], %[r1]\n\t"
          "mulxq 16(%[a]), %[lo], %[r3]\n\t"
          "adcq %[lo], %[r2]\n\t"
          "mulxq 24(%[a]), %[lo], %[r4]\n\t"
          "adcq %[lo], %[r3]\n\t"
          "adcq $0, %[r4]\n\t"
          MCHAIN_X86_REDUCE4(r0, r1, r2, r3, r4)
          MCHAIN_X86_ROUND4(1, r1, r2, r3, r4, r0)
          MCHAIN_X86_ROUND4(2, r2, r3, r4, r0, r1)
          MCHAIN_X86_ROUND4(3, r3, r4, r0, r1, r2)
          // t = (r4 r0 r1 r2) < 2m; s = t - m in r3, lo, hi, rdx.
          "movq %[r4], %[r3]\n\t"
          "movq %[r0], %[lo]\n\t"
          "movq %[r1], %[hi]\n\t"
          "movq %[r2], %%rdx\n\t"
          "subq 0(%[m]), %[r3]\n\t"
          "sbbq 8(%[m]), %[lo]\n\t"
          "sbbq 16(%[m]), %[hi]\n\t"
          "sbbq 24(%[m]), %%rdx\n\t"
          "cmovncq %[r3], %[r4]\n\t"
          "cmovncq %[lo], %[r0]\n\t"
          "cmovncq %[hi], %[r1]\n\t"
          "cmovncq %%rdx, %[r2]\n\t"
          : [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [r4] "=&r"(r4),
            [lo] "=&r"(lo), [hi] "=&r"(hi), [a] "+r"(pa), [b] "+r"(pb)
          : [m] "r"(m)
          : "rdx", "cc", "memory");
      return {r4, r0, r1, r2};
    }
  }
};

}  // namespace mchain::abe::detail

#undef MCHAIN_X86_MULADD
#undef MCHAIN_X86_CLEAR_FLAGS
#undef MCHAIN_X86_LOAD_B
#undef MCHAIN_X86_LOAD_Q
#undef MCHAIN_X86_REDUCE6
#undef MCHAIN_X86_REDUCE4
#undef MCHAIN_X86_ROUND6
#undef MCHAIN_X86_ROUND4
