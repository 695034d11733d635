// A prime field in Montgomery form over N 64-bit limbs, the base of BLS12-381's Fp and Fr
// (abe/pairing/fields.h). Header-only: every operation is a few lines that the compiler should
// inline into the tower and curve code above it, and the class is a template over its constants.
//
// Representation: an element a is stored as a·R mod m with R = 2^(64·N), always fully reduced
// (< m), limbs little-endian. Then a·b is mont_mul(aR, bR) = aR·bR·R^-1 = (ab)R, one
// multiplication plus one reduction, with no division by m anywhere.
//
// Kernels: the limb arithmetic (add, sub, Montgomery multiplication) exists twice. The portable
// C++ (detail::PortableKernels) works for any odd modulus on any target. On x86-64 with GCC or
// Clang, moduli of 4 or 6 limbs with the top bit clear (Fr and Fp) use inline assembly instead
// (abe/pairing/montgomery_x86_64.h): add and sub always, the multiplication when the CPU has
// BMI2 and ADX (checked once at start-up; a public, per-process fact, so branching on it is
// fine). Both are tested against GMP (tests/abe/montgomery_test.cc).
//
// Constant time: the elements are secrets (ABE keys and randomness are built from them), so no
// branch and no memory index depends on an element's value. Carries and borrows are turned into
// all-ones/all-zero masks (or a cmov on the carry flag, in assembly) and the conditional
// subtractions are selects; equality and is_zero OR-reduce all limbs before looking at the
// result. The only branches are on public data: loop bounds, the CPU's features, an exponent's
// bits in pow (which callers must only pass public exponents to; inverse and sqrt use the fixed
// exponents m-2 and (m+1)/4), the length of an encoding, and whether an encoding or a square
// root is valid (the caller learns that from the result anyway).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace mchain::abe {

namespace detail {

// 128-bit products and carries (GCC and Clang); __extension__ keeps -Wpedantic quiet.
__extension__ typedef unsigned __int128 u128;

// Hides x from the optimiser, so that a mask derived from a carry or a comparison is not turned
// back into a branch by the compiler.
inline std::uint64_t value_barrier(std::uint64_t x) {
  __asm__("" : "+r"(x));
  return x;
}

// All ones when bit (0 or 1) is 1, zero otherwise.
inline std::uint64_t mask_from_bit(std::uint64_t bit) { return value_barrier(0 - bit); }

// 1 when x is zero, 0 otherwise, without a comparison: x | -x has its top bit set iff x != 0.
inline std::uint64_t is_zero_bit(std::uint64_t x) { return ((x | (0 - x)) >> 63) ^ 1; }

// Exponents derived from the modulus at compile time (public values).
template <std::size_t N>
constexpr std::array<std::uint64_t, N> minus_two(const std::array<std::uint64_t, N>& m) {
  std::array<std::uint64_t, N> out{};
  std::uint64_t borrow = 2;
  for (std::size_t i = 0; i < N; ++i) {
    out[i] = m[i] - borrow;
    borrow = m[i] < borrow ? 1 : 0;
  }
  return out;
}

// (m+1)/4 for m ≡ 3 (mod 4): m = 4k+3, so (m+1)/4 = k+1 = (m >> 2) + 1, which cannot overflow.
template <std::size_t N>
constexpr std::array<std::uint64_t, N> plus_one_over_four(const std::array<std::uint64_t, N>& m) {
  std::array<std::uint64_t, N> out{};
  for (std::size_t i = 0; i < N; ++i) {
    out[i] = (m[i] >> 2) | (i + 1 < N ? m[i + 1] << 62 : 0);
  }
  std::uint64_t carry = 1;
  for (std::size_t i = 0; i < N; ++i) {
    out[i] += carry;
    carry = (carry != 0 && out[i] == 0) ? 1 : 0;
  }
  return out;
}

// The portable limb arithmetic, for any odd modulus m < 2^(64N) (P as for MontgomeryField
// below). The loops are fully unrolled: gcc 12 -O2 leaves them rolled otherwise, with the carry
// of each limb travelling through a 128-bit pair of registers.
template <typename P>
struct PortableKernels {
  static constexpr std::size_t N = P::kLimbs;
  using Limbs = std::array<std::uint64_t, N>;

  // out = a - b mod 2^(64N); returns the borrow (1 iff a < b).
  static std::uint64_t sub_with_borrow(const Limbs& a, const Limbs& b, Limbs& out) {
    std::uint64_t borrow = 0;
#pragma GCC unroll 8
    for (std::size_t i = 0; i < N; ++i) {
      const u128 d = u128{a[i]} - b[i] - borrow;
      out[i] = static_cast<std::uint64_t>(d);
      borrow = static_cast<std::uint64_t>(d >> 64) & 1;  // wrapped: the high half is all ones
    }
    return borrow;
  }

