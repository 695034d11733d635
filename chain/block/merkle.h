// The Merkle tree over a block's package ids, and inclusion proofs for single packages.
//
// Hashing follows RFC 6962 §2.1 (Certificate Transparency), so that any CT tool can check
// our roots and proofs:
//   leaf  = SHA-256(0x00 || package_id)
//   node  = SHA-256(0x01 || left || right)
//   MTH({})      = SHA-256("")
//   MTH(D[n])    = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n.
// The distinct prefixes keep a leaf from ever passing as an inner node (a second preimage),
// and the split never duplicates a leaf, so two different lists of ids cannot share a root
// the way Bitcoin's trees could (CVE-2012-2459). See docs/encoding.md, "Merkle trees".
#pragma once

#include "chain/error.h"
#include "chain/types.h"

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace mchain {

// The root over `leaves` (package ids, in block order). O(n) hashes, O(n) memory.
Hash256 merkle_root(std::span<const Hash256> leaves);

// The audit path PATH(index, D[tree_size]) of RFC 6962 §2.1.1: the sibling subtree hashes
// from the leaf up to the root, bottom-up.
struct MerkleProof {
  // A tree over at most 2^64 - 1 leaves is at most 64 levels deep.
  static constexpr std::size_t kMaxPathLength = 64;

  std::uint64_t index = 0;
  std::uint64_t tree_size = 0;
  std::vector<Hash256> path;

  // Canonical CBOR [1, index, tree_size, [hash: bytes(32), ...]].
  Bytes encode() const;
  // Checks the form only (version, sizes, at most 64 hashes, nothing trailing); whether the
  // proof proves anything is verify_merkle_proof's business.
  static Result<MerkleProof> decode(ByteView encoded);

  bool operator==(const MerkleProof&) const = default;
};

// The proof that leaves[index] is in merkle_root(leaves). Fails if index >= leaves.size().
Result<MerkleProof> merkle_proof(std::span<const Hash256> leaves, std::uint64_t index);

// True iff `proof` shows that package id `leaf` is the leaf at proof.index of a tree of
// proof.tree_size leaves whose root is `root` (RFC 9162 §2.1.3.2). False for index >=
// tree_size (so for tree_size 0), a path of the wrong length for (index, tree_size), or any
// wrong hash. Needs no store: a light client can run it on a proof and a block header.
//
// The root does not commit to the leaf count (RFC 6962 hashes no size), so where two sizes
// give the leaf the same position and sibling shape (e.g. index 0 of 5 and of 6 leaves), a
// proof relabelled with the other size still verifies. Callers must take tree_size from the
// same trusted source as the root (the block's package count) and compare it with
// proof.tree_size; this function cannot.
bool verify_merkle_proof(const Hash256& leaf, const MerkleProof& proof, const Hash256& root);

// The building blocks, exposed for known-answer tests with RFC 6962 / CT vectors, whose leaves
// are arbitrary byte strings rather than 32-byte ids. Not part of the block format's API.
namespace detail {

Hash256 merkle_leaf_hash(ByteView leaf_data);
Hash256 merkle_node_hash(const Hash256& left, const Hash256& right);
// MTH over leaves that are already hashed with merkle_leaf_hash.
Hash256 merkle_root_of_leaf_hashes(std::span<const Hash256> leaf_hashes);
// PATH(index, D[n]) over already hashed leaves. Requires index < leaf_hashes.size().
std::vector<Hash256> merkle_path_of_leaf_hashes(std::span<const Hash256> leaf_hashes,
                                                std::uint64_t index);
// The root implied by an audit path for a leaf hash, or nullopt if the path cannot be one for
// (index, tree_size): RFC 9162 §2.1.3.2 steps 1-5 without the final comparison.
std::optional<Hash256> merkle_root_from_path(const Hash256& leaf_hash, std::uint64_t index,
                                             std::uint64_t tree_size,
                                             std::span<const Hash256> path);

}  // namespace detail

}  // namespace mchain
