// The invariants a store must keep whatever happened to it (reorganisations, crashes),
// checked through its public interface only.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "chain/store/store.h"

namespace mchain::testing {

struct StoreCensus {
  std::size_t blocks = 0;
  std::size_t confirmed = 0;
  std::size_t queued = 0;
  std::uint64_t height = 0;
};

// Checks, with GoogleTest expectations:
//   - every block's parent is stored at the height below (the zero hash at height 0), and its
//     cumulative work is its ancestors' 2^diff summed;
//   - the tip is the most-work block (ties: the lower hash), with that work and height;
//   - main_chain_at() is the tip's ancestry, parent-linked down to height 0, and nothing above;
//   - every package of every confirmed semi-finished block is findable where it is;
//   - a confirmed block is either mined on the main chain (mined_in names the main-chain block
//     that mined it) or queued, never both; every main block's body is confirmed;
//   - the queue holds confirmed blocks only, in confirmation order.
inline StoreCensus check_store_invariants(const Store& store) {
  StoreCensus census;
  const Hash256 zero{};
  std::map<Hash256, BlockHeader> headers;
  std::map<Hash256, Work> work;
  std::optional<std::pair<Work, Hash256>> best;
  for (std::uint64_t height = 0;; ++height) {
    const std::vector<Hash256> at = store.blocks_at(height);
    if (at.empty()) break;
    for (const Hash256& hash : at) {
      auto block = store.block(hash);
      EXPECT_TRUE(block) << block.error().message;
      if (!block) continue;
      const BlockHeader& h = block->header;
      EXPECT_EQ(h.hash(), hash);
      EXPECT_EQ(h.height, height);
      EXPECT_TRUE(check_block_structure(*block));
      Work w = Work::of_block(h.diff);
      if (height == 0) {
        EXPECT_EQ(h.previous, zero);
      } else {
        auto parent = headers.find(h.previous);
        EXPECT_NE(parent, headers.end()) << "block without its parent at height " << height;
        if (parent == headers.end()) continue;
        EXPECT_EQ(parent->second.height + 1, height);
        w = work.at(h.previous);
        w += Work::of_block(h.diff);
      }
      headers.emplace(hash, h);
      work.emplace(hash, w);
      if (!best || w > best->first || (w == best->first && hash < best->second)) {
        best = std::pair{w, hash};
      }
      ++census.blocks;
    }
  }

  const auto tip = store.tip();
  EXPECT_EQ(tip.has_value(), best.has_value());
  std::set<Hash256> main_chain;
  if (tip && best) {
    EXPECT_EQ(tip->hash, best->second);
    EXPECT_EQ(tip->work, best->first);
    EXPECT_EQ(tip->height, headers[tip->hash].height);
    census.height = tip->height;
    EXPECT_FALSE(store.main_chain_at(tip->height + 1));
    Hash256 at = tip->hash;
    for (std::uint64_t height = tip->height + 1; height-- > 0;) {
      EXPECT_EQ(store.main_chain_at(height), at) << "main chain broken at height " << height;
      main_chain.insert(at);
      const BlockHeader& h = headers[at];
      EXPECT_EQ(store.mined_in(h.semi_finished), at);
      EXPECT_TRUE(store.is_confirmed(h.semi_finished));
      at = h.previous;
    }
    EXPECT_EQ(at, zero);
  }

  const std::vector<Hash256> confirmed = store.confirmed();
  const std::vector<Hash256> queue = store.mining_queue();
  census.confirmed = confirmed.size();
  census.queued = queue.size();
  std::map<Hash256, std::size_t> order;
  for (std::size_t i = 0; i < confirmed.size(); ++i) order.emplace(confirmed[i], i);
  EXPECT_EQ(order.size(), confirmed.size());
  std::set<Hash256> queued;
  std::optional<std::size_t> last;
  for (const Hash256& semi : queue) {
    auto position = order.find(semi);
    EXPECT_NE(position, order.end()) << "queued but not confirmed";
    if (position == order.end()) continue;
    if (last) {
      EXPECT_LT(*last, position->second) << "queue out of confirmation order";
    }
    last = position->second;
    queued.insert(semi);
  }
  for (const Hash256& semi : confirmed) {
    auto body = store.semi_finished(semi);
    EXPECT_TRUE(body) << body.error().message;
    if (!body) continue;
    const auto& packages = body->candidate.packages;
    for (std::uint32_t i = 0; i < packages.size(); ++i) {
      auto where = store.find_package(packages[i].id());
      EXPECT_TRUE(where) << "package lost";
      if (!where) continue;
      EXPECT_EQ(where->semi_finished, semi);
      EXPECT_EQ(where->index, i);
      EXPECT_TRUE(store.has_package(packages[i].id()));
    }
    const auto miner = store.mined_in(semi);
    const bool mined = miner && main_chain.contains(*miner);
    if (miner) {
      EXPECT_TRUE(mined) << "mined_in names a block off the main chain";
    }
    EXPECT_NE(mined, queued.contains(semi)) << "confirmed block neither or both mined and queued";
  }
  return census;
}

}  // namespace mchain::testing