  // The final conditional subtraction: t = hi·2^(64N) + x with t < 2m (hi is 0 or 1) becomes
  // t mod m. Compute x - m; keep x only when that borrowed and there was no carry (t < m), else
  // take the difference (the lost carry and the borrow cancel when hi = 1). Selected by mask,
  // not by a branch: which one is taken depends on the secret value.
  static Limbs reduce_once(const Limbs& x, std::uint64_t hi) {
    Limbs diff;
    const std::uint64_t borrow = sub_with_borrow(x, P::kModulus, diff);
    const std::uint64_t keep_x = mask_from_bit(borrow & (hi ^ 1));
    Limbs out;
#pragma GCC unroll 8
    for (std::size_t i = 0; i < N; ++i) out[i] = (x[i] & keep_x) | (diff[i] & ~keep_x);
    return out;
  }

  // a + b for a, b < m: the sum is < 2m, so one conditional subtraction of m reduces it.
  static Limbs add(const Limbs& a, const Limbs& b) {
    Limbs sum;
    std::uint64_t carry = 0;
#pragma GCC unroll 8
    for (std::size_t i = 0; i < N; ++i) {
      const u128 s = u128{a[i]} + b[i] + carry;
      sum[i] = static_cast<std::uint64_t>(s);
      carry = static_cast<std::uint64_t>(s >> 64);
    }
    return reduce_once(sum, carry);
  }

  // a - b for a, b < m: if it borrows, the difference wrapped by 2^(64N), and adding m
  // (mod 2^(64N)) fixes it.
  static Limbs sub(const Limbs& a, const Limbs& b) {
    Limbs diff;
    const std::uint64_t mask = mask_from_bit(sub_with_borrow(a, b, diff));
    std::uint64_t carry = 0;
#pragma GCC unroll 8
    for (std::size_t i = 0; i < N; ++i) {
      const u128 s = u128{diff[i]} + (P::kModulus[i] & mask) + carry;
      diff[i] = static_cast<std::uint64_t>(s);
      carry = static_cast<std::uint64_t>(s >> 64);
    }
    return diff;
  }

  // CIOS (Coarsely Integrated Operand Scanning) Montgomery multiplication: a·b·2^(-64N) mod m
  // for a, b < m. For each limb b[i]: t += a·b[i]; then q = t[0]·(-m^-1) mod 2^64 makes t + q·m
  // divisible by 2^64, and the shift by one limb is folded into the same loop. t needs N+2
  // limbs while accumulating; each step a·b + t + c <= (2^64-1)^2 + 2(2^64-1) = 2^128-1 fits a
  // u128. After N rounds t < 2m, so one conditional subtraction finishes.
  static Limbs mul(const Limbs& a, const Limbs& b) {
    std::array<std::uint64_t, N + 2> t{};
#pragma GCC unroll 8
    for (std::size_t i = 0; i < N; ++i) {
      std::uint64_t c = 0;
#pragma GCC unroll 8
      for (std::size_t j = 0; j < N; ++j) {
        const u128 s = u128{a[j]} * b[i] + t[j] + c;
        t[j] = static_cast<std::uint64_t>(s);
        c = static_cast<std::uint64_t>(s >> 64);
      }
      u128 s = u128{t[N]} + c;
      t[N] = static_cast<std::uint64_t>(s);
      t[N + 1] = static_cast<std::uint64_t>(s >> 64);

      const std::uint64_t q = t[0] * P::kInv;
      s = u128{q} * P::kModulus[0] + t[0];  // low limb is 0 by the choice of q
      c = static_cast<std::uint64_t>(s >> 64);
#pragma GCC unroll 8
      for (std::size_t j = 1; j < N; ++j) {
        s = u128{q} * P::kModulus[j] + t[j] + c;
        t[j - 1] = static_cast<std::uint64_t>(s);
        c = static_cast<std::uint64_t>(s >> 64);
      }
      s = u128{t[N]} + c;
      t[N - 1] = static_cast<std::uint64_t>(s);
      t[N] = t[N + 1] + static_cast<std::uint64_t>(s >> 64);
    }
    Limbs low;
#pragma GCC unroll 8
    for (std::size_t i = 0; i < N; ++i) low[i] = t[i];
    return reduce_once(low, t[N]);
  }
};

}  // namespace detail

}  // namespace mchain::abe

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MCHAIN_ABE_X86_64_ASM 1
#include "abe/pairing/montgomery_x86_64.h"
#else
#define MCHAIN_ABE_X86_64_ASM 0
#endif

