// Layer-1 consensus and layer-2 mining with real stores (LevelDB in temporary directories),
// nodes talking through the in-process transport: the same code path as the network.
#include "chain/node/consensus.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "chain/node/leader.h"
#include "chain/node/mining.h"
#include "temp_dir.h"
#include "test_world.h"

namespace mchain {
namespace {

using testing::kT0;
using testing::must;

struct Host {
  std::string id;
  crypto::PrivateKey key = testing::make_key();
  std::unique_ptr<Store> store;
  std::unique_ptr<ConsensusNode> node;
  std::vector<Hash256> confirmed;
  std::vector<Accusation> accusations;
};

class Cluster : public ::testing::Test {
 protected:
  void start(std::size_t hosts) {
    std::vector<std::string> pool;
    for (std::size_t i = 0; i < hosts; ++i) {
      hosts_.push_back(std::make_unique<Host>());
      hosts_.back()->id = "node-" + std::to_string(i + 1);
      pool.push_back(hosts_.back()->id);
    }
    for (auto& h : hosts_) {
      StoreOptions options;
      options.sync = false;  // crash safety is the crash test's business
      h->store = must(Store::open(dir_ / h->id, options));
      for (auto& member : hosts_) {
        ASSERT_TRUE(h->store->add_genesis_node(member->id, member->key.public_key(), kT0));
      }
      ConsensusConfig config{h->id, &h->key, pool, buffers_, 120'000'000};
      h->node = std::make_unique<ConsensusNode>(config, *h->store, transport_);
      Host* self = h.get();
      h->node->on_confirmed = [self](const SemiFinishedBlock& b) {
        self->confirmed.push_back(b.hash());
      };
      h->node->on_accusation = [self](const Accusation& a) { self->accusations.push_back(a); };
      transport_.attach(h->id, [this, self](const std::string& from, const Bytes& message) {
        self->node->receive(from, message, now_);
      });
    }
  }

  void TearDown() override {
    hosts_.clear();  // stores close before the directory goes
  }

  // Lets time pass: every node ticks and all messages are delivered, until nothing moves
  // (one tick proposes at most one candidate, so due policy and data blocks take two).
  void advance(TimeUs to) {
    now_ = to;
    for (int i = 0; i < 8; ++i) {
      const std::size_t confirmed_before = total_confirmed();
      for (auto& h : hosts_) h->node->tick(now_);
      if (transport_.pump() == 0 && total_confirmed() == confirmed_before) break;
    }
  }

  std::size_t total_confirmed() const {
    std::size_t n = 0;
    for (const auto& h : hosts_) n += h->confirmed.size();
    return n;
  }

  // Submits at host 0, lets gossip and a window pass, and expects one more confirmation.
  void confirm(const Package& package) {
    now_ = std::max(now_, package.header().timestamp);
    ValidationResult r = hosts_[0]->node->submit(package, now_);
    ASSERT_TRUE(r.ok()) << to_string(r.verdict) << ": " << r.detail;
    transport_.pump();
    const std::size_t before = hosts_[0]->confirmed.size();
    advance(now_ + buffers_.data_window + buffers_.policy_window);
    ASSERT_EQ(hosts_[0]->confirmed.size(), before + 1);
  }

  // The world's setup, confirmed one package at a time: each depends on the one before.
  void setup_world() {
    confirm(must(make_membership_package(
        {Uuid{}, "alice", "node-1", kT0 + 1},
        MembershipRecord{MembershipAction::register_user, "alice", w_.alice.public_key()},
        {nullptr, &w_.alice, &hosts_[0]->key})));
    confirm(must(make_binding_package({w_.vm, "alice", "node-1", kT0 + 2}, PolicyRef{},
                                      BindingEvent::started, w_.vm_key.public_key(), signers())));
    confirm(must(make_policy_package({w_.vm, "alice", "node-1", kT0 + 3}, w_.policy1, signers())));
  }

  PackageSigners signers() const { return {&w_.vm_key, &w_.alice, &hosts_[0]->key}; }

