#include "chain/store/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "chain/crypto/hash.h"
#include "chain/package/signature_cache.h"
#include "store_invariants.h"
#include "store_test_util.h"
#include "test_world.h"

namespace mchain {
namespace {

namespace fs = std::filesystem;
using testing::kT0;
using testing::must;

Hash256 h256(std::string_view text) { return crypto::sha256(as_bytes(text)); }

class StoreTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const fs::path& dir : dirs_) fs::remove_all(dir);
  }

  // A fresh directory under the test's temporary directory, removed in TearDown.
  fs::path temp_dir() {
    std::string pattern = (fs::path(::testing::TempDir()) / "store_test.XXXXXX").string();
    const char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    dirs_.emplace_back(pattern);
    return dirs_.back();
  }

  // Non-crash tests skip fsync: it changes nothing they observe and costs most of their time.
  static StoreOptions fast() {
    StoreOptions options;
    options.sync = false;
    return options;
  }

  std::unique_ptr<Store> open(const fs::path& dir) {
    auto store = Store::open(dir, fast());
    EXPECT_TRUE(store) << store.error().message;
    return store ? *std::move(store) : nullptr;
  }

  std::unique_ptr<Store> fresh() { return open(temp_dir()); }

  SemiFinishedBlock semi(std::vector<Package> packages, BlockType type = BlockType::data) {
    ++round_;
    return must(testing::make_semi(type, round_, kT0 + 1000 + round_, h256("previous"),
                                   std::move(packages), w.node1,
                                   {{"node-1", &w.node1}, {"node-2", &w.node2}}));
  }

  // A data block of `n` fresh data packages.
  SemiFinishedBlock data_block(std::size_t n = 2) {
    std::vector<Package> packages;
    for (std::size_t i = 0; i < n; ++i) packages.push_back(w.data(kT0 + 500 + ++data_time_));
    return semi(std::move(packages));
  }

  static Block mine(const SemiFinishedBlock& body, const Hash256& previous, std::uint64_t height,
                    std::uint8_t diff = 5, std::uint64_t nonce_hi = 0) {
    return testing::mine_block(body, previous, height, diff, kT0 + 2000 + height, nonce_hi);
  }

  testing::World w;

 private:
  std::vector<fs::path> dirs_;
  std::uint64_t round_ = 0;
  std::uint64_t data_time_ = 0;
};

TEST_F(StoreTest, WorkArithmetic) {
  EXPECT_EQ(Work::of_block(0).big_endian()[31], 1);
  EXPECT_EQ(Work::of_block(9).big_endian()[30], 2);
  EXPECT_EQ(Work::of_block(255).big_endian()[0], 0x80);
  Work w = Work::of_block(8);
  w += Work::of_block(8);
  EXPECT_EQ(w, Work::of_block(9));
  EXPECT_LT(Work::of_block(9), w += Work::of_block(0));
  Work big = Work::of_block(255);
  big += Work::of_block(255);  // 2^256 saturates instead of wrapping to zero
  EXPECT_GT(big, Work::of_block(255));
  EXPECT_EQ(Work::from_big_endian(Work::of_block(77).big_endian()), Work::of_block(77));
}

TEST_F(StoreTest, ConfirmAndReadBack) {
  auto store = fresh();
  SemiFinishedBlock b = data_block(3);
  const Hash256 hash = b.hash();
  EXPECT_FALSE(store->is_confirmed(hash));
  ASSERT_TRUE(store->confirm(b));
  EXPECT_TRUE(store->is_confirmed(hash));
  auto back = store->semi_finished(hash);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->encode(), b.encode());
  EXPECT_EQ(store->mining_queue(), std::vector{hash});
  EXPECT_EQ(store->confirmed(), std::vector{hash});
  for (std::uint32_t i = 0; i < 3; ++i) {
    const Package& p = b.candidate.packages[i];
    auto where = store->find_package(p.id());
    ASSERT_TRUE(where);
    EXPECT_EQ(where->package_id, p.id());
    EXPECT_EQ(where->semi_finished, hash);
    EXPECT_EQ(where->index, i);
    EXPECT_EQ(where->timestamp, p.header().timestamp);
    EXPECT_TRUE(store->has_package(p.id()));
  }
  EXPECT_FALSE(store->has_package(h256("nothing")));
  EXPECT_FALSE(store->find_package(h256("nothing")));
  EXPECT_FALSE(store->semi_finished(h256("nothing")));
  EXPECT_FALSE(store->tip());
}

TEST_F(StoreTest, ConfirmIsIdempotent) {
  auto store = fresh();
  SemiFinishedBlock a = data_block();
  SemiFinishedBlock b = data_block();
  ASSERT_TRUE(store->confirm(a));
  ASSERT_TRUE(store->confirm(b));
  ASSERT_TRUE(store->confirm(a));
  EXPECT_EQ(store->confirmed(), (std::vector{a.hash(), b.hash()}));
  EXPECT_EQ(store->mining_queue(), (std::vector{a.hash(), b.hash()}));
}

