#include "chain/block/block.h"

#include <gtest/gtest.h>

#include "chain/crypto/hash.h"
#include "chain/pow/pow.h"
#include "golden.h"
#include "test_world.h"

namespace mchain {
namespace {

using testing::kT0;
using testing::must;

// A world with its data packages gathered into a candidate by node-1.
class Blocks : public ::testing::Test {
 protected:
  testing::World w;

  Candidate candidate(std::size_t packages = 3) const {
    Candidate c{BlockType::data, "node-1", 5, kT0 + 1000, crypto::sha256(as_bytes("prev")), {}};
    for (std::size_t i = 0; i < packages; ++i) c.packages.push_back(w.data(kT0 + 100 + i));
    return c;
  }

  SemiFinishedBlock semi(std::size_t packages = 3) const {
    SemiFinishedBlock s = must(SemiFinishedBlock::propose(candidate(packages), w.node1));
    EXPECT_TRUE(s.add_mark("node-2", w.node2));
    EXPECT_TRUE(s.add_mark("node-1", w.node1));
    return s;
  }

  // Mines by plain search: at diff 8 about 256 tries.
  static Block mine(SemiFinishedBlock body, std::uint8_t diff = 8) {
    BlockHeader h;
    h.type = body.candidate.type;
    h.diff = diff;
    h.height = 1;
    h.timestamp = kT0 + 2000;
    h.previous = crypto::sha256(as_bytes("genesis"));
    h.merkle_root = body.candidate.merkle_root();
    h.semi_finished = body.hash();
    while (!pow::meets_difficulty(h.hash(), static_cast<std::uint8_t>(h.type), diff)) ++h.nonce_lo;
    return Block{h, std::move(body)};
  }
};

TEST_F(Blocks, HeaderLayoutIsFixed) {
  BlockHeader h;
  h.type = BlockType::policy;
  h.diff = 15;
  h.height = 0x0102030405060708;
  h.timestamp = kT0;
  h.previous.fill(0xaa);
  h.merkle_root.fill(0xbb);
  h.semi_finished.fill(0xcc);
  h.nonce_hi = 3;
  h.nonce_lo = 0x1122334455667788;
  auto bytes = h.encode();
  EXPECT_EQ(to_hex(ByteView(bytes).first(24)),
            "00000001"
            "01"
            "0f"
            "0000"
            "0102030405060708"
            "00060a24181e4000");
  EXPECT_EQ(bytes[24], 0xaa);
  EXPECT_EQ(bytes[56], 0xbb);
  EXPECT_EQ(bytes[88], 0xcc);
  EXPECT_EQ(to_hex(ByteView(bytes).subspan(120)),
            "0000000000000003"
            "1122334455667788");
  auto back = BlockHeader::decode(bytes);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->encode(), bytes);
  EXPECT_EQ(back->hash(), crypto::sha256(bytes));
}

TEST_F(Blocks, HeaderDecodeRejects) {
  auto bytes = BlockHeader{}.encode();
  EXPECT_FALSE(BlockHeader::decode(ByteView(bytes).first(135)));
  auto wrong_version = bytes;
  wrong_version[3] = 2;
  EXPECT_NE(BlockHeader::decode(wrong_version).error().message.find("unknown header version 2"),
            std::string::npos);
  auto wrong_type = bytes;
  wrong_type[4] = 2;
  EXPECT_FALSE(BlockHeader::decode(wrong_type));
  auto reserved = bytes;
  reserved[7] = 1;
  EXPECT_FALSE(BlockHeader::decode(reserved));
}

TEST_F(Blocks, SemiFinishedRoundTrip) {
  SemiFinishedBlock s = semi();
  ASSERT_EQ(s.marks.size(), 2u);
  EXPECT_EQ(s.marks[0].node, "node-1");  // canonical order, whatever the signing order
  Bytes encoded = s.encode();
  auto back = SemiFinishedBlock::decode(encoded);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->encode(), encoded);
  EXPECT_EQ(back->hash(), s.hash());
  EXPECT_EQ(back->candidate.hash(), s.candidate.hash());
  EXPECT_EQ(back->candidate.packages.size(), 3u);
  EXPECT_EQ(back->candidate.packages[1].id(), s.candidate.packages[1].id());
  // Decoding can hash the candidate from the bytes it read: the same hash, no re-encoding.
  Hash256 candidate_hash{};
  auto hashed = SemiFinishedBlock::decode(encoded, {}, candidate_hash);
  ASSERT_TRUE(hashed) << hashed.error().message;
  EXPECT_EQ(candidate_hash, s.candidate.hash());
  encoded.pop_back();  // cut short: no block, and no hash claimed for it
  Hash256 untouched{};
  EXPECT_FALSE(SemiFinishedBlock::decode(encoded, {}, untouched));
  EXPECT_EQ(untouched, Hash256{});
}

