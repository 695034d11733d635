// The SHA-256 compression function (FIPS 180-4 §6.2.2) on its own, so that proof of work can
// hash a fixed 128-byte header prefix once (the midstate) and pay one compression per nonce.
// Two implementations, chosen once at run time: x86-64 SHA extensions when the CPU has them,
// else portable C++. Both are checked against OpenSSL's SHA-256 by the tests.
#pragma once

#include "chain/types.h"

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace mchain::pow {

// The eight working words H0..H7 of FIPS 180-4, in that order.
using Sha256State = std::array<std::uint32_t, 8>;
using Sha256Block = std::span<const std::uint8_t, 64>;

// FIPS 180-4 §5.3.3: the first 32 bits of the fractional parts of the square roots of the
// first eight primes.
inline constexpr Sha256State kSha256Init = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                            0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

// Updates `state` with one 64-byte message block, using the selected implementation.
void sha256_compress(Sha256State& state, const std::uint8_t block[64]);

// "sha-ni" or "portable": the implementation sha256_compress() and the miner use now.
std::string_view sha256_compress_impl();
// Whether this CPU can run the SHA-NI implementation at all.
bool sha256_ni_available();
// Forces the portable implementation (true) or returns to the automatic choice (false), so
// that tests and benchmarks can exercise both on a SHA-NI machine. Not meant to be flipped
// while another thread is hashing: each call then uses one or the other, both correct.
void sha256_force_portable(bool force);

// The two implementations, callable directly (tests). sha256_compress_sha_ni() requires
// sha256_ni_available(); on other CPUs or architectures it aborts.
void sha256_compress_portable(Sha256State& state, const std::uint8_t block[64]);
void sha256_compress_sha_ni(Sha256State& state, const std::uint8_t block[64]);

// A SHA-256 computation paused on a block boundary: the state after some whole blocks.
class Midstate {
 public:
  Midstate() = default;  // nothing hashed yet: the state is H(0)

  void compress(Sha256Block block);
  // Hashes `tail` as the rest of the message, padding included (FIPS 180-4 §5.1.1), and
  // returns the digest of the whole message. The midstate itself is unchanged.
  Hash256 finish(ByteView tail) const;
  // The state as a digest (big-endian words): the hash once the padded last block is in.
  Hash256 digest() const;

  const Sha256State& state() const { return state_; }
  // Bytes compressed so far (a multiple of 64).
  std::uint64_t length() const { return length_; }

 private:
  Sha256State state_ = kSha256Init;
  std::uint64_t length_ = 0;
};

// SHA-256 of a whole message through Midstate (tests compare it with OpenSSL).
Hash256 sha256_via_midstate(ByteView message);

// The digest bytes of a state: each word big-endian, H0 first.
Hash256 state_to_digest(const Sha256State& state);

}  // namespace mchain::pow
