// verify_chain on real stores: an intact chain verifies; every kind of damage, whether it came
// in through the store's API (forged signatures, a wrong link) or behind its back through
// LevelDB (flipped bytes), is reported at the right block with a reason.
#include "chain/store/verify.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "store_tamper.h"
#include "store_test_util.h"
#include "temp_dir.h"
#include "test_world.h"

namespace mchain {
namespace {

namespace fs = std::filesystem;
using testing::kT0;
using testing::must;

class VerifyChain : public ::testing::Test {
 protected:
  void SetUp() override {
    reopen();
    ASSERT_TRUE(store_->add_genesis_node("node-1", w.node1.public_key(), kT0));
    ASSERT_TRUE(store_->add_genesis_node("node-2", w.node2.public_key(), kT0));
  }
  void TearDown() override { store_.reset(); }

  void reopen() {
    store_.reset();
    StoreOptions options;
    options.sync = false;
    store_ = must(Store::open(dir_, options));
  }

  // Confirms a block on the last confirmed one and mines it on the tip.
  Hash256 add(BlockType type, std::vector<Package> packages,
              std::vector<std::pair<std::string, const crypto::Signer*>> markers = {},
              bool mine = true, std::optional<Hash256> previous = std::nullopt) {
    if (markers.empty()) markers = {{"node-1", &w.node1}, {"node-2", &w.node2}};
    SemiFinishedBlock semi =
        must(testing::make_semi(type, 0, kT0 + 1000 + ++round_,
                                previous.value_or(store_->last_confirmed().value_or(Hash256{})),
                                std::move(packages), w.node1, markers));
    EXPECT_TRUE(store_->confirm(semi));
    if (!mine) return semi.hash();
    auto tip = store_->tip();
    Block block = testing::mine_block(semi, tip ? tip->hash : Hash256{}, tip ? tip->height + 1 : 0,
                                      5, kT0 + 2000 + round_);
    EXPECT_TRUE(store_->append(block));
    return block.hash();
  }

  // Three blocks: the setup (policy block), three data packages, one data package.
  void build() {
    PackageSigners all{&w.vm_key, &w.alice, &w.node1};
    blocks_.push_back(
        add(BlockType::policy,
            {must(make_membership_package(
                 {Uuid{}, "alice", "node-1", kT0 + 1},
                 MembershipRecord{MembershipAction::register_user, "alice", w.alice.public_key()},
                 {nullptr, &w.alice, &w.node1})),
             must(make_binding_package({w.vm, "alice", "node-1", kT0 + 10}, PolicyRef{},
                                       BindingEvent::started, w.vm_key.public_key(), all)),
             must(make_policy_package({w.vm, "alice", "node-1", kT0 + 20}, w.policy1, all))}));
    blocks_.push_back(
        add(BlockType::data, {w.data(kT0 + 100), w.data(kT0 + 101), w.data(kT0 + 102)}));
    blocks_.push_back(add(BlockType::data, {w.data(kT0 + 103)}));
  }

  ChainReport verify() { return must(verify_chain(*store_)); }

  testing::World w;
  testing::TempDir tmp_{"verify_test"};
  const fs::path dir_ = tmp_.path();
  std::unique_ptr<Store> store_;
  std::vector<Hash256> blocks_;
  std::uint64_t round_ = 0;
};

TEST_F(VerifyChain, AnEmptyStoreVerifies) {
  ChainReport report = verify();
  EXPECT_TRUE(report.ok());
  EXPECT_FALSE(report.tip);
  EXPECT_EQ(report.blocks_checked, 0u);
}

TEST_F(VerifyChain, AnIntactChainVerifies) {
  build();
  ChainReport report = verify();
  ASSERT_TRUE(report.ok()) << report.first_broken->describe();
  ASSERT_TRUE(report.tip);
  EXPECT_EQ(report.tip->height, 2u);
  EXPECT_EQ(report.tip->hash, blocks_.back());
  EXPECT_EQ(report.blocks_checked, 3u);
  EXPECT_EQ(report.packages_checked, 7u);
  EXPECT_EQ(report.semi_finished_checked, 3u);
}

TEST_F(VerifyChain, AConfirmedButUnminedBlockIsCheckedToo) {
  build();
  add(BlockType::data, {w.data(kT0 + 104)}, {}, /*mine=*/false);
  ChainReport report = verify();
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.semi_finished_checked, 4u);
  EXPECT_EQ(report.packages_checked, 8u);
}

TEST_F(VerifyChain, AForgedPackageSignatureIsNamed) {
  build();
  // The store takes what consensus hands it; a block with a package signed by a key that
  // is not node-1's gets in only if consensus is subverted, and verify must notice.
  auto rogue = testing::make_key();
  Package forged =
      must(make_data_package({w.vm, "alice", "node-1", kT0 + 200}, w.policy1.ref(), w.data_key,
                             as_bytes("x"), {&w.vm_key, &w.alice, &rogue}));
  const Hash256 bad = add(BlockType::data, {w.data(kT0 + 199), forged});
  ChainReport report = verify();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.first_broken->height, 3u);
  EXPECT_EQ(report.first_broken->hash, bad);
  EXPECT_NE(report.first_broken->reason.find("package 1"), std::string::npos);
  EXPECT_NE(report.first_broken->reason.find("node signature does not verify"), std::string::npos)
      << report.first_broken->reason;
  EXPECT_EQ(report.blocks_checked, 3u);
  EXPECT_NE(report.first_broken->describe().find("height 3 block " + to_hex(bad)),
            std::string::npos);
}

