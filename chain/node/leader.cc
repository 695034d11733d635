#include "chain/node/leader.h"

#include <algorithm>
#include <vector>

#include "chain/crypto/hash.h"

namespace mchain {

Result<std::string> elect_leader(const Hash256& last_semi_finished, std::uint64_t round,
                                 std::span<const std::string> valid_pool) {
  if (valid_pool.empty()) return fail("leader election: the valid pool is empty");
  // Sorted, so that the result does not depend on the order a node happens to list its peers.
  std::vector<std::string> pool(valid_pool.begin(), valid_pool.end());
  std::sort(pool.begin(), pool.end());
  if (std::adjacent_find(pool.begin(), pool.end()) != pool.end()) {
    return fail("leader election: node ids in the valid pool repeat");
  }
  const std::uint64_t n = pool.size();
  // Values at or above the largest multiple of n are redrawn, so every index is equally likely.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  constexpr std::string_view kDomain = "mchain/leader/v1";
  Bytes seed(kDomain.begin(), kDomain.end());
  seed.push_back(0);
  seed.insert(seed.end(), last_semi_finished.begin(), last_semi_finished.end());
  const std::size_t counters_at = seed.size();
  seed.resize(counters_at + 16);
  for (std::uint64_t draw = 0;; ++draw) {
    for (int i = 0; i < 8; ++i) {
      seed[counters_at + i] = static_cast<std::uint8_t>(round >> (56 - 8 * i));
      seed[counters_at + 8 + i] = static_cast<std::uint8_t>(draw >> (56 - 8 * i));
    }
    const Hash256 h = crypto::sha256(seed);
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < 8; ++i) value = value << 8 | h[i];
    if (value < limit) return pool[value % n];
  }
}

}  // namespace mchain
