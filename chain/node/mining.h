// Layer 2 on one node: mine the head of the mining queue on top of the tip.
#pragma once

#include <atomic>
#include <optional>

#include "chain/pow/pow.h"
#include "chain/store/store.h"

namespace mchain {

struct MiningConfig {
  std::uint8_t data_diff = 16;
  std::uint8_t policy_diff = 16;
  // The node's cooperative slice (pow::cooperative_slice): nodes never search the same nonces.
  pow::NonceRange slice{0, 0, UINT64_MAX};
};

// Builds the header for the oldest confirmed, unmined semi-finished block on the current tip
// and searches the slice. nullopt when the queue is empty, the slice is exhausted or `stop` is
// set (another node's block arrived). The caller appends the block and broadcasts it.
Result<std::optional<Block>> mine_next(const Store& store, pow::Miner& miner,
                                       const MiningConfig& config, TimeUs now,
                                       const std::atomic<bool>& stop);

}  // namespace mchain