namespace mchain::abe {

// P, the constants struct, provides:
//   static constexpr std::size_t kLimbs;                        N
//   static constexpr std::array<std::uint64_t, N> kModulus;     m, little-endian limbs, odd
//   static constexpr std::uint64_t kInv;                        -m^-1 mod 2^64
//   static constexpr std::array<std::uint64_t, N> kR;           R mod m   (R = 2^(64N))
//   static constexpr std::array<std::uint64_t, N> kR2;          R^2 mod m
//   static constexpr std::size_t kBits;                         bit length of m
//   static constexpr std::size_t kBytes;                        length of the encoding
template <typename P>
class MontgomeryField {
 public:
  using Params = P;
  static constexpr std::size_t kLimbs = P::kLimbs;
  static constexpr std::size_t kBits = P::kBits;
  static constexpr std::size_t kBytes = P::kBytes;
  using Limbs = std::array<std::uint64_t, kLimbs>;
  // The canonical encoding: the value (not its Montgomery form), big-endian, fixed length.
  using Encoded = std::array<std::uint8_t, kBytes>;
  static constexpr Limbs kModulus = P::kModulus;

  static_assert(kLimbs >= 2, "one-limb moduli are not what this is for");
  static_assert((kModulus[0] & 1) == 1, "Montgomery reduction needs an odd modulus");
  static_assert(kModulus[0] * P::kInv == ~std::uint64_t{0}, "kInv must be -m^-1 mod 2^64");
  static_assert(kModulus[kLimbs - 1] != 0, "the top limb of the modulus must be used");
  static_assert(kBits > 64 * (kLimbs - 1) && kBits <= 64 * kLimbs);
  static_assert(kBytes * 8 >= kBits && kBytes <= 8 * kLimbs);

  // Zero (the default) and one.
  constexpr MontgomeryField() = default;
  static MontgomeryField zero() { return MontgomeryField(); }
  static MontgomeryField one() { return from_montgomery_limbs(P::kR); }

  static MontgomeryField from_u64(std::uint64_t v) {
    Limbs x{};
    x[0] = v;  // v < 2^64 < m: already reduced
    return from_montgomery_limbs(mont_mul(x, P::kR2));
  }

  // The canonical encoding back to an element. nullopt if the length is not kBytes or the value
  // is >= m: a value and value + m must never both decode, or encodings become malleable.
  static std::optional<MontgomeryField> from_bytes(std::span<const std::uint8_t> bytes) {
    if (bytes.size() != kBytes) return std::nullopt;
    Limbs x{};
    for (std::size_t k = 0; k < kBytes; ++k) {
      x[k / 8] |= std::uint64_t{bytes[kBytes - 1 - k]} << (8 * (k % 8));
    }
    // x < m iff x - m borrows. Branching on the verdict is fine: it is the caller's result.
    Limbs ignored;
    if (sub_with_borrow(x, kModulus, ignored) == 0) return std::nullopt;
    return from_montgomery_limbs(mont_mul(x, P::kR2));  // x·R^2·R^-1 = xR
  }

  Encoded to_bytes() const {
    Limbs unit{};
    unit[0] = 1;
    const Limbs x = mont_mul(v_, unit);  // xR·1·R^-1 = x, fully reduced
    Encoded out{};
    for (std::size_t k = 0; k < kBytes; ++k) {
      out[kBytes - 1 - k] = static_cast<std::uint8_t>(x[k / 8] >> (8 * (k % 8)));
    }
    return out;
  }

  // The arithmetic is forced inline: GCC prices an asm statement by its line count and would
  // otherwise call these and return each 48-byte result through memory (a pairing measured 5%
  // slower that way).

  // a + b and a - b, reduced mod m.
  [[gnu::always_inline]] friend MontgomeryField operator+(const MontgomeryField& a,
                                                          const MontgomeryField& b) {
    return from_montgomery_limbs(add_limbs(a.v_, b.v_));
  }
  [[gnu::always_inline]] friend MontgomeryField operator-(const MontgomeryField& a,
                                                          const MontgomeryField& b) {
    return from_montgomery_limbs(sub_limbs(a.v_, b.v_));
  }

  // -a = 0 - a: m - a for a != 0, and 0 (not m) for a = 0.
  [[gnu::always_inline]] MontgomeryField operator-() const { return zero() - *this; }

  [[gnu::always_inline]] friend MontgomeryField operator*(const MontgomeryField& a,
                                                          const MontgomeryField& b) {
    return from_montgomery_limbs(mont_mul(a.v_, b.v_));
  }

  [[gnu::always_inline]] MontgomeryField& operator+=(const MontgomeryField& b) {
    return *this = *this + b;
  }
  [[gnu::always_inline]] MontgomeryField& operator-=(const MontgomeryField& b) {
    return *this = *this - b;
  }
  [[gnu::always_inline]] MontgomeryField& operator*=(const MontgomeryField& b) {
    return *this = *this * b;
  }

  // a·a, by the multiplication. A dedicated squaring would save about a fifth of the
  // multiplications inside it, but only 7% of a pairing's Fp products are squares (Fp2 and the
  // fields above square with Fp products), so it is not worth a second assembly kernel.
  [[gnu::always_inline]] MontgomeryField square() const { return *this * *this; }