TEST_F(StoreTest, PackageConfirmedTwiceIsRefused) {
  auto store = fresh();
  SemiFinishedBlock a = data_block(2);
  ASSERT_TRUE(store->confirm(a));
  const Package fresh_package = w.data(kT0 + 900);
  SemiFinishedBlock b = semi({fresh_package, a.candidate.packages[1]});
  auto refused = store->confirm(b);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("already confirmed in block"), std::string::npos)
      << refused.error().message;
  // Nothing of b was written.
  EXPECT_FALSE(store->is_confirmed(b.hash()));
  EXPECT_FALSE(store->has_package(fresh_package.id()));
  EXPECT_EQ(store->mining_queue(), std::vector{a.hash()});
  EXPECT_EQ(store->find_package(a.candidate.packages[1].id())->semi_finished, a.hash());

  SemiFinishedBlock twice = semi({fresh_package, fresh_package});
  auto repeated = store->confirm(twice);
  ASSERT_FALSE(repeated);
  EXPECT_NE(repeated.error().message.find("appears twice"), std::string::npos);
  EXPECT_FALSE(store->has_package(fresh_package.id()));
}

TEST_F(StoreTest, ConfirmEnforcesLimits) {
  StoreOptions options = fast();
  options.limits.max_packages = 2;
  auto store = must(Store::open(temp_dir(), options));
  auto refused = store->confirm(data_block(3));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("exceeds the limit of 2"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(store->confirmed().empty());
}

TEST_F(StoreTest, AppendMainChain) {
  auto store = fresh();
  std::vector<SemiFinishedBlock> bodies;
  for (int i = 0; i < 3; ++i) {
    bodies.push_back(data_block());
    ASSERT_TRUE(store->confirm(bodies.back()));
  }
  EXPECT_EQ(store->mining_queue().size(), 3u);

  Hash256 previous{};
  std::vector<Hash256> hashes;
  for (std::uint64_t height = 0; height < 3; ++height) {
    Block b = mine(bodies[height], previous, height);
    auto appended = store->append(b);
    ASSERT_TRUE(appended) << appended.error().message;
    EXPECT_TRUE(appended->new_tip);
    EXPECT_TRUE(appended->requeued.empty());
    EXPECT_EQ(appended->dequeued, std::vector{bodies[height].hash()});
    previous = b.hash();
    hashes.push_back(previous);
    EXPECT_EQ(store->mining_queue().size(), 2 - height);
    auto tip = store->tip();
    ASSERT_TRUE(tip);
    EXPECT_EQ(tip->hash, previous);
    EXPECT_EQ(tip->height, height);
  }
  Work total;
  for (int i = 0; i < 3; ++i) total += Work::of_block(5);
  EXPECT_EQ(store->tip()->work, total);
  for (std::uint64_t height = 0; height < 3; ++height) {
    EXPECT_EQ(store->main_chain_at(height), hashes[height]);
    EXPECT_EQ(store->mined_in(bodies[height].hash()), hashes[height]);
    EXPECT_EQ(store->blocks_at(height), std::vector{hashes[height]});
    EXPECT_TRUE(store->has_block(hashes[height]));
    auto block = store->block(hashes[height]);
    ASSERT_TRUE(block) << block.error().message;
    EXPECT_EQ(block->encode(),
              mine(bodies[height], height ? hashes[height - 1] : Hash256{}, height).encode());
  }
  EXPECT_FALSE(store->main_chain_at(3));
  EXPECT_FALSE(store->block(h256("nothing")));
  EXPECT_TRUE(store->mining_queue().empty());

  // A known block is a no-op.
  auto again = store->append(mine(bodies[1], hashes[0], 1));
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->new_tip);
  EXPECT_EQ(store->tip()->hash, hashes[2]);
  testing::check_store_invariants(*store);
}

