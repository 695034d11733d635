// Layer-1 consensus messages (paper Algorithm 2). They travel between nodes through a
// Transport: in-process for one host and tests, TLS gossip between hosts.
//
//   package     a package as produced, flooded so that any leader can propose it
//   proposal    the leader's signed candidate, as a semi-finished block without marks
//   mark        a node's valid mark over the candidate hash
//   accusation  a node's signed claim that a proposal holds an invalid package, with the
//               proposal itself as evidence, so that any node can re-check it
//   status      a node's signed heartbeat: it is alive, and how far its two layers reach
//   mined       a mature block, flooded as soon as it is mined
//   sync        a catch-up request from a locator, and its reply (sent to one peer only)
#pragma once

#include <variant>

#include "chain/block/block.h"
#include "chain/package/validate.h"

namespace mchain {

struct PackageGossip {
  Package package;
};

struct Proposal {
  SemiFinishedBlock block;  // no marks yet
  // block.candidate.hash(), when decode_message() had it from the bytes (not encoded).
  std::optional<Hash256> candidate_hash = std::nullopt;
};

struct Mark {
  Hash256 candidate{};
  ValidMark mark;
};

struct Accusation {
  std::string accuser;
  SemiFinishedBlock proposal;
  std::uint32_t package_index = 0;
  Verdict verdict = Verdict::malformed;
  crypto::Signature signature;  // by the accuser, over accusation_signing_message()

  Bytes signing_message() const;
  static Result<Accusation> make(std::string accuser, SemiFinishedBlock proposal,
                                 std::uint32_t package_index, Verdict verdict,
                                 const crypto::Signer& signer);
};

struct StatusReport {
  std::string node;
  std::uint64_t confirmed = 0;  // semi-finished blocks confirmed at this node
  Hash256 last_confirmed{};     // the newest of them (L)
  std::uint64_t attempt = 0;    // the node's round attempt k on L
  std::uint64_t height = 0;     // its main-chain tip
  Hash256 tip{};
  TimeUs time = 0;              // the node's clock; makes every report a new gossip message
  crypto::Signature signature;  // by the node, over signing_message()

  Bytes signing_message() const;
};

struct MinedBlock {
  Block block;
};

// Locators list the asker's hashes newest first, spaced exponentially back to the first, so
// that a peer finds the newest one it shares in O(log n) entries.
struct SyncRequest {
  std::string node;                // who asks (the reply goes there)
  std::vector<Hash256> confirmed;  // semi-finished blocks, in confirmation order
  std::vector<Hash256> mature;     // main-chain blocks
};

struct SyncReply {
  std::vector<SemiFinishedBlock> confirmed;  // after the newest shared one, oldest first
  std::vector<Block> mature;                 // main chain above the newest shared one
  bool more = false;                         // the reply was capped: ask again
};

inline constexpr std::size_t kMaxLocator = 128;
inline constexpr std::size_t kMaxSyncBlocks = 512;  // per reply and layer

using Message = std::variant<PackageGossip, Proposal, Mark, Accusation, StatusReport, MinedBlock,
                             SyncRequest, SyncReply>;

Bytes encode_message(const Message& message);
// The same for a proposal, without copying it into a Message first.
Bytes encode_message(const Proposal& proposal);
Result<Message> decode_message(ByteView encoded, const BlockLimits& limits = {});

}  // namespace mchain
