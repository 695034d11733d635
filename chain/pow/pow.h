// Proof of work for layer-2 blocks (paper §IV.C.3): find a nonce that makes the SHA-256 of
// the 136-byte block header start with the block's type flag followed by zero bits.
//
// Header layout (big-endian integers; chain/block owns the encoding, this module only needs
// the nonce offsets and the size):
//   0 version(4) 4 type(1) 5 diff(1) 6 reserved(2) 8 height(8) 16 timestamp_us(8)
//   24 previous hash(32) 56 merkle root(32) 88 semi-finished hash(32)
//   120 nonce_hi(8) 128 nonce_lo(8)
// block hash = SHA-256(all 136 bytes). Bytes 0..127 are fixed for one nonce_hi, so the miner
// compresses them once (the midstate) and pays one compression per nonce_lo.
#pragma once

#include "chain/error.h"
#include "chain/types.h"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace mchain::pow {

inline constexpr std::size_t kHeaderSize = 136;
inline constexpr std::size_t kNonceHiOffset = 120;
inline constexpr std::size_t kNonceLoOffset = 128;

inline constexpr std::uint8_t kDataType = 0;
inline constexpr std::uint8_t kPolicyType = 1;
// Difficulties are 1..255 in a header (one byte, 0 is invalid); checks accept up to 256.
inline constexpr unsigned kMaxDiff = 256;

using HeaderBytes = std::array<std::uint8_t, kHeaderSize>;
using HeaderView = std::span<const std::uint8_t, kHeaderSize>;

// Whether `hash` meets difficulty `diff` for a block of `type`. Bit 0 is the most significant
// bit of hash[0]; it is the type flag and diff counts it: a data block (type 0) needs bits
// 0..diff-1 all zero, a policy block (type 1) needs bit 0 set and bits 1..diff-1 zero. False
// for diff 0, diff > 256 and types other than 0 and 1: no hash meets an invalid difficulty.
bool meets_difficulty(const Hash256& hash, std::uint8_t type, unsigned diff);

// The block hash of a header: one SHA-256 over the 136 bytes, through OpenSSL. This is the
// reference every mined nonce is checked against.
Hash256 header_hash(HeaderView header);

// A search space: nonce_hi fixed, nonce_lo in [lo_begin, lo_end).
struct NonceRange {
  std::uint64_t hi = 0;
  std::uint64_t lo_begin = 0;
  std::uint64_t lo_end = 0;
};

struct MinedNonce {
  std::uint64_t nonce_hi = 0;
  std::uint64_t nonce_lo = 0;
  Hash256 hash{};  // the block hash with these nonces
  std::uint64_t hashes_tried = 0;  // by all threads, this one included
};

// The slice of node `node_index` among `node_count` cooperating miners: nonce_hi is the node's
// index, so slices never overlap, and nonce_lo spans [0, 2^64 - 1). Fails unless
// node_index < node_count.
Result<NonceRange> cooperative_slice(unsigned node_index, unsigned node_count);

// The header with both nonces written in.
HeaderBytes with_nonce(HeaderView header_template, std::uint64_t nonce_hi,
                       std::uint64_t nonce_lo);

// The lowest nonce_lo in the range whose header meets the difficulty, searched on this thread
// only (deterministic: the known-answer tests use it). The template's nonce bytes are ignored;
// its type and diff bytes should match `type` and `diff`, which this function does not check.
// nullopt if no nonce in the range qualifies (at once for an invalid diff or type).
std::optional<MinedNonce> find_first(HeaderView header_template, unsigned diff,
                                     std::uint8_t type, NonceRange range);

// Searches a range on several threads, each over a contiguous share of [lo_begin, lo_end).
// Every nonce it returns has been re-hashed with header_hash(); a disagreement with the fast
// path is a bug and aborts the process.
class Miner {
 public:
  // threads == 0 means one per hardware thread.
  explicit Miner(unsigned threads);

  // Returns the first qualifying nonce any thread finds. With more than one thread that need
  // not be the lowest in the range, and which one wins may differ between runs. nullopt when
  // `stop` is set (polled every 4,096 nonces per thread, well under a millisecond) or the
  // range is exhausted. Arguments as for find_first(). One call at a time per Miner. Throws
  // std::system_error only if the threads cannot be started.
  std::optional<MinedNonce> mine(HeaderView header_template, unsigned diff, std::uint8_t type,
                                 NonceRange range, const std::atomic<bool>& stop);

  unsigned threads() const { return threads_; }
  // Nonces hashed by the last mine() call, also when it returned nullopt (benchmarks).
  std::uint64_t last_hashes_tried() const { return last_hashes_tried_; }

 private:
  unsigned threads_;
  std::uint64_t last_hashes_tried_ = 0;
};

}  // namespace mchain::pow