  // a^e for a PUBLIC exponent e (little-endian limbs, any length): square-and-multiply, which
  // branches on e's bits. Never pass a secret exponent. a^0 = 1, also for a = 0.
  MontgomeryField pow(std::span<const std::uint64_t> exponent) const {
    MontgomeryField r = one();
    for (std::size_t i = exponent.size(); i-- > 0;) {
      for (int bit = 63; bit >= 0; --bit) {
        r = r.square();
        if ((exponent[i] >> bit) & 1) r *= *this;
      }
    }
    return r;
  }

  // a^-1 = a^(m-2) (Fermat): constant time, since the exponent is fixed. 0 has no inverse and
  // maps to 0 (0^(m-2) = 0); callers that must not divide by zero check is_zero() first.
  MontgomeryField inverse() const { return pow(kModulusMinusTwo); }

  // A square root, for m ≡ 3 (mod 4) only: s = a^((m+1)/4) satisfies s^2 = a·a^((m-1)/2) = ±a,
  // so s is a root iff s^2 == a, checked before returning. nullopt when a is not a square. Which
  // of the two roots comes back is whatever the exponentiation gives (no sign normalisation).
  std::optional<MontgomeryField> sqrt() const requires((P::kModulus[0] & 3) == 3) {
    const MontgomeryField s = pow(kSqrtExponent);
    if (s.square() == *this) return s;
    return std::nullopt;
  }

  // Constant-time: every limb is looked at whatever the earlier ones held.
  bool is_zero() const {
    std::uint64_t acc = 0;
    for (std::uint64_t limb : v_) acc |= limb;
    return detail::is_zero_bit(acc) == 1;
  }

  friend bool operator==(const MontgomeryField& a, const MontgomeryField& b) {
    std::uint64_t acc = 0;
    for (std::size_t i = 0; i < kLimbs; ++i) acc |= a.v_[i] ^ b.v_[i];
    return detail::is_zero_bit(acc) == 1;
  }

  // b if choose_b, else a, by mask: for the constant-time ladders above this layer.
  static MontgomeryField select(const MontgomeryField& a, const MontgomeryField& b, bool choose_b) {
    const std::uint64_t mask = detail::mask_from_bit(static_cast<std::uint64_t>(choose_b));
    Limbs out;
    for (std::size_t i = 0; i < kLimbs; ++i) out[i] = (a.v_[i] & ~mask) | (b.v_[i] & mask);
    return from_montgomery_limbs(out);
  }

  // The stored representation a·R mod m (for tests and for code that serialises nothing).
  const Limbs& montgomery_limbs() const { return v_; }

 private:
  static constexpr Limbs kModulusMinusTwo = detail::minus_two(kModulus);
  static constexpr Limbs kSqrtExponent = detail::plus_one_over_four(kModulus);

  [[gnu::always_inline]] static MontgomeryField from_montgomery_limbs(const Limbs& limbs) {
    MontgomeryField f;
    f.v_ = limbs;
    return f;
  }

  static std::uint64_t sub_with_borrow(const Limbs& a, const Limbs& b, Limbs& out) {
    return detail::PortableKernels<P>::sub_with_borrow(a, b, out);
  }

  // The kernel dispatch (see the top of this file). kCpuHasBmi2Adx is public: the branch on it
  // goes the same way for every operand.
#if MCHAIN_ABE_X86_64_ASM
  static constexpr bool kX86 = detail::X86Kernels<P>::kFits;
#else
  static constexpr bool kX86 = false;
#endif

  [[gnu::always_inline]] static Limbs add_limbs(const Limbs& a, const Limbs& b) {
#if MCHAIN_ABE_X86_64_ASM
    if constexpr (kX86) return detail::X86Kernels<P>::add(a, b);
#endif
    return detail::PortableKernels<P>::add(a, b);
  }

  [[gnu::always_inline]] static Limbs sub_limbs(const Limbs& a, const Limbs& b) {
#if MCHAIN_ABE_X86_64_ASM
    if constexpr (kX86) return detail::X86Kernels<P>::sub(a, b);
#endif
    return detail::PortableKernels<P>::sub(a, b);
  }

  // a·b·R^-1 mod m for a, b < m.
  [[gnu::always_inline]] static Limbs mont_mul(const Limbs& a, const Limbs& b) {
#if MCHAIN_ABE_X86_64_ASM
    if constexpr (kX86) {
      if (detail::kCpuHasBmi2Adx) return detail::X86Kernels<P>::mul(a, b);
    }
#endif
    return detail::PortableKernels<P>::mul(a, b);
  }

  Limbs v_{};  // a·R mod m, always < m
};

}  // namespace mchain::abe