TEST_F(VerifyChain, AMarkByANonMemberIsNamed) {
  build();
  auto stranger = testing::make_key();
  const Hash256 bad =
      add(BlockType::data, {w.data(kT0 + 200)}, {{"node-1", &w.node1}, {"node-9", &stranger}});
  ChainReport report = verify();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.first_broken->hash, bad);
  EXPECT_NE(report.first_broken->reason.find("'node-9', not a member"), std::string::npos)
      << report.first_broken->reason;
}

TEST_F(VerifyChain, AForgedMarkIsNamed) {
  build();
  const Hash256 bad =
      add(BlockType::data, {w.data(kT0 + 200)}, {{"node-1", &w.node1}, {"node-2", &w.node1}});
  ChainReport report = verify();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.first_broken->hash, bad);
  EXPECT_NE(report.first_broken->reason.find("valid mark of 'node-2' does not verify"),
            std::string::npos)
      << report.first_broken->reason;
}

TEST_F(VerifyChain, ABrokenLayerOneLinkIsNamed) {
  build();
  const SemiFinishedBlock first = must(store_->semi_finished(store_->confirmed().front()));
  // Names the first semi-finished block as previous instead of the last one.
  const Hash256 bad = add(BlockType::data, {w.data(kT0 + 200)}, {}, true, first.hash());
  ChainReport report = verify();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.first_broken->height, 3u);
  EXPECT_EQ(report.first_broken->hash, bad);
  EXPECT_NE(report.first_broken->reason.find("as previous"), std::string::npos)
      << report.first_broken->reason;
}

TEST_F(VerifyChain, AnUnminedBrokenBlockIsNamedByItsSemiFinishedHash) {
  build();
  auto rogue = testing::make_key();
  Package forged = must(make_data_package({w.vm, "alice", "node-1", kT0 + 200}, w.policy1.ref(),
                                          w.data_key, as_bytes("x"), {&rogue, &w.alice, &w.node1}));
  const Hash256 semi = add(BlockType::data, {forged}, {}, /*mine=*/false);
  ChainReport report = verify();
  ASSERT_FALSE(report.ok());
  EXPECT_FALSE(report.first_broken->height);
  EXPECT_EQ(report.first_broken->hash, semi);
  EXPECT_NE(report.first_broken->reason.find("vm signature does not verify"), std::string::npos);
  EXPECT_NE(report.first_broken->describe().find("not on the main chain"), std::string::npos);
  EXPECT_EQ(report.blocks_checked, 3u);  // the main chain itself is intact
}

TEST_F(VerifyChain, ABodyByteFlippedOnDiskIsNamed) {
  build();
  const SemiFinishedBlock body =
      must(store_->semi_finished(must(store_->block(blocks_[1])).header.semi_finished));
  const Bytes& signature = body.candidate.packages[2].signature(Role::node)->bytes;
  store_.reset();
  // Flip a byte of r in the third package's node signature: the body still decodes.
  auto before = testing::edit_store_entry(
      dir_, testing::store_key('S', body.hash()), [&](std::string& value) {
        const std::size_t at = testing::find_bytes(value, signature);
        ASSERT_NE(at, std::string::npos);
        value[at + 1] = static_cast<char>(value[at + 1] ^ 0x01);
      });
  ASSERT_TRUE(before) << before.error().message;
  reopen();
  ChainReport report = verify();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.first_broken->height, 1u);
  EXPECT_EQ(report.first_broken->hash, blocks_[1]);
  EXPECT_NE(report.first_broken->reason.find("semi-finished hash does not match"),
            std::string::npos)
      << report.first_broken->reason;
  EXPECT_EQ(report.blocks_checked, 1u);
}

TEST_F(VerifyChain, AHeaderByteFlippedOnDiskIsNamed) {
  build();
  store_.reset();
  // Byte 23: the lowest byte of the header's timestamp.
  auto before = testing::edit_store_entry(dir_, testing::store_key('B', blocks_[1]),
                                          [](std::string& value) { value[23] ^= 0x01; });
  ASSERT_TRUE(before) << before.error().message;
  reopen();
  ChainReport report = verify();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.first_broken->height, 1u);
  EXPECT_EQ(report.first_broken->hash, blocks_[1]);
  EXPECT_NE(report.first_broken->reason.find("not the hash it is stored under"), std::string::npos)
      << report.first_broken->reason;
}

TEST_F(VerifyChain, AMissingMainChainEntryIsNamed) {
  build();
  store_.reset();
  {
    leveldb::DB* raw = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(leveldb::Options(), dir_.string(), &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    ASSERT_TRUE(db->Delete(leveldb::WriteOptions(), testing::store_key('M', 1)).ok());
  }
  reopen();
  ChainReport report = verify();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.first_broken->height, 1u);
  EXPECT_NE(report.first_broken->reason.find("no main-chain block"), std::string::npos);
}

}  // namespace
}  // namespace mchain