TEST_F(Blocks, SignaturesAreDomainSeparated) {
  SemiFinishedBlock s = semi();
  const Hash256 c = s.candidate.hash();
  EXPECT_TRUE(w.node1.public_key().verify(candidate_signing_message(c), s.leader_signature));
  EXPECT_FALSE(w.node1.public_key().verify(valid_mark_signing_message(c), s.leader_signature));
  EXPECT_TRUE(w.node2.public_key().verify(valid_mark_signing_message(c), s.marks[1].signature));
  EXPECT_FALSE(w.node2.public_key().verify(candidate_signing_message(c), s.marks[1].signature));
}

TEST_F(Blocks, MarksAreOnePerNode) {
  SemiFinishedBlock s = semi();
  ASSERT_TRUE(s.add_mark("node-2", w.node2));
  EXPECT_EQ(s.marks.size(), 2u);
  EXPECT_FALSE(s.add_mark("node 2", w.node2));
}

TEST_F(Blocks, DecodeRejectsUnsortedOrRepeatedMarks) {
  SemiFinishedBlock s = semi();
  std::swap(s.marks[0], s.marks[1]);
  auto unsorted = SemiFinishedBlock::decode(s.encode());
  ASSERT_FALSE(unsorted);
  EXPECT_NE(unsorted.error().message.find("semi_finished.marks: not sorted"), std::string::npos);
  s.marks[0] = s.marks[1];
  EXPECT_FALSE(SemiFinishedBlock::decode(s.encode()));
}

TEST_F(Blocks, DecodeNamesTheBrokenPackage) {
  SemiFinishedBlock s = semi(2);
  Bytes encoded = s.encode();
  // The second package's header version sits right after its own array heads; find it by
  // re-encoding the package and patching its version byte in place.
  Bytes second = s.candidate.packages[1].encode();
  auto at = std::search(encoded.begin(), encoded.end(), second.begin(), second.end());
  ASSERT_NE(at, encoded.end());
  *(at + 3) = 0x02;  // [[[version ...: 82 82 88 01 -> 02
  auto broken = SemiFinishedBlock::decode(encoded);
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message.find("candidate.packages[1]"), std::string::npos)
      << broken.error().message;
  EXPECT_NE(broken.error().message.find("package.header.version"), std::string::npos);
}

TEST_F(Blocks, DecodeEnforcesLimits) {
  BlockLimits limits;
  limits.max_packages = 2;
  auto r = SemiFinishedBlock::decode(semi(3).encode(), limits);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("candidate.packages: array of 3 items exceeds the limit of 2"),
            std::string::npos);
  limits = BlockLimits{};
  limits.max_block_bytes = 100;
  EXPECT_FALSE(SemiFinishedBlock::decode(semi(3).encode(), limits));
}

TEST_F(Blocks, MinedBlockRoundTripsAndChecks) {
  Block b = mine(semi());
  EXPECT_TRUE(check_block_structure(b));
  Bytes encoded = b.encode();
  auto back = Block::decode(encoded);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->encode(), encoded);
  EXPECT_EQ(back->hash(), b.hash());
  EXPECT_TRUE(check_block_structure(*back));
  // The first `diff` bits of a data block's hash are zero.
  EXPECT_EQ(b.hash()[0], 0);
}