TEST_F(StoreTest, AppendErrors) {
  auto store = fresh();
  SemiFinishedBlock a = data_block();
  SemiFinishedBlock b = data_block();
  SemiFinishedBlock unconfirmed = data_block();
  ASSERT_TRUE(store->confirm(a));
  ASSERT_TRUE(store->confirm(b));
  auto error_of = [&](const Block& block) {
    auto r = store->append(block);
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().message;
  };

  EXPECT_NE(error_of(mine(a, h256("nowhere"), 1)).find("unknown parent"), std::string::npos);
  EXPECT_NE(error_of(mine(unconfirmed, {}, 0)).find("is not confirmed"), std::string::npos);
  EXPECT_NE(error_of(mine(a, {}, 1)).find("without a parent"), std::string::npos);
  Block broken = mine(a, {}, 0);
  broken.header.merkle_root = h256("wrong");
  EXPECT_NE(error_of(broken).find("Merkle root"), std::string::npos);
  Block weak = mine(a, {}, 0, 12);
  while (pow::meets_difficulty(weak.hash(), 0, 12)) ++weak.header.nonce_lo;
  EXPECT_NE(error_of(weak).find("difficulty"), std::string::npos);

  const Block genesis = mine(a, {}, 0);
  ASSERT_TRUE(store->append(genesis));
  EXPECT_NE(error_of(mine(b, genesis.hash(), 2)).find("expected 1"), std::string::npos);
  // a is mined at height 0 of this branch: mining it again at height 1 is refused...
  EXPECT_NE(error_of(mine(a, genesis.hash(), 1)).find("already mined"), std::string::npos);
  // The same checks where the branch is not the main chain, through 'W' below the fork...
  const Block side_genesis = mine(b, {}, 0, 5, 1);
  ASSERT_TRUE(store->append(side_genesis));
  const Block side_1 = mine(a, side_genesis.hash(), 1, 7);
  ASSERT_TRUE(store->append(side_1));
  ASSERT_EQ(store->tip()->hash, side_1.hash());
  EXPECT_NE(error_of(mine(b, side_1.hash(), 2)).find("already mined"), std::string::npos);
  EXPECT_NE(error_of(mine(a, side_1.hash(), 2)).find("already mined"), std::string::npos);
  // ...and through side blocks: genesis (body a) and g1 (body b) are off the main chain now.
  const Block g1 = mine(b, genesis.hash(), 1);
  auto side = store->append(g1);
  ASSERT_TRUE(side) << side.error().message;
  EXPECT_FALSE(side->new_tip);
  EXPECT_NE(error_of(mine(a, g1.hash(), 2)).find("already mined"), std::string::npos);
  EXPECT_NE(error_of(mine(b, g1.hash(), 2)).find("already mined"), std::string::npos);
  testing::check_store_invariants(*store);
}

// Two branches from a common ancestor overtake each other; the queue follows and no
// confirmed package is ever lost.
TEST_F(StoreTest, ForkChoiceMovesTheTipAndTheQueue) {
  auto store = fresh();
  std::vector<SemiFinishedBlock> b;
  std::vector<Hash256> id;
  for (int i = 0; i < 6; ++i) {
    b.push_back(data_block());
    id.push_back(b.back().hash());
    ASSERT_TRUE(store->confirm(b.back()));
  }
  const Block g = mine(b[0], {}, 0, 6);
  const Block m1 = mine(b[1], g.hash(), 1, 6);
  const Block m2 = mine(b[2], m1.hash(), 2, 6);
  for (const Block* block : {&g, &m1, &m2}) ASSERT_TRUE(store->append(*block));
  EXPECT_EQ(store->mining_queue(), (std::vector{id[3], id[4], id[5]}));

  // A side branch from g may mine b[2] again: it is not in its own ancestry.
  const Block s1 = mine(b[2], g.hash(), 1, 6);
  auto r = store->append(s1);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->new_tip);
  EXPECT_EQ(store->tip()->hash, m2.hash());
  EXPECT_EQ(store->mining_queue(), (std::vector{id[3], id[4], id[5]}));
  testing::check_store_invariants(*store);

  // 64 + 64 + 128 > 3 * 64: the side branch wins.
  const Block s2 = mine(b[4], s1.hash(), 2, 7);
  r = store->append(s2);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->new_tip);
  EXPECT_EQ(r->requeued, std::vector{id[1]});
  EXPECT_EQ(r->dequeued, std::vector{id[4]});
  EXPECT_EQ(store->tip()->hash, s2.hash());
  EXPECT_EQ(store->main_chain_at(1), s1.hash());
  EXPECT_EQ(store->main_chain_at(2), s2.hash());
  EXPECT_EQ(store->mined_in(id[2]), s1.hash());
  EXPECT_FALSE(store->mined_in(id[1]));
  EXPECT_EQ(store->mining_queue(), (std::vector{id[1], id[3], id[5]}));
  testing::check_store_invariants(*store);

  // The old branch grows longer than the side branch: back again, over three heights.
  const Block m3 = mine(b[3], m2.hash(), 3, 7);
  r = store->append(m3);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->new_tip);
  EXPECT_EQ(r->requeued, std::vector{id[4]});
  EXPECT_EQ(r->dequeued, (std::vector{id[1], id[3]}));
  EXPECT_EQ(store->tip()->hash, m3.hash());
  EXPECT_EQ(store->tip()->height, 3u);
  EXPECT_EQ(store->mined_in(id[2]), m2.hash());
  EXPECT_EQ(store->mining_queue(), (std::vector{id[4], id[5]}));
  auto census = testing::check_store_invariants(*store);
  EXPECT_EQ(census.blocks, 6u);
  EXPECT_EQ(census.confirmed, 6u);
  EXPECT_EQ(census.queued, 2u);

  // A competing genesis with more work (512 > 320) replaces the whole chain.
  const Block other = mine(b[5], {}, 0, 9);
  r = store->append(other);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->new_tip);
  EXPECT_EQ(r->requeued, (std::vector{id[0], id[1], id[2], id[3]}));
  EXPECT_EQ(r->dequeued, std::vector{id[5]});
  EXPECT_EQ(store->mining_queue(), (std::vector{id[0], id[1], id[2], id[3], id[4]}));
  EXPECT_FALSE(store->main_chain_at(1));
  testing::check_store_invariants(*store);
}

