// Re-checks a stored chain end to end, as an auditor would: `mchainctl chain verify`.
//
// The store trusts what consensus handed it (confirm) and checks only a block's structure on
// append; its bytes on disk can still be altered afterwards. verify_chain re-reads every
// main-chain block from height 0 to the tip and re-checks what can be checked from the chain
// alone: decoding, header against body (Merkle root, semi-finished hash, PoW), the hash links
// and heights, the cumulative work of the tip, the leader signature and valid marks of every
// semi-finished block, and the signatures of every package against the keys in force at its
// time. It also checks the layer-1 chain: confirmed semi-finished blocks, in confirmation
// order, each naming the one before as `previous`.
//
// It does not re-run validate(): the store's view already contains every package, so the
// replay and staleness checks would reject the chain's own packages. What validation decided
// about owners, hosts and policies is vouched for by the valid marks, which are checked.
#pragma once

#include <optional>
#include <string>

#include "chain/error.h"
#include "chain/store/store.h"

namespace mchain {

struct BrokenLink {
  // The main-chain height; nullopt for a confirmed semi-finished block not on the main chain.
  std::optional<std::uint64_t> height;
  // The mature block's hash as the main chain names it, or the semi-finished block's hash
  // when it is not mined.
  Hash256 hash{};
  std::string reason;

  // "height 3 block 1a2b…: Merkle root does not match the packages" (full hash).
  std::string describe() const;
};

struct ChainReport {
  std::optional<ChainTip> tip;              // nullopt: no mature block yet
  std::uint64_t blocks_checked = 0;         // main-chain blocks found intact, from height 0
  std::uint64_t packages_checked = 0;       // packages whose signatures verified
  std::uint64_t semi_finished_checked = 0;  // confirmed semi-finished blocks read
  std::optional<BrokenLink> first_broken;   // the lowest broken main-chain block, else the
                                            // first broken unmined one

  bool ok() const { return !first_broken.has_value(); }
};

// The leader signature, the valid marks (at least one, no node twice) and every package's
// signatures of one semi-finished block, with the keys `view` holds at the candidate's and
// the packages' times. An error names the first failure.
Status verify_semi_finished_signatures(const SemiFinishedBlock& block, const View& view);

// Fails only if the store cannot be read at all; a chain that reads but does not check out
// is a report with first_broken set.
Result<ChainReport> verify_chain(const Store& store);

}  // namespace mchain
