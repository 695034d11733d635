// Internal to chain/pow: the SHA-256 round constants and the per-nonce search loops behind
// Miner, one per compression implementation.
#pragma once

#include "chain/pow/sha256_compress.h"

#include <array>
#include <cstdint>
#include <optional>

namespace mchain::pow::detail {

// FIPS 180-4 §4.2.2: the first 32 bits of the fractional parts of the cube roots of the first
// 64 primes.
inline constexpr std::array<std::uint32_t, 64> kSha256K = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

// The last block of a 136-byte message after a 128-byte midstate: nonce_lo (8 bytes,
// big-endian) || 0x80 || zeros || the message length in bits, 64-bit big-endian.
inline constexpr std::uint64_t kScanMessageBits = 136 * 8;

// A cheap test of the digest's first word: (H0 & mask) == want. Exact for up to 32
// difficulty bits; beyond that the caller checks the whole hash of every candidate.
struct WordTarget {
  std::uint32_t mask = 0;
  std::uint32_t want = 0;
};

// The first nonce_lo in [begin, end) whose digest, continuing from `midstate`, passes
// `target`; nullopt if none does. The dispatcher follows sha256_compress_impl().
std::optional<std::uint64_t> scan_nonces(const Sha256State& midstate, std::uint64_t begin,
                                         std::uint64_t end, WordTarget target);
std::optional<std::uint64_t> scan_nonces_portable(const Sha256State& midstate,
                                                  std::uint64_t begin, std::uint64_t end,
                                                  WordTarget target);
// Requires sha256_ni_available().
std::optional<std::uint64_t> scan_nonces_sha_ni(const Sha256State& midstate, std::uint64_t begin,
                                                std::uint64_t end, WordTarget target);

}  // namespace mchain::pow::detail