TEST_F(StoreTest, EqualWorkLowerHashWinsInAnyOrder) {
  auto first = fresh();
  auto second = fresh();
  std::vector<SemiFinishedBlock> b;
  for (int i = 0; i < 3; ++i) {
    b.push_back(data_block());
    ASSERT_TRUE(first->confirm(b.back()));
    ASSERT_TRUE(second->confirm(b.back()));
  }
  const Block g = mine(b[0], {}, 0, 6);
  const Block x = mine(b[1], g.hash(), 1, 6);
  const Block y = mine(b[2], g.hash(), 1, 6);
  const Block& lower = x.hash() < y.hash() ? x : y;
  const Block& higher = x.hash() < y.hash() ? y : x;
  for (const Block* block : {&g, &x, &y}) ASSERT_TRUE(first->append(*block));
  for (const Block* block : {&g, &y, &x}) ASSERT_TRUE(second->append(*block));
  EXPECT_EQ(first->tip()->hash, lower.hash());
  EXPECT_EQ(second->tip()->hash, lower.hash());
  EXPECT_EQ(first->mining_queue(), std::vector{higher.header.semi_finished});
  EXPECT_EQ(second->mining_queue(), std::vector{higher.header.semi_finished});

  // The same body mined twice on one parent: two blocks, equal work, same rule.
  const Block z1 = mine(higher.body, lower.hash(), 2, 6, 1);
  const Block z2 = mine(higher.body, lower.hash(), 2, 6, 2);
  ASSERT_NE(z1.hash(), z2.hash());
  for (const Block* block : {&z1, &z2}) ASSERT_TRUE(first->append(*block));
  for (const Block* block : {&z2, &z1}) ASSERT_TRUE(second->append(*block));
  EXPECT_EQ(first->tip()->hash, std::min(z1.hash(), z2.hash()));
  EXPECT_EQ(second->tip()->hash, std::min(z1.hash(), z2.hash()));
  EXPECT_TRUE(first->mining_queue().empty());
  EXPECT_TRUE(second->mining_queue().empty());
  testing::check_store_invariants(*first);
  testing::check_store_invariants(*second);
}

TEST_F(StoreTest, PersistsAcrossReopen) {
  const fs::path dir = temp_dir();
  SemiFinishedBlock a = data_block();
  SemiFinishedBlock b = data_block();
  SemiFinishedBlock c = data_block();
  Hash256 tip;
  {
    auto store = open(dir);
    ASSERT_TRUE(store->add_genesis_node("node-1", w.node1.public_key(), kT0));
    ASSERT_TRUE(store->confirm(a));
    ASSERT_TRUE(store->confirm(b));
    Block g = mine(a, {}, 0);
    ASSERT_TRUE(store->append(g));
    tip = g.hash();
  }
  auto store = open(dir);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->tip()->hash, tip);
  EXPECT_EQ(store->mining_queue(), std::vector{b.hash()});
  EXPECT_EQ(store->node_key("node-1", kT0), w.node1.public_key());
  EXPECT_TRUE(store->has_package(a.candidate.packages[0].id()));
  // The write sequence continues: c is confirmed after b.
  ASSERT_TRUE(store->confirm(c));
  EXPECT_EQ(store->mining_queue(), (std::vector{b.hash(), c.hash()}));
  EXPECT_EQ(store->confirmed(), (std::vector{a.hash(), b.hash(), c.hash()}));
  testing::check_store_invariants(*store);
}

