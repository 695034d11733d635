// Building and mining blocks for the store tests. No GoogleTest here: the crash test's child
// process uses it too.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "chain/block/block.h"
#include "chain/pow/pow.h"

namespace mchain::testing {

// A semi-finished block proposed by `leader` ("node-1") and marked by every signer given.
inline Result<SemiFinishedBlock> make_semi(
    BlockType type, std::uint64_t round, TimeUs timestamp, const Hash256& previous,
    std::vector<Package> packages, const crypto::Signer& leader,
    const std::vector<std::pair<std::string, const crypto::Signer*>>& markers) {
  Candidate c{type, "node-1", round, timestamp, previous, std::move(packages)};
  auto semi = SemiFinishedBlock::propose(std::move(c), leader);
  if (!semi) return semi;
  for (const auto& [node, signer] : markers) {
    if (auto marked = semi->add_mark(node, *signer); !marked) {
      return std::unexpected(marked.error());
    }
  }
  return semi;
}

// Mines `body` on `previous` at `height` with the lowest nonce_lo in slice `nonce_hi`;
// different slices give different blocks for the same body and parent.
inline Block mine_block(SemiFinishedBlock body, const Hash256& previous, std::uint64_t height,
                        std::uint8_t diff, TimeUs timestamp, std::uint64_t nonce_hi = 0) {
  BlockHeader h;
  h.type = body.candidate.type;
  h.diff = diff;
  h.height = height;
  h.timestamp = timestamp;
  h.previous = previous;
  h.merkle_root = body.candidate.merkle_root();
  h.semi_finished = body.hash();
  auto found = pow::find_first(h.encode(), diff, static_cast<std::uint8_t>(h.type),
                               pow::NonceRange{nonce_hi, 0, UINT64_MAX});
  if (!found) {
    std::fputs("mine_block: no nonce found\n", stderr);
    std::abort();
  }
  h.nonce_hi = found->nonce_hi;
  h.nonce_lo = found->nonce_lo;
  return Block{h, std::move(body)};
}

}  // namespace mchain::testing