  Package data(TimeUs t) const {
    return must(make_data_package({w_.vm, "alice", "node-1", t}, w_.policy1.ref(), w_.data_key,
                                  as_bytes("report"), signers()));
  }

  testing::World w_;
  BufferOptions buffers_{.max_data_packages = 100,
                         .max_data_bytes = 1 << 20,
                         .max_policy_packages = 100,
                         .data_window = 1000,
                         .policy_window = 1000};
  LocalTransport transport_;
  testing::TempDir tmp_{"mchain-consensus"};
  const std::filesystem::path dir_ = tmp_.path();
  std::vector<std::unique_ptr<Host>> hosts_;
  TimeUs now_ = kT0;
};

TEST_F(Cluster, OneHostConfirmsThenMines) {
  start(1);
  setup_world();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(hosts_[0]->node->submit(data(now_ + i), now_).ok());
  advance(now_ + buffers_.data_window);
  Store& store = *hosts_[0]->store;
  ASSERT_EQ(hosts_[0]->confirmed.size(), 4u);  // three setup blocks and one data block
  EXPECT_EQ(store.last_confirmed(), hosts_[0]->confirmed.back());
  EXPECT_EQ(store.mining_queue().size(), 4u);
  auto semi = must(store.semi_finished(hosts_[0]->confirmed.back()));
  EXPECT_EQ(semi.candidate.packages.size(), 5u);
  EXPECT_EQ(semi.marks.size(), 1u);

  // Layer 2: mine the queue in confirmation order.
  pow::Miner miner(1);
  std::atomic<bool> stop{false};
  const MiningConfig mining{.data_diff = 8, .policy_diff = 8, .slice = {0, 0, UINT64_MAX}};
  for (int i = 0; i < 4; ++i) {
    auto block = must(mine_next(store, miner, mining, now_, stop));
    ASSERT_TRUE(block);
    EXPECT_EQ(block->body.hash(), hosts_[0]->confirmed[static_cast<std::size_t>(i)]);
    auto appended = must(store.append(*block));
    EXPECT_TRUE(appended.new_tip);
  }
  EXPECT_TRUE(store.mining_queue().empty());
  EXPECT_FALSE(must(mine_next(store, miner, mining, now_, stop)));
  EXPECT_EQ(store.tip()->height, 3u);
}

TEST_F(Cluster, ThreeHostsConfirmTheSameBlocks) {
  start(3);
  setup_world();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(hosts_[0]->node->submit(data(now_ + i), now_).ok());
  transport_.pump();
  // Gossip reached everyone: whichever node leads can propose.
  for (auto& h : hosts_) EXPECT_EQ(h->node->buffers().size(BlockType::data), 3u) << h->id;
  advance(now_ + buffers_.data_window);
  for (auto& h : hosts_) {
    ASSERT_EQ(h->confirmed.size(), 4u) << h->id;
    EXPECT_EQ(h->confirmed, hosts_[0]->confirmed) << h->id;
    EXPECT_EQ(h->node->buffers().size(BlockType::data), 0u);
    auto semi = must(h->store->semi_finished(h->confirmed.back()));
    EXPECT_EQ(semi.marks.size(), 3u);  // every node of the pool marked it
  }
}

TEST_F(Cluster, AnInvalidProposalIsAccusedAndTheNextLeaderTakesOver) {
  start(3);
  setup_world();
  ASSERT_TRUE(hosts_[0]->node->submit(data(now_), now_).ok());
  transport_.pump();
  const std::string leader =
      *elect_leader(hosts_[0]->node->last_semi_finished(), 0, hosts_[0]->node->valid_pool());
  Host& bad =
      **std::find_if(hosts_.begin(), hosts_.end(), [&](const auto& h) { return h->id == leader; });
  // The leader proposes a package whose node signature is forged.
  auto rogue = testing::make_key();
  Package forged =
      must(make_data_package({w_.vm, "alice", "node-1", now_}, w_.policy1.ref(), w_.data_key,
                             as_bytes("x"), {&w_.vm_key, &w_.alice, &rogue}));
  Candidate c{BlockType::data, leader, 0, now_, hosts_[0]->node->last_semi_finished(), {forged}};
  auto proposal = must(SemiFinishedBlock::propose(c, bad.key));
  transport_.broadcast(leader, encode_message(Proposal{proposal}));
  transport_.pump();
  for (auto& h : hosts_) {
    if (h->id == leader) continue;
    EXPECT_EQ(h->node->valid_pool().size(), 2u) << h->id;
    EXPECT_EQ(h->node->attempt(), 1u);
    ASSERT_FALSE(h->accusations.empty()) << h->id;
    EXPECT_EQ(h->accusations[0].verdict, Verdict::bad_node_signature);
  }
  // The honest nodes go on without the accused leader: the next leader proposes the valid
  // package and the two remaining nodes confirm it.
  advance(now_ + buffers_.data_window);
  for (auto& h : hosts_) {
    if (h->id == leader) continue;
    ASSERT_EQ(h->confirmed.size(), 4u) << h->id;
    auto semi = must(h->store->semi_finished(h->confirmed.back()));
    EXPECT_EQ(semi.candidate.packages.size(), 1u);
    EXPECT_EQ(semi.marks.size(), 2u);
  }
}

TEST_F(Cluster, ALeaderLeavesOutPackagesThatTurnedInvalidWhileWaiting) {
  start(1);
  setup_world();
  const TimeUs t = now_;
  std::vector<ValidationResult> dropped;
  hosts_[0]->node->on_dropped = [&](const Package&, const ValidationResult& r) {
    dropped.push_back(r);
  };
  // A report sealed under policy v1 waits; meanwhile policy v2 (in force from t + 5) is
  // confirmed first, as policy blocks go first. The report is stale now: proposing it would
  // get this honest leader accused.
  ASSERT_TRUE(hosts_[0]->node->submit(data(t + 10), t + 10).ok());
  PolicyRecord v2 = w_.policy1;
  v2.version = 2;
  ASSERT_TRUE(
      hosts_[0]
          ->node
          ->submit(must(make_policy_package({w_.vm, "alice", "node-1", t + 5}, v2, signers())),
                   t + 10)
          .ok());
  const std::size_t before = hosts_[0]->confirmed.size();
  advance(t + 10 + buffers_.data_window);
  EXPECT_EQ(hosts_[0]->confirmed.size(), before + 1);  // the policy block only
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].verdict, Verdict::stale_policy);
  EXPECT_TRUE(hosts_[0]->accusations.empty());
  EXPECT_EQ(hosts_[0]->node->buffers().size(BlockType::data), 0u);
}

TEST(ConsensusMessages, RoundTripAndRejectGarbage) {
  testing::World w;
  Package p = w.data(kT0 + 100);
  auto proposal = must(
      SemiFinishedBlock::propose(Candidate{BlockType::data, "node-1", 2, kT0, {}, {p}}, w.node1));
  auto accusation =
      must(Accusation::make("node-2", proposal, 0, Verdict::bad_vm_signature, w.node2));
  Mark mark{proposal.candidate.hash(), {"node-2", *w.node2.sign(as_bytes("m"))}};
  for (const Message& m : {Message{PackageGossip{p}}, Message{Proposal{proposal}}, Message{mark},
                           Message{accusation}}) {
    Bytes encoded = encode_message(m);
    auto back = decode_message(encoded);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->index(), m.index());
    EXPECT_EQ(encode_message(*back), encoded);
  }
  EXPECT_TRUE(w.node2.public_key().verify(accusation.signing_message(), accusation.signature));
  EXPECT_FALSE(decode_message(as_bytes("garbage")));
  Bytes unknown_kind = encode_message(Message{mark});
  unknown_kind[2] = 0x09;
  EXPECT_FALSE(decode_message(unknown_kind));
}

}  // namespace
}  // namespace mchain