TEST_F(StoreTest, VmPackagesByTime) {
  auto store = fresh();
  std::vector<Package> packages;
  for (TimeUs t : {kT0 + 300, kT0 + 100, kT0 + 200, kT0 + 200}) packages.push_back(w.data(t));
  SemiFinishedBlock block = semi(packages);
  ASSERT_TRUE(store->confirm(block));
  auto times = [&](TimeUs from, TimeUs to) {
    std::vector<TimeUs> out;
    for (const PackageLocation& p : store->vm_packages(w.vm, from, to)) {
      EXPECT_EQ(p.semi_finished, block.hash());
      EXPECT_EQ(block.candidate.packages[p.index].id(), p.package_id);
      out.push_back(p.timestamp);
    }
    return out;
  };
  EXPECT_EQ(times(0, UINT64_MAX),
            (std::vector<TimeUs>{kT0 + 100, kT0 + 200, kT0 + 200, kT0 + 300}));
  EXPECT_EQ(times(kT0 + 100, kT0 + 300), (std::vector<TimeUs>{kT0 + 100, kT0 + 200, kT0 + 200}));
  EXPECT_EQ(times(kT0 + 101, kT0 + 201), (std::vector<TimeUs>{kT0 + 200, kT0 + 200}));
  EXPECT_EQ(times(kT0 + 300, kT0 + 301), std::vector<TimeUs>{kT0 + 300});
  EXPECT_TRUE(times(kT0 + 300, kT0 + 300).empty());
  EXPECT_TRUE(times(kT0 + 301, kT0 + 100).empty());
  EXPECT_TRUE(
      store->vm_packages(*Uuid::parse("00000000-0000-4000-8000-000000000001"), 0, UINT64_MAX)
          .empty());
}

TEST_F(StoreTest, GenesisNodeIsIdempotent) {
  auto store = fresh();
  ASSERT_TRUE(store->add_genesis_node("node-1", w.node1.public_key(), kT0));
  ASSERT_TRUE(store->add_genesis_node("node-1", w.node1.public_key(), kT0));
  EXPECT_FALSE(store->node_key("node-1", kT0 - 1));
  EXPECT_EQ(store->node_key("node-1", kT0), w.node1.public_key());
  EXPECT_EQ(store->node_key("node-1", UINT64_MAX), w.node1.public_key());
  EXPECT_FALSE(store->node_key("node-2", kT0));
  EXPECT_FALSE(store->add_genesis_node("bad id", w.node1.public_key(), kT0));
}

TEST_F(StoreTest, OpenErrors) {
  const fs::path dir = temp_dir();
  {
    auto store = open(dir);
    auto again = Store::open(dir);
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message.find("locked by another process (LOCK)"), std::string::npos)
        << again.error().message;
  }
  const fs::path garbage = temp_dir();
  std::ofstream(garbage / "notes.txt") << "not a database\n";
  auto not_store = Store::open(garbage);
  ASSERT_FALSE(not_store);
  EXPECT_NE(not_store.error().message.find("not a store"), std::string::npos)
      << not_store.error().message;

  auto file = Store::open(garbage / "notes.txt");
  ASSERT_FALSE(file);
  EXPECT_NE(file.error().message.find("not a directory"), std::string::npos);

  StoreOptions no_create;
  no_create.create_if_missing = false;
  EXPECT_FALSE(Store::open(garbage / "missing", no_create));

  std::ofstream(dir / "CURRENT", std::ios::trunc) << "garbage";
  auto corrupt = Store::open(dir);
  ASSERT_FALSE(corrupt);
  EXPECT_NE(corrupt.error().message.find("corrupt"), std::string::npos) << corrupt.error().message;
}

// ---- the view

class StoreView : public StoreTest {
 protected:
  // Confirms `packages` as one block in the store and applies them to the MemoryView in the
  // same order, then compares the views: answers the store cached before must not survive.
  void both(std::vector<Package> packages, BlockType type = BlockType::policy) {
    for (const Package& p : packages) {
      ASSERT_TRUE(w.view.apply(p));
      ids_.push_back(p.id());
      times_.push_back(p.header().timestamp);
    }
    auto confirmed = store_->confirm(semi(std::move(packages), type));
    ASSERT_TRUE(confirmed) << confirmed.error().message;
    expect_same_answers(*store_);
  }

  void genesis(const std::string& node, const crypto::PrivateKey& key, TimeUs since) {
    w.view.add_node(node, key.public_key(), since);
    ASSERT_TRUE(store_->add_genesis_node(node, key.public_key(), since));
    times_.push_back(since);
    expect_same_answers(*store_);
  }

  Package membership(MembershipAction action, const std::string& subject,
                     const crypto::PrivateKey& key, TimeUs t,
                     const crypto::PrivateKey* self = nullptr) {
    return must(make_membership_package({Uuid{}, self ? subject : "", "node-1", t},
                                        MembershipRecord{action, subject, key.public_key()},
                                        {nullptr, self, &w.node1}));
  }

  Package binding(const Uuid& vm, BindingEvent event, const std::string& node, TimeUs t) {
    return must(make_binding_package({vm, "alice", node, t}, PolicyRef{}, event,
                                     w.vm_key.public_key(), w.signers(node)));
  }

