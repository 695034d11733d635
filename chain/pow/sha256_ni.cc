// SHA-256 compression with the x86-64 SHA extensions (SHA-NI). Only the functions marked
// MCHAIN_SHA_NI use those instructions; they run only after sha256_ni_available() said yes.
//
// Intel's register layout: SHA256RNDS2(cdgh, abef, wk) does two rounds on the working
// variables held as abef = {A, B, E, F} and cdgh = {C, D, G, H} (first letter in the highest
// dword), with W[t] + K[t] and W[t+1] + K[t+1] in the lowest two dwords of wk, and returns
// the new {A, B, E, F}; the new {C, D, G, H} is the old {A, B, E, F}. SHA256MSG1 and
// SHA256MSG2 compute the σ0 and σ1 parts of the message schedule for four words at a time.
#include "chain/pow/sha256_internal.h"

#include <cstdio>
#include <cstdlib>

#if defined(__x86_64__)
#include <immintrin.h>
#define MCHAIN_SHA_NI __attribute__((target("sha,sse4.1,ssse3")))
#endif

namespace mchain::pow {

#if defined(__x86_64__)

namespace {

// Two nonces per step: one chain of SHA256RNDS2 is latency-bound, two keep the unit busy.
constexpr int kScanWays = 2;

constexpr std::uint32_t kPadWord = 0x80000000;  // the 0x80 byte after the 8-byte nonce

MCHAIN_SHA_NI inline __m128i k4(int group) {
  return _mm_loadu_si128(
      reinterpret_cast<const __m128i*>(detail::kSha256K.data() + 4 * group));
}

MCHAIN_SHA_NI inline __m128i set_words(std::uint32_t w3, std::uint32_t w2, std::uint32_t w1,
                                       std::uint32_t w0) {
  return _mm_set_epi32(static_cast<int>(w3), static_cast<int>(w2), static_cast<int>(w1),
                       static_cast<int>(w0));
}

struct Lanes {
  __m128i abef;
  __m128i cdgh;
};

MCHAIN_SHA_NI inline Lanes load_state(const Sha256State& s) {
  return {set_words(s[0], s[1], s[4], s[5]), set_words(s[2], s[3], s[6], s[7])};
}

MCHAIN_SHA_NI inline void store_state(Sha256State& s, Lanes lanes) {
  alignas(16) std::uint32_t abef[4];
  alignas(16) std::uint32_t cdgh[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(abef), lanes.abef);
  _mm_store_si128(reinterpret_cast<__m128i*>(cdgh), lanes.cdgh);
  s = {abef[3], abef[2], cdgh[3], cdgh[2], abef[1], abef[0], cdgh[1], cdgh[0]};
}

// Four rounds; wk = W[t..t+3] + K[t..t+3]. The two variables swap roles in between, so no
// register moves are needed: afterwards abef and cdgh again hold what their names say.
MCHAIN_SHA_NI inline void rounds4(Lanes& v, __m128i wk) {
  v.cdgh = _mm_sha256rnds2_epu32(v.cdgh, v.abef, wk);
  v.abef = _mm_sha256rnds2_epu32(v.abef, v.cdgh, _mm_shuffle_epi32(wk, 0x0e));
}

// W[t..t+3] from W[t-16..t-1], four words per vector, lowest index in the lowest dword.
MCHAIN_SHA_NI inline __m128i schedule4(__m128i w16, __m128i w12, __m128i w8, __m128i w4) {
  // msg1: W[t-16] + σ0(W[t-15]) ...; alignr: W[t-7..t-4]; msg2 adds σ1(W[t-2]).
  const __m128i partial =
      _mm_add_epi32(_mm_sha256msg1_epu32(w16, w12), _mm_alignr_epi8(w4, w8, 4));
  return _mm_sha256msg2_epu32(partial, w4);
}

// The 64 rounds for N independent blocks m[s] (consumed), interleaved group by group so that
// the N dependency chains overlap. Fully unrolled, the arrays live in registers.
template <int N>
MCHAIN_SHA_NI inline void rounds64(Lanes (&v)[N], __m128i (&m)[N][4]) {
#pragma GCC unroll 16
  for (int g = 0; g < 16; ++g) {
    const __m128i k = k4(g);
#pragma GCC unroll 4
    for (int s = 0; s < N; ++s) {
      rounds4(v[s], _mm_add_epi32(m[s][g % 4], k));
      if (g < 12) {
        m[s][g % 4] = schedule4(m[s][g % 4], m[s][(g + 1) % 4], m[s][(g + 2) % 4],
                                m[s][(g + 3) % 4]);
      }
    }
  }
}

MCHAIN_SHA_NI void compress_block(Sha256State& state, const std::uint8_t* block) {
  // Message words are big-endian: reverse the bytes of each dword.
  const __m128i bswap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
  __m128i m[1][4];
  for (int i = 0; i < 4; ++i) {
    m[0][i] = _mm_shuffle_epi8(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * i)), bswap);
  }
  const Lanes init = load_state(state);
  Lanes v[1] = {init};
  rounds64<1>(v, m);
  store_state(state, {_mm_add_epi32(v[0].abef, init.abef), _mm_add_epi32(v[0].cdgh, init.cdgh)});
}

