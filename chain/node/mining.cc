#include "chain/node/mining.h"

namespace mchain {

Result<std::optional<Block>> mine_next(const Store& store, pow::Miner& miner,
                                       const MiningConfig& config, TimeUs now,
                                       const std::atomic<bool>& stop) {
  const std::vector<Hash256> queue = store.mining_queue();
  if (queue.empty()) return std::optional<Block>();
  auto body = store.semi_finished(queue.front());
  if (!body) return std::unexpected(body.error());
  BlockHeader header;
  header.type = body->candidate.type;
  header.diff = header.type == BlockType::data ? config.data_diff : config.policy_diff;
  if (auto tip = store.tip()) {
    header.previous = tip->hash;
    header.height = tip->height + 1;
  }
  header.timestamp = now;
  header.merkle_root = body->candidate.merkle_root();
  header.semi_finished = body->hash();
  auto found = miner.mine(header.encode(), header.diff, static_cast<std::uint8_t>(header.type),
                          config.slice, stop);
  if (!found) return std::optional<Block>();
  header.nonce_hi = found->nonce_hi;
  header.nonce_lo = found->nonce_lo;
  return std::optional<Block>(Block{header, *std::move(body)});
}

}  // namespace mchain