TEST_F(Blocks, StructureCheckCatchesEveryMismatch) {
  const Block good = mine(semi());
  auto expect_broken = [](Block b, std::string_view why) {
    Status s = check_block_structure(b);
    ASSERT_FALSE(s) << why;
    EXPECT_NE(s.error().message.find(why), std::string::npos) << s.error().message;
  };
  Block b = good;
  b.header.merkle_root[0] ^= 1;
  expect_broken(b, "");  // PoW or Merkle: either way rejected
  b = good;
  b.body.candidate.packages.pop_back();
  expect_broken(b, "Merkle root");
  b = good;
  b.body.marks.pop_back();
  expect_broken(b, "semi-finished hash");
  b = good;
  b.header.type = BlockType::policy;
  expect_broken(b, "header type");
  b = good;
  b.header.nonce_lo += 1;  // almost surely no longer meets diff 8
  if (!pow::meets_difficulty(b.header.hash(), 0, 8)) expect_broken(b, "difficulty");
  b = good;
  b.header.diff = 0;
  expect_broken(b, "difficulty 0");
}

TEST_F(Blocks, TheMinerMinesTheBlockHeaderLayout) {
  SemiFinishedBlock body = semi();
  BlockHeader h{BlockType::data, 12, 1, kT0, {}, body.candidate.merkle_root(), body.hash(), 0, 0};
  auto slice = must(pow::cooperative_slice(1, 3));
  slice.lo_end = 1u << 24;
  std::atomic<bool> stop{false};
  auto found = pow::Miner(2).mine(h.encode(), h.diff, 0, slice, stop);
  ASSERT_TRUE(found);
  h.nonce_hi = found->nonce_hi;
  h.nonce_lo = found->nonce_lo;
  EXPECT_EQ(h.hash(), found->hash);
  EXPECT_TRUE(check_block_structure(Block{h, body}));
}

TEST_F(Blocks, PackagesMustFitTheBlockType) {
  SemiFinishedBlock s = must(SemiFinishedBlock::propose(candidate(1), w.node1));
  s.candidate.packages.push_back(must(
      make_policy_package({w.vm, "alice", "node-1", kT0 + 500}, w.policy1, w.signers("node-1"))));
  Status status = check_block_structure(mine(s));
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().message.find("policy package"), std::string::npos);
  SemiFinishedBlock twice = must(SemiFinishedBlock::propose(candidate(1), w.node1));
  twice.candidate.packages.push_back(twice.candidate.packages[0]);
  Status dup = check_block_structure(mine(twice));
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("appears twice"), std::string::npos);
}

TEST_F(Blocks, PolicyBlocksStartWithAOneBit) {
  SemiFinishedBlock s = must(SemiFinishedBlock::propose(
      Candidate{BlockType::policy, "node-1", 6, kT0 + 600, {}, {}}, w.node1));
  Block b = mine(s, 9);
  EXPECT_TRUE(check_block_structure(b));
  EXPECT_EQ(b.hash()[0], 0x80);  // 1, then 8 zero bits (7 here, 1 in the next byte)
  EXPECT_EQ(b.hash()[1] & 0x80, 0);
}

TEST_F(Blocks, GoldenEncoding) {
  auto leader = testing::ed25519_from_seed(
      "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  Candidate c{BlockType::policy, "node-1", 42, kT0, crypto::sha256(as_bytes("prev")), {}};
  SemiFinishedBlock s = must(SemiFinishedBlock::propose(c, leader));
  ASSERT_TRUE(s.add_mark("node-1", leader));
  testing::GoldenFile golden("block-v1.txt");
  golden.check("candidate", c.encode());
  golden.check("candidate_hash", c.hash());
  golden.check("semi_finished", s.encode());
  BlockHeader h{BlockType::policy, 16, 9, kT0 + 1, c.previous, c.merkle_root(), s.hash(), 1, 2};
  golden.check("header", h.encode());
  golden.check("block", Block{h, s}.encode());
}

}  // namespace
}  // namespace mchain