// The last block of the header for one nonce (see kScanMessageBits).
MCHAIN_SHA_NI inline void nonce_block(std::uint64_t nonce, __m128i (&m)[4]) {
  m[0] = set_words(0, kPadWord, static_cast<std::uint32_t>(nonce),
                   static_cast<std::uint32_t>(nonce >> 32));
  m[1] = _mm_setzero_si128();
  m[2] = _mm_setzero_si128();
  m[3] = set_words(static_cast<std::uint32_t>(detail::kScanMessageBits), 0, 0, 0);
}

// H0 of the digest: A of the final state.
MCHAIN_SHA_NI inline std::uint32_t first_word(const Lanes& v, const Lanes& init) {
  return static_cast<std::uint32_t>(_mm_extract_epi32(_mm_add_epi32(v.abef, init.abef), 3));
}

MCHAIN_SHA_NI std::optional<std::uint64_t> scan(const Sha256State& midstate,
                                                std::uint64_t begin, std::uint64_t end,
                                                detail::WordTarget target) {
  const Lanes init = load_state(midstate);
  std::uint64_t nonce = begin;
  while (nonce < end && end - nonce >= kScanWays) {
    Lanes v[kScanWays];
    __m128i m[kScanWays][4];
    for (int s = 0; s < kScanWays; ++s) {
      v[s] = init;
      nonce_block(nonce + static_cast<std::uint64_t>(s), m[s]);
    }
    rounds64<kScanWays>(v, m);
    // Lowest nonce first, so that a single-threaded search is deterministic.
    for (int s = 0; s < kScanWays; ++s) {
      if ((first_word(v[s], init) & target.mask) == target.want) {
        return nonce + static_cast<std::uint64_t>(s);
      }
    }
    nonce += kScanWays;
  }
  for (; nonce < end; ++nonce) {
    Lanes v[1] = {init};
    __m128i m[1][4];
    nonce_block(nonce, m[0]);
    rounds64<1>(v, m);
    if ((first_word(v[0], init) & target.mask) == target.want) return nonce;
  }
  return std::nullopt;
}

}  // namespace

bool sha256_ni_available() {
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1") &&
           __builtin_cpu_supports("ssse3");
  }();
  return available;
}

void sha256_compress_sha_ni(Sha256State& state, const std::uint8_t block[64]) {
  if (!sha256_ni_available()) {
    std::fputs("mchain: sha256_compress_sha_ni called on a CPU without SHA-NI\n", stderr);
    std::abort();
  }
  compress_block(state, block);
}

namespace detail {

std::optional<std::uint64_t> scan_nonces_sha_ni(const Sha256State& midstate, std::uint64_t begin,
                                                std::uint64_t end, WordTarget target) {
  return scan(midstate, begin, end, target);
}

}  // namespace detail

#else  // not x86-64: the portable implementation only

bool sha256_ni_available() { return false; }

void sha256_compress_sha_ni(Sha256State&, const std::uint8_t*) {
  std::fputs("mchain: sha256_compress_sha_ni called on a non-x86-64 build\n", stderr);
  std::abort();
}

namespace detail {

std::optional<std::uint64_t> scan_nonces_sha_ni(const Sha256State&, std::uint64_t,
                                                std::uint64_t, WordTarget) {
  std::fputs("mchain: scan_nonces_sha_ni called on a non-x86-64 build\n", stderr);
  std::abort();
}

}  // namespace detail

#endif

}  // namespace mchain::pow