  Package policy(const Uuid& vm, std::uint64_t version, TimeUs t) {
    PolicyRecord record{vm,
                        version,
                        AbeScheme::kp_abe_gpsw,
                        {"v" + std::to_string(version)},
                        "v" + std::to_string(version)};
    return must(make_policy_package({vm, "alice", "node-1", t}, record, w.signers("node-1")));
  }

  // Every question at every interesting time, to both views.
  void expect_same_answers(const Store& store) {
    std::vector<TimeUs> times = {0, 1, kT0 - 1, UINT64_MAX - 1, UINT64_MAX};
    for (TimeUs t : times_) {
      for (TimeUs d : {t - 1, t, t + 1}) times.push_back(d);
    }
    const Uuid unknown = *Uuid::parse("00000000-0000-4000-8000-0000000000ff");
    for (TimeUs t : times) {
      SCOPED_TRACE("t = " + std::to_string(t));
      for (const char* node : {"node-1", "node-2", "node-3", "node-4", "nobody"}) {
        EXPECT_EQ(store.node_key(node, t), w.view.node_key(node, t)) << node;
      }
      for (const char* user : {"alice", "bob", "carol", "nobody"}) {
        EXPECT_EQ(store.user_key(user, t), w.view.user_key(user, t)) << user;
      }
      for (const Uuid& vm : {w.vm, vm2_, unknown}) {
        auto mine = store.vm_at(vm, t);
        auto theirs = w.view.vm_at(vm, t);
        ASSERT_EQ(mine.has_value(), theirs.has_value()) << vm.to_string();
        if (!mine) continue;
        EXPECT_EQ(mine->key, theirs->key);
        EXPECT_EQ(mine->owner, theirs->owner);
        EXPECT_EQ(mine->host, theirs->host);
        ASSERT_EQ(mine->policy.has_value(), theirs->policy.has_value());
        if (mine->policy) {
          EXPECT_EQ(mine->policy->ref, theirs->policy->ref);
          EXPECT_EQ(mine->policy->since, theirs->policy->since);
        }
      }
    }
    for (const Uuid& vm : {w.vm, vm2_, unknown}) {
      for (std::uint64_t version = 0; version < 5; ++version) {
        auto mine = store.policy_version(vm, version);
        auto theirs = w.view.policy_version(vm, version);
        ASSERT_EQ(mine.has_value(), theirs.has_value()) << version;
        if (!mine) continue;
        EXPECT_EQ(mine->ref, theirs->ref);
        EXPECT_EQ(mine->since, theirs->since);
      }
    }
    for (const Hash256& id : ids_) {
      EXPECT_TRUE(store.has_package(id));
      EXPECT_TRUE(w.view.has_package(id));
    }
    EXPECT_EQ(store.has_package(h256("x")), w.view.has_package(h256("x")));
  }

  // A store at dir_ holding the World's own history, rebuilt: package ids cover no signature,
  // so these are the packages its constructor applied (its view already holds them and the
  // genesis nodes).
  void open_world(const StoreOptions& options) {
    dir_ = temp_dir();
    auto opened = Store::open(dir_, options);
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = *std::move(opened);
    ASSERT_TRUE(store_->add_genesis_node("node-1", w.node1.public_key(), kT0));
    ASSERT_TRUE(store_->add_genesis_node("node-2", w.node2.public_key(), kT0));
    times_ = {kT0, kT0 + 1, kT0 + 2, kT0 + 10, kT0 + 20};
    std::vector<Package> setup = {
        membership(MembershipAction::register_user, "alice", w.alice, kT0 + 1, &w.alice),
        membership(MembershipAction::register_user, "bob", w.bob, kT0 + 2, &w.bob),
        must(make_binding_package({w.vm, "alice", "node-1", kT0 + 10}, PolicyRef{},
                                  BindingEvent::started, w.vm_key.public_key(),
                                  w.signers("node-1"))),
        must(make_policy_package({w.vm, "alice", "node-1", kT0 + 20}, w.policy1,
                                 w.signers("node-1")))};
    for (const Package& p : setup) {
      ASSERT_TRUE(w.view.has_package(p.id()));
      ids_.push_back(p.id());
    }
    ASSERT_TRUE(store_->confirm(semi(setup, BlockType::policy)));
  }

