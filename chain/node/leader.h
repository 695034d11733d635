// Leader election for layer-1 rounds (SPEC §6): deterministic and unpredictable before the
// previous block is confirmed, so that honest nodes agree on the leader without messages.
#pragma once

#include <span>
#include <string>

#include "chain/error.h"
#include "chain/types.h"

namespace mchain {

// The leader of `round` among `valid_pool` (node ids, any order, no duplicates), seeded by
// the hash of the last semi-finished block. Uniform over the pool: no modulo bias. Fails on
// an empty pool or a repeated id.
Result<std::string> elect_leader(const Hash256& last_semi_finished, std::uint64_t round,
                                 std::span<const std::string> valid_pool);

}  // namespace mchain
