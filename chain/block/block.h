// Blocks of the two-layer chain (SPEC §6, paper §IV.C).
//
// Layer 1: a leader proposes a Candidate (its ordered packages), signs it, and every node of
// the valid pool adds a ValidMark (its signature over the candidate hash) after validating
// every package. Candidate + leader signature + all marks = a SemiFinishedBlock: the
// confirmation a producer waits for.
// Layer 2: the nodes mine a BlockHeader over the semi-finished block by proof of work; header
// + semi-finished block = a mature Block, appended to the chain.
//
// Encodings: candidates and semi-finished blocks are canonical CBOR (docs/encoding.md); the
// header is a fixed 136-byte binary layout so that the nonce search costs one SHA-256
// compression per nonce (its first 128 bytes are a constant midstate).
#pragma once

#include "chain/crypto/sign.h"
#include "chain/error.h"
#include "chain/package/package.h"
#include "chain/types.h"

#include <array>
#include <string>
#include <vector>

namespace mchain {

// The first bit of a mature block's hash is its type flag (paper §IV.C.3).
enum class BlockType : std::uint8_t { data = 0, policy = 1 };
std::string_view to_string(BlockType type);

// Data packages go into data blocks; policies, bindings, key links and membership changes,
// which change what later packages are validated against, into policy blocks.
BlockType block_type_for(PackageType type);

struct BlockLimits {
  std::size_t max_packages = 20'000;
  std::size_t max_block_bytes = 32 << 20;
  PackageLimits package;
};

// A leader's proposal for one consensus round.
struct Candidate {
  BlockType type = BlockType::data;
  std::string leader;
  std::uint64_t round = 0;
  TimeUs timestamp = 0;
  Hash256 previous{};  // hash of the previous semi-finished block (zero for the first)
  std::vector<Package> packages;

  Bytes encode() const;
  // SHA-256 of the encoding: what the leader and every valid mark sign.
  Hash256 hash() const;
  // Merkle root over the package ids (RFC 6962 hashing, chain/block/merkle.h).
  Hash256 merkle_root() const;
};

// Signature domains, so that a candidate signature is never a valid mark and vice versa.
Bytes candidate_signing_message(const Hash256& candidate_hash);
Bytes valid_mark_signing_message(const Hash256& candidate_hash);

struct ValidMark {
  std::string node;
  crypto::Signature signature;  // over valid_mark_signing_message(candidate hash)
  bool operator==(const ValidMark&) const = default;
};

struct SemiFinishedBlock {
  Candidate candidate;
  crypto::Signature leader_signature;
  std::vector<ValidMark> marks;  // sorted by node id, one per node

  // The leader signs a candidate into a semi-finished block with no marks yet.
  static Result<SemiFinishedBlock> propose(Candidate candidate, const crypto::Signer& leader);
  // Adds (or replaces) `node`'s mark, keeping the canonical order.
  Status add_mark(std::string node, const crypto::Signer& signer);

  Bytes encode() const;
  static Result<SemiFinishedBlock> decode(ByteView encoded, const BlockLimits& limits = {});
  // The same, also giving candidate.hash() — hashed from the bytes read, which the strict
  // decoder guarantees are the canonical encoding, so a 600 KB candidate is not encoded again.
  static Result<SemiFinishedBlock> decode(ByteView encoded, const BlockLimits& limits,
                                          Hash256& candidate_hash);
  // SHA-256 of the whole encoding, marks included: the mature header commits to them.
  Hash256 hash() const;
};

inline constexpr std::size_t kHeaderSize = 136;
inline constexpr std::uint32_t kHeaderVersion = 1;

// The mature block header: the paper's seven fields (the block hash being SHA-256 of this
// header) plus version, type and the semi-finished block's hash. Layout, big-endian:
//   0 version u32 | 4 type u8 | 5 diff u8 | 6 reserved u16 (0) | 8 height u64
//   16 timestamp_us u64 | 24 previous hash | 56 merkle root | 88 semi-finished hash
//   120 nonce_hi u64 (a miner's slice; still in the midstate) | 128 nonce_lo u64
struct BlockHeader {
  BlockType type = BlockType::data;
  std::uint8_t diff = 0;
  std::uint64_t height = 0;
  TimeUs timestamp = 0;
  Hash256 previous{};
  Hash256 merkle_root{};
  Hash256 semi_finished{};
  std::uint64_t nonce_hi = 0;
  std::uint64_t nonce_lo = 0;

  std::array<std::uint8_t, kHeaderSize> encode() const;
  static Result<BlockHeader> decode(ByteView encoded);
  Hash256 hash() const;
};

struct Block {
  BlockHeader header;
  SemiFinishedBlock body;

  Bytes encode() const;
  static Result<Block> decode(ByteView encoded, const BlockLimits& limits = {});
  Hash256 hash() const { return header.hash(); }
};

// Checks that need no view of the chain: the header matches the body (type, Merkle root,
// semi-finished hash), the hash meets the difficulty, and every package belongs in a block
// of this type. Signatures are checked against the view by the consensus layer.
Status check_block_structure(const Block& block);

}  // namespace mchain