  // Every kind of history change, asked about before and after each one.
  void answers_like_memory_view(const StoreOptions& options) {
    ASSERT_NO_FATAL_FAILURE(open_world(options));
    expect_same_answers(*store_);

    const crypto::PrivateKey node3 = testing::make_key();
    const crypto::PrivateKey node4 = testing::make_key();
    const crypto::PrivateKey carol = testing::make_key();
    const crypto::PrivateKey bob2 = testing::make_key(crypto::SigAlg::ed25519);
    both({w.data(kT0 + 30)}, BlockType::data);
    both({membership(MembershipAction::add_node, "node-3", node3, kT0 + 40),
          binding(w.vm, BindingEvent::migrated, "node-2", kT0 + 50), policy(w.vm, 2, kT0 + 60)});
    both({membership(MembershipAction::remove_node, "node-2", w.node2, kT0 + 70),
          membership(MembershipAction::suspend_node, "node-3", node3, kT0 + 75),
          binding(w.vm, BindingEvent::stopped, "node-1", kT0 + 80)});
    both({binding(w.vm, BindingEvent::undefined, "node-1", kT0 + 90),
          binding(vm2_, BindingEvent::defined, "node-1", kT0 + 90), policy(vm2_, 1, kT0 + 95)});
    // Equal times within one block: the later package wins (host node-2, not node-1).
    both({binding(vm2_, BindingEvent::started, "node-1", kT0 + 110),
          binding(vm2_, BindingEvent::migrated, "node-2", kT0 + 110)});
    // Equal times across blocks: the later confirmation wins (node-3 removed at kT0 + 120)...
    both({membership(MembershipAction::rejoin_node, "node-3", node3, kT0 + 120)});
    both({membership(MembershipAction::remove_node, "node-3", node3, kT0 + 120)});
    // ...and a genesis node added after a package with the same time wins over it.
    both({membership(MembershipAction::remove_node, "node-4", node4, kT0 + 130)});
    genesis("node-4", node4, kT0 + 130);
    both({membership(MembershipAction::register_user, "bob", bob2, kT0 + 140, &bob2),
          membership(MembershipAction::register_user, "carol", carol, kT0 + 140, &carol)});
    both({policy(vm2_, 2, kT0 + 150), policy(vm2_, 3, kT0 + 150)});
    both({policy(w.vm, 3, kT0 + 160), policy(w.vm, 3, kT0 + 155)});  // a version restated

    EXPECT_FALSE(store_->node_key("node-3", kT0 + 120));
    EXPECT_EQ(store_->node_key("node-4", kT0 + 130), node4.public_key());
    EXPECT_EQ(store_->vm_at(vm2_, kT0 + 110)->host, "node-2");
    EXPECT_EQ(store_->user_key("bob", kT0 + 140), bob2.public_key());
    EXPECT_EQ(store_->policy_version(w.vm, 3)->since, kT0 + 155);
    expect_same_answers(*store_);

    store_.reset();
    auto reopened = Store::open(dir_, options);
    ASSERT_TRUE(reopened) << reopened.error().message;
    store_ = *std::move(reopened);
    expect_same_answers(*store_);
  }

  std::unique_ptr<Store> store_;
  fs::path dir_;
  Uuid vm2_ = *Uuid::parse("11111111-2222-4333-8444-555555555555");
  std::vector<Hash256> ids_;
  std::vector<TimeUs> times_;
};

TEST_F(StoreView, AnswersLikeMemoryView) { answers_like_memory_view(fast()); }

TEST_F(StoreView, AnswersLikeMemoryViewWithoutHistoryCache) {
  StoreOptions options = fast();
  options.history_cache_entries = 0;
  answers_like_memory_view(options);
}

// One entry for many subjects: every look-up evicts another's answer.
TEST_F(StoreView, AnswersLikeMemoryViewWithATinyHistoryCache) {
  StoreOptions options = fast();
  options.history_cache_entries = 1;
  answers_like_memory_view(options);
}

