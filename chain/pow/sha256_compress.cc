// Portable SHA-256 compression (FIPS 180-4 §6.2.2), the run-time choice of implementation,
// and Midstate. The SHA-NI implementation is in sha256_ni.cc.
#include "chain/pow/sha256_compress.h"

#include "chain/pow/sha256_internal.h"

#include <algorithm>
#include <atomic>
#include <bit>

namespace mchain::pow {

namespace {

std::uint32_t load_be32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 |
         std::uint32_t{p[3]};
}

void store_be64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}

// FIPS 180-4 §4.1.2.
std::uint32_t ch(std::uint32_t x, std::uint32_t y, std::uint32_t z) { return (x & y) ^ (~x & z); }
std::uint32_t maj(std::uint32_t x, std::uint32_t y, std::uint32_t z) {
  return (x & y) ^ (x & z) ^ (y & z);
}
std::uint32_t big_sigma0(std::uint32_t x) {
  return std::rotr(x, 2) ^ std::rotr(x, 13) ^ std::rotr(x, 22);
}
std::uint32_t big_sigma1(std::uint32_t x) {
  return std::rotr(x, 6) ^ std::rotr(x, 11) ^ std::rotr(x, 25);
}
std::uint32_t small_sigma0(std::uint32_t x) {
  return std::rotr(x, 7) ^ std::rotr(x, 18) ^ (x >> 3);
}
std::uint32_t small_sigma1(std::uint32_t x) {
  return std::rotr(x, 17) ^ std::rotr(x, 19) ^ (x >> 10);
}

// Tests force the portable path on SHA-NI machines; the CPU check itself runs once.
std::atomic<bool> g_force_portable{false};

bool use_sha_ni() {
  return sha256_ni_available() && !g_force_portable.load(std::memory_order_relaxed);
}

}  // namespace

void sha256_compress_portable(Sha256State& state, const std::uint8_t block[64]) {
  std::array<std::uint32_t, 64> w;
  for (int t = 0; t < 16; ++t) w[t] = load_be32(block + 4 * t);
  for (int t = 16; t < 64; ++t) {
    w[t] = small_sigma1(w[t - 2]) + w[t - 7] + small_sigma0(w[t - 15]) + w[t - 16];
  }
  auto [a, b, c, d, e, f, g, h] = state;
  for (int t = 0; t < 64; ++t) {
    const std::uint32_t t1 = h + big_sigma1(e) + ch(e, f, g) + detail::kSha256K[t] + w[t];
    const std::uint32_t t2 = big_sigma0(a) + maj(a, b, c);
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

void sha256_compress(Sha256State& state, const std::uint8_t block[64]) {
  if (use_sha_ni()) {
    sha256_compress_sha_ni(state, block);
  } else {
    sha256_compress_portable(state, block);
  }
}

std::string_view sha256_compress_impl() { return use_sha_ni() ? "sha-ni" : "portable"; }

void sha256_force_portable(bool force) {
  g_force_portable.store(force, std::memory_order_relaxed);
}

Hash256 state_to_digest(const Sha256State& state) {
  Hash256 out;
  for (std::size_t i = 0; i < state.size(); ++i) {
    out[4 * i] = static_cast<std::uint8_t>(state[i] >> 24);
    out[4 * i + 1] = static_cast<std::uint8_t>(state[i] >> 16);
    out[4 * i + 2] = static_cast<std::uint8_t>(state[i] >> 8);
    out[4 * i + 3] = static_cast<std::uint8_t>(state[i]);
  }
  return out;
}

void Midstate::compress(Sha256Block block) {
  sha256_compress(state_, block.data());
  length_ += 64;
}

Hash256 Midstate::finish(ByteView tail) const {
  Midstate m = *this;
  while (tail.size() >= 64) {
    m.compress(tail.first<64>());
    tail = tail.subspan(64);
  }
  // FIPS 180-4 §5.1.1: a 1 bit, zeros up to 56 mod 64 bytes, the length in bits.
  std::array<std::uint8_t, 128> last{};
  std::copy(tail.begin(), tail.end(), last.begin());
  last[tail.size()] = 0x80;
  const std::size_t last_size = tail.size() < 56 ? 64 : 128;
  store_be64(last.data() + last_size - 8, (m.length_ + tail.size()) * 8);
  for (std::size_t off = 0; off < last_size; off += 64) {
    sha256_compress(m.state_, last.data() + off);
  }
  return m.digest();
}

Hash256 Midstate::digest() const { return state_to_digest(state_); }

Hash256 sha256_via_midstate(ByteView message) { return Midstate().finish(message); }

namespace detail {

std::optional<std::uint64_t> scan_nonces_portable(const Sha256State& midstate,
                                                  std::uint64_t begin, std::uint64_t end,
                                                  WordTarget target) {
  std::array<std::uint8_t, 64> block{};
  block[8] = 0x80;
  store_be64(block.data() + 56, kScanMessageBits);
  for (std::uint64_t nonce = begin; nonce < end; ++nonce) {
    store_be64(block.data(), nonce);
    Sha256State state = midstate;
    sha256_compress_portable(state, block.data());
    if ((state[0] & target.mask) == target.want) return nonce;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> scan_nonces(const Sha256State& midstate, std::uint64_t begin,
                                         std::uint64_t end, WordTarget target) {
  return use_sha_ni() ? scan_nonces_sha_ni(midstate, begin, end, target)
                      : scan_nonces_portable(midstate, begin, end, target);
}

}  // namespace detail

}  // namespace mchain::pow
