#include "chain/block/merkle.h"

#include "chain/crypto/hash.h"
#include "chain/encoding/cbor.h"

#include <algorithm>
#include <string>

namespace mchain {

namespace {

constexpr std::uint64_t kProofVersion = 1;
constexpr std::uint8_t kLeafPrefix = 0x00;
constexpr std::uint8_t kNodePrefix = 0x01;

// The leaf hash of a package id, on the stack: merkle_root hashes one per package.
Hash256 id_leaf_hash(const Hash256& id) {
  std::array<std::uint8_t, 1 + 32> buf;
  buf[0] = kLeafPrefix;
  std::copy(id.begin(), id.end(), buf.begin() + 1);
  return crypto::sha256(buf);
}

// Replaces the first `size` nodes of a level by the next level up and returns its size:
// neighbours (0,1), (2,3), ... become their parent, and an odd last node moves up unchanged
// (never paired with a copy of itself). Repeated to one node, this is RFC 6962's MTH: every
// subtree MTH splits into is a power-of-two-aligned run of leaves (the right edge excepted),
// which is exactly what this pairing builds. Parents are written at i/2 <= i, behind the
// reads, so one buffer serves every level.
std::size_t reduce_level(std::vector<Hash256>& level, std::size_t size) {
  std::size_t out = 0;
  for (std::size_t i = 0; i + 1 < size; i += 2) {
    level[out++] = detail::merkle_node_hash(level[i], level[i + 1]);
  }
  if (size % 2 == 1) level[out++] = level[size - 1];
  return out;
}

Hash256 root_in_place(std::vector<Hash256>& level) {
  if (level.empty()) return crypto::sha256({});
  std::size_t size = level.size();
  while (size > 1) size = reduce_level(level, size);
  return level[0];
}

}  // namespace

namespace detail {

Hash256 merkle_leaf_hash(ByteView leaf_data) {
  const std::uint8_t prefix = kLeafPrefix;
  crypto::Sha256 h;
  h.update(ByteView(&prefix, 1)).update(leaf_data);
  return h.finish();
}

Hash256 merkle_node_hash(const Hash256& left, const Hash256& right) {
  std::array<std::uint8_t, 1 + 32 + 32> buf;
  buf[0] = kNodePrefix;
  std::copy(left.begin(), left.end(), buf.begin() + 1);
  std::copy(right.begin(), right.end(), buf.begin() + 1 + 32);
  return crypto::sha256(buf);
}

Hash256 merkle_root_of_leaf_hashes(std::span<const Hash256> leaf_hashes) {
  std::vector<Hash256> level(leaf_hashes.begin(), leaf_hashes.end());
  return root_in_place(level);
}

std::vector<Hash256> merkle_path_of_leaf_hashes(std::span<const Hash256> leaf_hashes,
                                                std::uint64_t index) {
  std::vector<Hash256> path;
  if (index >= leaf_hashes.size()) return path;
  std::vector<Hash256> level(leaf_hashes.begin(), leaf_hashes.end());
  std::size_t size = level.size();
  auto i = static_cast<std::size_t>(index);
  // At each level the sibling of the node on the path is its neighbour i ^ 1; a node without
  // one (the odd last) moves up alone and contributes nothing, as in PATH's recursion.
  while (size > 1) {
    if (std::size_t sibling = i ^ 1; sibling < size) path.push_back(level[sibling]);
    size = reduce_level(level, size);
    i >>= 1;
  }
  return path;
}

std::optional<Hash256> merkle_root_from_path(const Hash256& leaf_hash, std::uint64_t index,
                                             std::uint64_t tree_size,
                                             std::span<const Hash256> path) {
  // fn is the node's position on its level, sn the last position there. An odd fn is a right
  // child: its sibling is on the left. An even fn == sn is the last node of its level and has
  // no right sibling, so it moves up alone until it is a right child (the inner shift skips
  // those levels), and again the sibling is on the left. Any other fn pairs with p on the
  // right. A path that is too long or too short leaves sn != 0 at the wrong time.
  if (index >= tree_size) return std::nullopt;
  std::uint64_t fn = index;
  std::uint64_t sn = tree_size - 1;
  Hash256 r = leaf_hash;
  for (const Hash256& p : path) {
    if (sn == 0) return std::nullopt;  // already at the root: the path is too long
    if ((fn & 1) == 1 || fn == sn) {
      r = merkle_node_hash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = merkle_node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return std::nullopt;  // below the root: the path is too short
  return r;
}

}  // namespace detail

Hash256 merkle_root(std::span<const Hash256> leaves) {
  std::vector<Hash256> level(leaves.size());
  std::transform(leaves.begin(), leaves.end(), level.begin(), id_leaf_hash);
  return root_in_place(level);
}

Result<MerkleProof> merkle_proof(std::span<const Hash256> leaves, std::uint64_t index) {
  if (index >= leaves.size()) {
    return fail("merkle proof: index " + std::to_string(index) + " out of range for " +
                std::to_string(leaves.size()) + " leaves");
  }
  std::vector<Hash256> hashes(leaves.size());
  std::transform(leaves.begin(), leaves.end(), hashes.begin(), id_leaf_hash);
  return MerkleProof{index, leaves.size(), detail::merkle_path_of_leaf_hashes(hashes, index)};
}

bool verify_merkle_proof(const Hash256& leaf, const MerkleProof& proof, const Hash256& root) {
  auto computed =
      detail::merkle_root_from_path(id_leaf_hash(leaf), proof.index, proof.tree_size, proof.path);
  return computed && *computed == root;
}

Bytes MerkleProof::encode() const {
  cbor::Writer w;
  w.array(4).uint(kProofVersion).uint(index).uint(tree_size).array(path.size());
  for (const Hash256& h : path) w.bytes(h);
  return w.take();
}

Result<MerkleProof> MerkleProof::decode(ByteView encoded) {
  return cbor::decode(encoded, "merkle_proof", [](cbor::Reader& r) {
    r.array_exact("merkle_proof", 4);
    const std::size_t at = r.offset();
    if (std::uint64_t v = r.uint("merkle_proof.version"); v != kProofVersion) {
      throw cbor::DecodeError("merkle_proof.version",
                              "unknown merkle proof version " + std::to_string(v), at);
    }
    MerkleProof proof;
    proof.index = r.uint("merkle_proof.index");
    proof.tree_size = r.uint("merkle_proof.tree_size");
    const std::size_t count = r.array("merkle_proof.path", kMaxPathLength);
    proof.path.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      proof.path.push_back(r.fixed_bytes<32>("merkle_proof.path"));
    }
    return proof;
  });
}

}  // namespace mchain