// Answers cached before a write are never served after it: a revoked key, a migration, a new
// policy or key and a new genesis node are all seen by the first look-up after the write,
// including for times the cached answers covered.
TEST_F(StoreView, HistoryCacheSeesEveryWriteAtOnce) {
  ASSERT_NO_FATAL_FAILURE(open_world(fast()));
  const TimeUs later = kT0 + 1000;
  const crypto::PrivateKey node5 = testing::make_key();
  const crypto::PrivateKey bob2 = testing::make_key();
  // Asked twice: the second answer comes from the cache.
  for (int twice = 0; twice < 2; ++twice) {
    EXPECT_EQ(store_->node_key("node-2", later), w.node2.public_key());
    EXPECT_EQ(store_->user_key("bob", later), w.bob.public_key());
    EXPECT_FALSE(store_->node_key("node-5", later));
    auto vm = store_->vm_at(w.vm, later);
    ASSERT_TRUE(vm);
    EXPECT_EQ(vm->host, "node-1");
    EXPECT_EQ(vm->policy->ref, w.policy1.ref());
  }
  // A package of node-1 validates against the store, with a signature cache warmed by it.
  SignatureCache signatures;
  const ValidationOptions options{false, 0, 0, &signatures};
  EXPECT_TRUE(validate(w.data(later), *store_, options).ok());

  both({membership(MembershipAction::remove_node, "node-2", w.node2, kT0 + 500),
        binding(w.vm, BindingEvent::migrated, "node-2", kT0 + 600), policy(w.vm, 2, kT0 + 700),
        membership(MembershipAction::register_user, "bob", bob2, kT0 + 800, &bob2)});
  EXPECT_FALSE(store_->node_key("node-2", later));
  EXPECT_EQ(store_->node_key("node-2", kT0 + 499), w.node2.public_key());
  EXPECT_EQ(store_->user_key("bob", later), bob2.public_key());
  EXPECT_EQ(store_->user_key("bob", kT0 + 799), w.bob.public_key());
  auto vm = store_->vm_at(w.vm, later);
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->host, "node-2");
  EXPECT_EQ(vm->policy->ref.version, 2u);
  EXPECT_EQ(store_->vm_at(w.vm, kT0 + 650)->policy->ref, w.policy1.ref());
  EXPECT_EQ(store_->vm_at(w.vm, kT0 + 599)->host, "node-1");
  // node-1 no longer hosts the VM: a new package of its is refused though every signature
  // check of the same kind is cached, and the next look-up of the old time still passes.
  EXPECT_EQ(validate(w.data(later + 1), *store_, options).verdict,
            Verdict::node_not_hosting_vm_at_t);
  EXPECT_EQ(validate(w.data(kT0 + 550), *store_, options).verdict, Verdict::ok);

  genesis("node-5", node5, kT0 + 900);
  EXPECT_EQ(store_->node_key("node-5", later), node5.public_key());
  EXPECT_FALSE(store_->node_key("node-5", kT0 + 899));

  // Mature blocks change no history, and answers stay right across them too.
  const SemiFinishedBlock body = semi({w.data(kT0 + 950)}, BlockType::data);
  ASSERT_TRUE(store_->confirm(body));
  ASSERT_TRUE(store_->append(mine(body, Hash256{}, 0)));
  EXPECT_FALSE(store_->node_key("node-2", later));
  EXPECT_EQ(store_->vm_at(w.vm, later)->host, "node-2");
}

// Readers on several threads ask while blocks are confirmed: each sees a VM's host and policy
// from one state of the store, and every block confirmed before it asked.
TEST_F(StoreView, HistoryCacheUnderConcurrentReadersAndAWriter) {
  ASSERT_NO_FATAL_FAILURE(open_world(fast()));
  constexpr std::uint64_t kBlocks = 24;
  // Block k moves the VM to node-2 on even k and back to node-1 on odd k, under policy
  // v(k + 2), both at one time: from v, readers know which host goes with it.
  std::vector<SemiFinishedBlock> blocks;
  for (std::uint64_t k = 0; k < kBlocks; ++k) {
    const TimeUs t = kT0 + 100 + k;
    const std::string host = k % 2 == 0 ? "node-2" : "node-1";
    blocks.push_back(semi({binding(w.vm, BindingEvent::migrated, host, t), policy(w.vm, k + 2, t)},
                          BlockType::policy));
  }
  auto host_under = [](std::uint64_t version) {
    return version == 1 || version % 2 == 1 ? "node-1" : "node-2";
  };
  std::atomic<std::uint64_t> confirmed{0};
  std::atomic<std::uint64_t> looks{0};
  std::atomic<int> stopped{0};
  std::vector<std::jthread> readers;  // asked to stop and joined on every way out
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&](std::stop_token stop) {
      while (!stop.stop_requested() && !HasFailure()) {
        const std::uint64_t before = confirmed.load(std::memory_order_acquire);
        auto vm = store_->vm_at(w.vm, UINT64_MAX);
        if (!vm || !vm->policy) {
          ADD_FAILURE() << "the VM or its policy is missing";
          break;
        }
        const std::uint64_t version = vm->policy->ref.version;
        EXPECT_GE(version, before + 1) << "an answer from before a confirm that returned";
        EXPECT_EQ(vm->host, host_under(version)) << "v" << version;
        EXPECT_EQ(store_->user_key("alice", UINT64_MAX), w.alice.public_key());
        EXPECT_EQ(store_->node_key("node-1", UINT64_MAX), w.node1.public_key());
        looks.fetch_add(1, std::memory_order_relaxed);
      }
      stopped.fetch_add(1);
    });
  }
  for (std::uint64_t k = 0; k < kBlocks; ++k) {
    ASSERT_TRUE(store_->confirm(blocks[k]));
    confirmed.store(k + 1, std::memory_order_release);
    // Let the readers fill the cache from this state before the next write.
    const std::uint64_t seen = looks.load(std::memory_order_relaxed);
    while (looks.load(std::memory_order_relaxed) < seen + 3 && stopped.load() == 0) {
      std::this_thread::yield();
    }
  }
  readers.clear();
  auto vm = store_->vm_at(w.vm, UINT64_MAX);
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->policy->ref.version, kBlocks + 1);
  EXPECT_EQ(vm->host, host_under(kBlocks + 1));
}

}  // namespace
}  // namespace mchain
