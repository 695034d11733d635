#include "chain/block/merkle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "chain/crypto/hash.h"
#include "chain/encoding/cbor.h"
#include "test_util.h"

namespace mchain {
namespace {

using testing::hex;
using testing::hex_array;
using testing::must;

// ---- An independent reference: RFC 6962 §2.1 MTH and §2.1.1 PATH written as the RFC's
// recursion, over leaf hashes, hashing with crypto::sha256 directly.

std::uint64_t split_point(std::uint64_t n) {  // largest power of two < n, for n >= 2
  std::uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

Hash256 ref_node(const Hash256& left, const Hash256& right) {
  Bytes data{0x01};
  data.insert(data.end(), left.begin(), left.end());
  data.insert(data.end(), right.begin(), right.end());
  return crypto::sha256(data);
}

Hash256 ref_leaf(ByteView leaf_data) {
  Bytes data{0x00};
  data.insert(data.end(), leaf_data.begin(), leaf_data.end());
  return crypto::sha256(data);
}

Hash256 ref_mth(std::span<const Hash256> d) {
  if (d.empty()) return crypto::sha256({});
  if (d.size() == 1) return d[0];
  const std::uint64_t k = split_point(d.size());
  return ref_node(ref_mth(d.subspan(0, k)), ref_mth(d.subspan(k)));
}

// PATH(m, D[n]), bottom-up: the recursion's deeper elements come first.
std::vector<Hash256> ref_path(std::uint64_t m, std::span<const Hash256> d) {
  if (d.size() <= 1) return {};
  const std::uint64_t k = split_point(d.size());
  std::vector<Hash256> path;
  if (m < k) {
    path = ref_path(m, d.subspan(0, k));
    path.push_back(ref_mth(d.subspan(k)));
  } else {
    path = ref_path(m - k, d.subspan(k));
    path.push_back(ref_mth(d.subspan(0, k)));
  }
  return path;
}

// The leaf's position as the tree's shape sees it: for each path element, bottom-up, whether
// it is the left sibling. A proof's hashes can only combine to the same root under another
// (index, tree_size) if this shape is the same.
std::vector<bool> ref_shape(std::uint64_t m, std::uint64_t n) {
  if (n <= 1) return {};
  const std::uint64_t k = split_point(n);
  std::vector<bool> shape = m < k ? ref_shape(m, k) : ref_shape(m - k, n - k);
  shape.push_back(m >= k);
  return shape;
}

// Distinct package ids, as a block would hold.
std::vector<Hash256> make_ids(std::size_t n) {
  std::vector<Hash256> ids;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string seed = "package-" + std::to_string(i);
    ids.push_back(crypto::sha256(as_bytes(seed)));
  }
  return ids;
}

std::vector<Hash256> leaf_hashes_of(std::span<const Hash256> ids) {
  std::vector<Hash256> out;
  for (const Hash256& id : ids) out.push_back(ref_leaf(id));
  return out;
}

// ---- Known answers: the Certificate Transparency reference tree.
//
// Data copied from google/certificate-transparency, cpp/merkletree/merkle_tree_test.cc
// (kInputs, kSHA256EmptyTreeHash, kSHA256Roots, kSHA256Paths; the same vectors appear in
// certificate-transparency-go and transparency-dev/merkle). kSHA256Paths counts leaves from 1;
// the indexes below are 0-based.

const char* const kCtInputs[8] = {
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
};

constexpr const char* kCtEmptyRoot =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const char* const kCtRoots[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct CtPath {
  std::uint64_t index;
  std::uint64_t tree_size;
  std::vector<const char*> path;
};

const CtPath kCtPaths[] = {
    {0, 1, {}},
    {0,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5,
     8,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1,
     5,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

std::vector<Hash256> ct_leaf_hashes() {
  std::vector<Hash256> out;
  for (const char* input : kCtInputs) out.push_back(detail::merkle_leaf_hash(hex(input)));
  return out;
}

TEST(MerkleKat, CtRoots) {
  const std::vector<Hash256> leaves = ct_leaf_hashes();
  EXPECT_EQ(to_hex(detail::merkle_root_of_leaf_hashes({})), kCtEmptyRoot);
  EXPECT_EQ(to_hex(merkle_root({})), kCtEmptyRoot);
  for (std::size_t n = 1; n <= 8; ++n) {
    std::span<const Hash256> prefix(leaves.data(), n);
    EXPECT_EQ(to_hex(detail::merkle_root_of_leaf_hashes(prefix)), kCtRoots[n - 1]) << n;
    EXPECT_EQ(to_hex(ref_mth(prefix)), kCtRoots[n - 1]) << n;
  }
}

TEST(MerkleKat, CtAuditPaths) {
  const std::vector<Hash256> leaves = ct_leaf_hashes();
  for (const CtPath& v : kCtPaths) {
    SCOPED_TRACE(std::to_string(v.index) + " of " + std::to_string(v.tree_size));
    std::vector<Hash256> expected;
    for (const char* h : v.path) expected.push_back(hex_array<32>(h));
    std::span<const Hash256> tree(leaves.data(), v.tree_size);
    EXPECT_EQ(detail::merkle_path_of_leaf_hashes(tree, v.index), expected);
    auto root = detail::merkle_root_from_path(leaves[v.index], v.index, v.tree_size, expected);
    ASSERT_TRUE(root.has_value());
    EXPECT_EQ(to_hex(*root), kCtRoots[v.tree_size - 1]);
  }
}

// The leaf rule applied to a package id, against the hash computed by hand.
TEST(MerkleKat, SingleIdIsItsPrefixedHash) {
  const Hash256 id = make_ids(1)[0];
  Bytes data = hex("00");
  data.insert(data.end(), id.begin(), id.end());
  EXPECT_EQ(merkle_root(std::span(&id, 1)), crypto::sha256(data));
  EXPECT_NE(merkle_root(std::span(&id, 1)), id);
}

// ---- Every tree up to 70 leaves, every index.

constexpr std::size_t kMaxTree = 70;

TEST(MerkleProofs, MatchReferenceAndVerify) {
  const std::vector<Hash256> ids = make_ids(kMaxTree);
  const std::vector<Hash256> hashes = leaf_hashes_of(ids);
  for (std::size_t n = 1; n <= kMaxTree; ++n) {
    std::span<const Hash256> tree(ids.data(), n);
    std::span<const Hash256> tree_hashes(hashes.data(), n);
    const Hash256 root = merkle_root(tree);
    ASSERT_EQ(root, ref_mth(tree_hashes)) << n;
    for (std::uint64_t i = 0; i < n; ++i) {
      const MerkleProof proof = must(merkle_proof(tree, i));
      EXPECT_EQ(proof.index, i);
      EXPECT_EQ(proof.tree_size, n);
      EXPECT_EQ(proof.path, ref_path(i, tree_hashes)) << i << " of " << n;
      EXPECT_TRUE(verify_merkle_proof(ids[i], proof, root)) << i << " of " << n;
      // Another package, or the right package against another block's root.
      EXPECT_FALSE(verify_merkle_proof(ids[(i + 1) % kMaxTree], proof, root));
      if (n > 1) {
        EXPECT_FALSE(verify_merkle_proof(ids[i], proof, merkle_root(tree.first(n - 1))));
      }
    }
  }
}

TEST(MerkleProofs, IndexOutOfRange) {
  const std::vector<Hash256> ids = make_ids(5);
  EXPECT_FALSE(merkle_proof(ids, 5));
  EXPECT_FALSE(merkle_proof(ids, UINT64_MAX));
  EXPECT_FALSE(merkle_proof({}, 0));
}

TEST(MerkleProofs, TamperedPathElementsFail) {
  const std::vector<Hash256> ids = make_ids(kMaxTree);
  for (std::size_t n = 1; n <= kMaxTree; ++n) {
    std::span<const Hash256> tree(ids.data(), n);
    const Hash256 root = merkle_root(tree);
    for (std::uint64_t i = 0; i < n; ++i) {
      const MerkleProof proof = must(merkle_proof(tree, i));
      for (std::size_t e = 0; e < proof.path.size(); ++e) {
        // Every bit in small trees; in larger ones a bit of every byte, its position moving with
        // the byte, so that all eight positions are still hit (the full sweep costs seconds).
        for (std::size_t bit = 0; bit < 256; ++bit) {
          if (n > 16 && bit % 8 != (bit / 8) % 8) continue;
          MerkleProof bad = proof;
          bad.path[e][bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
          ASSERT_FALSE(verify_merkle_proof(ids[i], bad, root))
              << "element " << e << " bit " << bit << " of " << i << "/" << n;
        }
      }
    }
  }
}

TEST(MerkleProofs, WrongIndexFails) {
  const std::vector<Hash256> ids = make_ids(kMaxTree);
  for (std::size_t n = 1; n <= kMaxTree; ++n) {
    std::span<const Hash256> tree(ids.data(), n);
    const Hash256 root = merkle_root(tree);
    for (std::uint64_t i = 0; i < n; ++i) {
      const MerkleProof proof = must(merkle_proof(tree, i));
      // Every other position in the tree has another shape, so no other index verifies;
      // nor does one past the end.
      for (std::uint64_t j = 0; j <= n + 1; ++j) {
        if (j == i) continue;
        MerkleProof bad = proof;
        bad.index = j;
        ASSERT_FALSE(verify_merkle_proof(ids[i], bad, root)) << j << " for " << i << "/" << n;
      }
      MerkleProof bad = proof;
      bad.index = UINT64_MAX;
      EXPECT_FALSE(verify_merkle_proof(ids[i], bad, root));
    }
  }
}

TEST(MerkleProofs, WrongTreeSizeFailsUnlessTheShapeIsIdentical) {
  const std::vector<Hash256> ids = make_ids(kMaxTree);
  for (std::size_t n = 1; n <= kMaxTree; ++n) {
    std::span<const Hash256> tree(ids.data(), n);
    const Hash256 root = merkle_root(tree);
    for (std::uint64_t i = 0; i < n; ++i) {
      const MerkleProof proof = must(merkle_proof(tree, i));
      const std::vector<bool> shape = ref_shape(i, n);
      for (std::uint64_t size = 0; size <= 2 * kMaxTree + 2; ++size) {
        if (size == n) continue;
        MerkleProof relabelled = proof;
        relabelled.tree_size = size;
        // RFC 6962's root does not commit to the size (merkle.h): only a size under which
        // the leaf has the very same shape reproduces the root. Never twice or half the
        // size, never a size the index does not fit.
        const bool same_shape = i < size && ref_shape(i, size) == shape;
        ASSERT_EQ(verify_merkle_proof(ids[i], relabelled, root), same_shape)
            << "size " << size << " for " << i << "/" << n;
        if (size == 2 * n || 2 * size == n || size <= i) {
          ASSERT_FALSE(same_shape);
        }
      }
      MerkleProof bad = proof;
      bad.tree_size = UINT64_MAX;
      EXPECT_FALSE(verify_merkle_proof(ids[i], bad, root));
    }
  }
}

// The limitation WrongTreeSizeFailsUnlessTheShapeIsIdentical maps out, as one example: the
// first of 5 leaves sits where the first of 6 would, so the relabelled proof passes. This is
// why callers compare proof.tree_size with the block's own package count.
TEST(MerkleProofs, TreeSizeIsNotCommittedByTheRoot) {
  const std::vector<Hash256> ids = make_ids(5);
  const Hash256 root = merkle_root(ids);
  MerkleProof proof = must(merkle_proof(ids, 0));
  proof.tree_size = 6;
  EXPECT_TRUE(verify_merkle_proof(ids[0], proof, root));
}

TEST(MerkleProofs, WrongPathLengthFails) {
  const std::vector<Hash256> ids = make_ids(kMaxTree);
  const Hash256 zero{};
  for (std::size_t n = 1; n <= kMaxTree; ++n) {
    std::span<const Hash256> tree(ids.data(), n);
    const Hash256 root = merkle_root(tree);
    for (std::uint64_t i = 0; i < n; ++i) {
      const MerkleProof proof = must(merkle_proof(tree, i));
      auto rejects = [&](std::vector<Hash256> path) {
        MerkleProof bad = proof;
        bad.path = std::move(path);
        return !verify_merkle_proof(ids[i], bad, root);
      };
      const std::vector<Hash256>& p = proof.path;
      if (!p.empty()) {
        EXPECT_TRUE(rejects({p.begin(), p.end() - 1})) << i << "/" << n;
        EXPECT_TRUE(rejects({p.begin() + 1, p.end()})) << i << "/" << n;
        EXPECT_TRUE(rejects({})) << i << "/" << n;
      }
      for (const Hash256& extra : {zero, root, ids[i]}) {
        std::vector<Hash256> longer = p;
        longer.push_back(extra);
        EXPECT_TRUE(rejects(longer)) << i << "/" << n;
        longer.pop_back();
        longer.insert(longer.begin(), extra);
        EXPECT_TRUE(rejects(longer)) << i << "/" << n;
      }
      if (!p.empty()) {
        std::vector<Hash256> doubled = p;
        doubled.push_back(p.back());
        EXPECT_TRUE(rejects(doubled)) << i << "/" << n;
      }
    }
  }
}

TEST(MerkleProofs, DegenerateProofsFail) {
  const std::vector<Hash256> ids = make_ids(1);
  const Hash256 empty_root = merkle_root({});
  EXPECT_FALSE(verify_merkle_proof(ids[0], {0, 0, {}}, empty_root));
  EXPECT_FALSE(verify_merkle_proof(ids[0], {0, 0, {}}, merkle_root(ids)));
  EXPECT_FALSE(verify_merkle_proof(ids[0], {1, 1, {}}, merkle_root(ids)));
  EXPECT_FALSE(verify_merkle_proof(ids[0], {UINT64_MAX, UINT64_MAX, {}}, merkle_root(ids)));
  EXPECT_TRUE(verify_merkle_proof(ids[0], {0, 1, {}}, merkle_root(ids)));
  // The deepest tree there is: 64 hashes for the last leaf of 2^64 - 1, and no more.
  std::vector<Hash256> path(MerkleProof::kMaxPathLength);
  EXPECT_TRUE(detail::merkle_root_from_path(ids[0], 0, UINT64_MAX, path).has_value());
  path.push_back({});
  EXPECT_FALSE(detail::merkle_root_from_path(ids[0], 0, UINT64_MAX, path).has_value());
}

// ---- The attacks the hashing rule exists for.

// Second preimage: an inner node's value, offered as a package id of the tree one level up
// (whose leaves are that level's nodes), with an audit path that is correct for that tree.
// Only the leaf prefix stops it, and it does at every level and position.
TEST(MerkleSecurity, InnerNodeDoesNotPassAsLeaf) {
  const std::vector<Hash256> ids = make_ids(kMaxTree);
  for (std::size_t n = 2; n <= kMaxTree; ++n) {
    std::span<const Hash256> tree(ids.data(), n);
    const Hash256 root = merkle_root(tree);
    // Level 1 and above, built the way the RFC's recursion would see them as leaves.
    std::vector<Hash256> level = leaf_hashes_of(tree);
    while (level.size() > 1) {
      std::vector<Hash256> up;
      for (std::size_t j = 0; j + 1 < level.size(); j += 2) {
        up.push_back(ref_node(level[j], level[j + 1]));
      }
      if (level.size() % 2 == 1) up.push_back(level.back());
      level = std::move(up);
      ASSERT_EQ(ref_mth(level), root);
      for (std::uint64_t j = 0; j < level.size(); ++j) {
        const MerkleProof forged{j, level.size(), ref_path(j, level)};
        // Without the leaf prefix these would be valid proofs ...
        auto unprefixed = detail::merkle_root_from_path(level[j], j, level.size(), forged.path);
        ASSERT_TRUE(unprefixed.has_value());
        ASSERT_EQ(*unprefixed, root);
        // ... with it, none is.
        ASSERT_FALSE(verify_merkle_proof(level[j], forged, root))
            << "node " << j << " of " << level.size() << ", tree of " << n;
      }
    }
  }
}

// CVE-2012-2459: Bitcoin pairs an odd last node with itself, so [a, b, c] and [a, b, c, c]
// share a root and a block's transaction list can be padded without changing its hash.
TEST(MerkleSecurity, DuplicatingTheLastLeafChangesTheRoot) {
  const std::vector<Hash256> ids = make_ids(kMaxTree);
  for (std::size_t n = 1; n < kMaxTree; ++n) {
    std::vector<Hash256> padded(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n));
    const Hash256 root = merkle_root(padded);
    padded.push_back(padded.back());
    EXPECT_NE(merkle_root(padded), root) << n;
  }
}

TEST(MerkleSecurity, DistinctListsHaveDistinctRoots) {
  const std::vector<Hash256> ids = make_ids(kMaxTree);
  std::vector<Hash256> roots;
  for (std::size_t n = 0; n <= kMaxTree; ++n) roots.push_back(merkle_root({ids.data(), n}));
  std::vector<Hash256> swapped(ids.begin(), ids.begin() + 8);
  std::swap(swapped[3], swapped[4]);
  roots.push_back(merkle_root(swapped));
  std::sort(roots.begin(), roots.end());
  EXPECT_EQ(std::adjacent_find(roots.begin(), roots.end()), roots.end());
}

// ---- Encoding.

TEST(MerkleEncoding, RoundTrip) {
  const std::vector<Hash256> ids = make_ids(kMaxTree);
  for (std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{5}, kMaxTree}) {
    for (std::uint64_t i : {std::uint64_t{0}, std::uint64_t{n - 1}}) {
      const MerkleProof proof = must(merkle_proof({ids.data(), n}, i));
      const Bytes encoded = proof.encode();
      const MerkleProof back = must(MerkleProof::decode(encoded));
      EXPECT_EQ(back, proof);
      EXPECT_EQ(back.encode(), encoded);
      EXPECT_TRUE(verify_merkle_proof(ids[i], back, merkle_root({ids.data(), n})));
    }
  }
}

TEST(MerkleEncoding, ExactBytes) {
  const MerkleProof proof{2, 3, {hex_array<32>(kCtRoots[1])}};
  // [1, 2, 3, [h'fac5...']]: array(4), three small uints, array(1), bytes(32).
  EXPECT_EQ(to_hex(proof.encode()), std::string("84010203815820") + kCtRoots[1]);
  const MerkleProof big{UINT64_MAX - 1, UINT64_MAX, {}};
  EXPECT_EQ(to_hex(big.encode()), "84011bfffffffffffffffe1bffffffffffffffff80");
}

TEST(MerkleEncoding, DecodeErrors) {
  auto encode = [](std::uint64_t version, std::size_t entries, std::size_t hash_size) {
    cbor::Writer w;
    w.array(4).uint(version).uint(0).uint(1).array(entries);
    for (std::size_t i = 0; i < entries; ++i) w.bytes(Bytes(hash_size, 0xab));
    return w.take();
  };
  auto error_of = [](const Bytes& encoded) {
    auto r = MerkleProof::decode(encoded);
    return r ? std::string("(decoded)") : r.error().message;
  };
  ASSERT_TRUE(MerkleProof::decode(encode(1, 1, 32)));
  ASSERT_TRUE(MerkleProof::decode(encode(1, MerkleProof::kMaxPathLength, 32)));

  EXPECT_NE(error_of(encode(0, 1, 32)).find("merkle_proof.version"), std::string::npos);
  EXPECT_NE(error_of(encode(2, 1, 32)).find("merkle_proof.version"), std::string::npos);
  EXPECT_NE(error_of(encode(1, 1, 33)).find("merkle_proof.path"), std::string::npos);
  EXPECT_NE(error_of(encode(1, 1, 31)).find("merkle_proof.path"), std::string::npos);
  EXPECT_NE(error_of(encode(1, MerkleProof::kMaxPathLength + 1, 32)).find("merkle_proof.path"),
            std::string::npos);

  Bytes trailing = encode(1, 1, 32);
  trailing.push_back(0x00);
  EXPECT_FALSE(MerkleProof::decode(trailing));
  Bytes truncated = encode(1, 1, 32);
  truncated.pop_back();
  EXPECT_FALSE(MerkleProof::decode(truncated));

  // Not canonical: index 2 in a one-byte argument; three fields instead of four; a text path.
  EXPECT_FALSE(
      MerkleProof::decode(hex("8401180201"
                              "80")));
  EXPECT_FALSE(MerkleProof::decode(hex("83010001")));
  EXPECT_FALSE(MerkleProof::decode(hex("8401000160")));
  EXPECT_FALSE(MerkleProof::decode({}));
}

}  // namespace
}  // namespace mchain
