// Layer-1 consensus and layer-2 mining with real stores (LevelDB in temporary directories),
// nodes talking through the in-process transport: the same code path as the network.
#include "chain/node/consensus.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "chain/node/leader.h"
#include "chain/node/mining.h"
#include "chain/package/records.h"
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
      config.mode = mode_;
      config.data_diff = config.policy_diff = 8;
      h->node = std::make_unique<ConsensusNode>(config, *h->store, transport_);
      Host* self = h.get();
      h->node->on_confirmed = [self](const SemiFinishedBlock& b) {
        self->confirmed.push_back(b.hash());
      };
      h->node->on_accusation = [self](const Accusation& a) { self->accusations.push_back(a); };
      h->node->on_log = [self](const std::string& line) {
        if (std::getenv("MCHAIN_TEST_LOG"))
          std::fprintf(stderr, "[%s] %s\n", self->id.c_str(), line.c_str());
      };
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

  // Lets `duration` pass in steps of 100 ms, as a running cluster would see it.
  void run_for(TimeUs duration) {
    const TimeUs end = now_ + duration;
    while (now_ < end) advance(now_ + 100'000);
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
  ValidationMode mode_ = ValidationMode::concurrent;
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
    EXPECT_GE(h->node->attempt(), 1u);  // the accused leader's round is over
    ASSERT_FALSE(h->accusations.empty()) << h->id;
    EXPECT_EQ(h->accusations[0].verdict, Verdict::bad_node_signature);
  }
  // The next leader proposes the accused node's removal (an on-chain record the two others
  // mark), then the valid package; the accused node follows the chain too.
  advance(now_ + buffers_.data_window);
  std::vector<std::string> honest;
  for (auto& h : hosts_) {
    if (h->id != leader) honest.push_back(h->id);
  }
  for (auto& h : hosts_) {
    ASSERT_EQ(h->confirmed.size(), 5u) << h->id;
    EXPECT_EQ(h->node->valid_pool(), honest) << h->id;
    auto removal = must(h->store->semi_finished(h->confirmed[3]));
    ASSERT_EQ(removal.candidate.packages.size(), 1u);
    auto record = must(MembershipRecord::decode(removal.candidate.packages[0].body()));
    EXPECT_EQ(record.action, MembershipAction::remove_node);
    EXPECT_EQ(record.subject, leader);
    EXPECT_EQ(removal.marks.size(), 2u);
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

// The node whose id is `id`.
Host& host(std::vector<std::unique_ptr<Host>>& hosts, const std::string& id) {
  return **std::find_if(hosts.begin(), hosts.end(), [&](const auto& h) { return h->id == id; });
}

TEST_F(Cluster, ASilentNodeIsSuspendedThenCatchesUpAndRejoins) {
  start(3);
  setup_world();
  // node-3 goes silent: nothing reaches it and nothing leaves it.
  transport_.set_filter([](const std::string& from, const std::string& to) {
    return from != "node-3" && to != "node-3";
  });
  ASSERT_TRUE(hosts_[0]->node->submit(data(now_), now_).ok());
  // Rounds time out while it is in the pool; once it has been silent long enough the others
  // suspend it (an on-chain membership change) and confirm the report without it.
  run_for(60'000'000);
  for (int i = 0; i < 2; ++i) {
    Host& h = *hosts_[static_cast<std::size_t>(i)];
    EXPECT_EQ(h.node->valid_pool(), (std::vector<std::string>{"node-1", "node-2"})) << h.id;
    ASSERT_EQ(h.confirmed.size(), 5u) << h.id;  // setup, the suspension, the report
    EXPECT_GT(h.node->counters().timeouts + h.node->counters().confirmed, 0u);
  }
  EXPECT_EQ(hosts_[2]->confirmed.size(), 3u);
  EXPECT_EQ(hosts_[0]->confirmed, hosts_[1]->confirmed);

  // Back on the network: it learns from the status reports that it lags, catches up from a
  // locator, finds itself suspended, and asks to rejoin; the others put it back.
  transport_.set_filter(nullptr);
  run_for(8'000'000);
  for (auto& h : hosts_) {
    EXPECT_EQ(h->node->valid_pool().size(), 3u) << h->id;
    EXPECT_EQ(h->store->confirmed(), hosts_[0]->store->confirmed()) << h->id;
  }
  EXPECT_GE(hosts_[2]->node->counters().synced, 2u);
  EXPECT_FALSE(hosts_[2]->node->suspended());
  // And takes part again: a new report needs its mark.
  ASSERT_TRUE(hosts_[1]->node->submit(data(now_), now_).ok());
  run_for(1'000'000);
  auto last = must(hosts_[2]->store->semi_finished(*hosts_[2]->store->last_confirmed()));
  EXPECT_EQ(last.marks.size(), 3u);
}

TEST_F(Cluster, MatureBlocksReachEveryNodeAndBadProofOfWorkIsRefused) {
  start(3);
  setup_world();
  Store& store = *hosts_[0]->store;
  pow::Miner miner(1);
  std::atomic<bool> stop{false};
  const MiningConfig mining{.data_diff = 8, .policy_diff = 8, .slice = {0, 0, UINT64_MAX}};
  for (int i = 0; i < 3; ++i) {
    auto block = must(mine_next(store, miner, mining, now_, stop));
    ASSERT_TRUE(block);
    ASSERT_TRUE(hosts_[0]->node->mined(*block));
    transport_.pump();
  }
  for (auto& h : hosts_) {
    EXPECT_EQ(h->store->tip()->hash, store.tip()->hash) << h->id;
    EXPECT_TRUE(h->store->mining_queue().empty()) << h->id;
  }
  // A block that claims a difficulty its hash does not meet, and one mined at a lower
  // difficulty than the chain's: both refused everywhere.
  ASSERT_TRUE(hosts_[0]->node->submit(data(now_), now_).ok());
  transport_.pump();
  advance(now_ + buffers_.data_window);
  auto good = must(mine_next(*hosts_[1]->store, miner, mining, now_, stop));
  ASSERT_TRUE(good);
  Block bad = *good;
  bad.header.nonce_lo ^= 1;
  while (pow::meets_difficulty(bad.header.hash(), 0, 8)) ++bad.header.nonce_lo;
  Block easy = *good;
  easy.header.diff = 1;
  for (easy.header.nonce_lo = 0; !pow::meets_difficulty(easy.header.hash(), 0, 1);) {
    ++easy.header.nonce_lo;
  }
  transport_.broadcast("node-2", encode_message(MinedBlock{bad}));
  transport_.broadcast("node-2", encode_message(MinedBlock{easy}));
  transport_.pump();
  for (auto& h : hosts_) {
    if (h->id == "node-2") continue;
    EXPECT_EQ(h->node->counters().bad_blocks, 2u) << h->id;
    EXPECT_EQ(h->node->counters().offences, 2u) << h->id;  // node-2 sent them: they are its
    EXPECT_FALSE(h->store->has_block(bad.hash()));
    EXPECT_FALSE(h->store->has_block(easy.hash()));
  }
}

// Two nodes mine the same queue head at once (a fork of mature blocks); when they see each
// other's blocks they settle on the branch with the most work, and the losing branch's body is
// mined again, so every confirmed semi-finished block ends up in the one main chain.
TEST_F(Cluster, ForksResolveToTheMostWorkChainWithNothingLost) {
  start(2);
  setup_world();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(hosts_[0]->node->submit(data(now_ + i), now_).ok());
    transport_.pump();
    advance(now_ + buffers_.data_window);
  }
  const std::vector<Hash256> confirmed = hosts_[0]->store->confirmed();
  ASSERT_EQ(confirmed.size(), 5u);
  ASSERT_EQ(hosts_[1]->store->confirmed(), confirmed);

  pow::Miner miner(1);
  std::atomic<bool> stop{false};
  // Disjoint slices, as cooperative mining gives them: the two blocks differ.
  auto mine = [&](Host& h, std::uint64_t slice) {
    const MiningConfig mining{.data_diff = 8, .policy_diff = 8, .slice = {slice, 0, UINT64_MAX}};
    return must(mine_next(*h.store, miner, mining, now_, stop));
  };
  // Both mine on their own for a while, nothing delivered: two branches.
  transport_.set_filter([](const std::string&, const std::string&) { return false; });
  for (int i = 0; i < 2; ++i) {
    for (std::uint64_t n = 0; n < 2; ++n) {
      auto block = mine(*hosts_[n], n);
      ASSERT_TRUE(block);
      ASSERT_TRUE(hosts_[n]->node->mined(*block));
    }
  }
  // node-2 mines one more: its branch has more work.
  auto extra = mine(*hosts_[1], 1);
  ASSERT_TRUE(extra);
  ASSERT_TRUE(hosts_[1]->node->mined(*extra));
  ASSERT_NE(hosts_[0]->store->tip()->hash, hosts_[1]->store->tip()->hash);

  // Connected again: status reports show node-2 ahead, node-1 catches up and reorganises.
  transport_.set_filter(nullptr);
  run_for(2'000'000);
  EXPECT_EQ(hosts_[0]->store->tip()->hash, hosts_[1]->store->tip()->hash);
  EXPECT_EQ(hosts_[0]->store->tip()->height, 2u);
  // Mine out both queues, exchanging blocks: everything confirmed is in the main chain.
  for (int round = 0; round < 10 && !hosts_[0]->store->mining_queue().empty(); ++round) {
    auto block = mine(*hosts_[0], 0);
    if (block) {
      ASSERT_TRUE(hosts_[0]->node->mined(*block));
    }
    transport_.pump();
  }
  for (auto& h : hosts_) {
    EXPECT_TRUE(h->store->mining_queue().empty()) << h->id;
    for (const Hash256& semi : confirmed) EXPECT_TRUE(h->store->mined_in(semi)) << h->id;
    EXPECT_EQ(h->store->tip()->hash, hosts_[0]->store->tip()->hash);
  }
}

// The marks of the candidate with `hash`, in the order they were broadcast.
std::vector<std::string> marks_in_order(const std::vector<Message>& sent, const Hash256& hash) {
  std::vector<std::string> out;
  for (const Message& m : sent) {
    if (auto* mark = std::get_if<Mark>(&m); mark && mark->candidate == hash) {
      out.push_back(mark->mark.node);
    }
  }
  return out;
}

TEST_F(Cluster, InOrderModeValidatesNodeByNode) {
  mode_ = ValidationMode::in_order;
  start(3);
  setup_world();
  std::vector<Message> sent;
  transport_.set_observer([&](const std::string&, const Bytes& message) {
    sent.push_back(must(decode_message(message)));
  });
  ASSERT_TRUE(hosts_[0]->node->submit(data(now_), now_).ok());
  transport_.pump();
  advance(now_ + buffers_.data_window);
  for (auto& h : hosts_) ASSERT_EQ(h->confirmed.size(), 4u) << h->id;
  auto semi = must(hosts_[0]->store->semi_finished(hosts_[0]->confirmed.back()));
  // The leader first, then the pool in order after it, wrapping around.
  std::vector<std::string> expected;
  const std::vector<std::string> pool = {"node-1", "node-2", "node-3"};
  const auto leader = std::find(pool.begin(), pool.end(), semi.candidate.leader) - pool.begin();
  for (std::size_t i = 0; i < pool.size(); ++i) {
    expected.push_back(pool[(static_cast<std::size_t>(leader) + i) % pool.size()]);
  }
  EXPECT_EQ(marks_in_order(sent, semi.candidate.hash()), expected);
}

// With the second validator's mark kept from the third, the third marks anyway in concurrent
// mode and never in order.
class ValidationModes : public Cluster, public ::testing::WithParamInterface<ValidationMode> {};

TEST_P(ValidationModes, TheLastValidatorWaitsForThePreviousMarkOnlyInOrder) {
  mode_ = GetParam();
  start(3);
  setup_world();
  const std::string leader =
      *elect_leader(hosts_[0]->node->last_semi_finished(), 0, hosts_[0]->node->valid_pool());
  const std::vector<std::string> pool = {"node-1", "node-2", "node-3"};
  const auto at =
      static_cast<std::size_t>(std::find(pool.begin(), pool.end(), leader) - pool.begin());
  const std::string second = pool[(at + 1) % 3], third = pool[(at + 2) % 3];
  std::vector<Message> sent;
  transport_.set_observer([&](const std::string&, const Bytes& message) {
    sent.push_back(must(decode_message(message)));
  });
  ASSERT_TRUE(hosts_[0]->node->submit(data(now_), now_).ok());
  transport_.pump();
  transport_.set_filter([&](const std::string& from, const std::string& to) {
    return !(from == second && to == third);
  });
  advance(now_ + buffers_.data_window);
  Hash256 candidate{};
  for (const Message& m : sent) {
    if (auto* p = std::get_if<Proposal>(&m)) candidate = p->block.candidate.hash();
  }
  const std::vector<std::string> marks = marks_in_order(sent, candidate);
  if (GetParam() == ValidationMode::in_order) {
    EXPECT_EQ(marks, (std::vector<std::string>{leader, second}));
  } else {
    EXPECT_EQ(marks.size(), 3u);
    EXPECT_NE(std::find(marks.begin(), marks.end(), third), marks.end());
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, ValidationModes,
                         ::testing::Values(ValidationMode::concurrent, ValidationMode::in_order),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST_F(Cluster, AMarkInAnotherNodesNameIsDroppedTheRoundGoesOnAndItsSenderIsRemoved) {
  start(3);
  setup_world();
  std::vector<Misbehaviour> seen;
  for (auto& h : hosts_) {
    h->node->on_misbehaviour = [&seen](const Misbehaviour& m) { seen.push_back(m); };
  }
  // node-1 answers every proposal with marks in the other nodes' names, signed with its own
  // key, sent before the real marks can be.
  transport_.set_observer([&](const std::string& from, const Bytes& message) {
    auto decoded = decode_message(message);
    (void)from;
    if (!decoded || !std::holds_alternative<Proposal>(*decoded)) return;
    const Hash256 hash = std::get<Proposal>(*decoded).block.candidate.hash();
    for (const char* victim : {"node-2", "node-3"}) {
      auto signature = must(hosts_[0]->key.sign(valid_mark_signing_message(hash)));
      transport_.broadcast("node-1", encode_message(Mark{hash, ValidMark{victim, signature}}));
    }
  });
  const Package report = data(now_);
  ASSERT_TRUE(hosts_[0]->node->submit(report, now_).ok());
  transport_.pump();
  const std::uint64_t before = hosts_[1]->node->counters().bad_marks;
  advance(now_ + buffers_.data_window);
  for (auto& h : hosts_) {
    EXPECT_TRUE(h->store->find_package(report.id())) << h->id << " lacks the report";
  }
  EXPECT_GT(hosts_[1]->node->counters().bad_marks + hosts_[2]->node->counters().bad_marks, before);
  // Both honest nodes had the forgeries from node-1 itself, and nobody relays what does not
  // verify: the next round an honest node leads takes node-1 out, with both their marks.
  ASSERT_EQ(seen.size(), 2u);
  for (const Misbehaviour& m : seen) {
    EXPECT_EQ(m.node, "node-1");
    EXPECT_EQ(m.offence, Offence::forged_mark);
  }
  transport_.set_observer({});
  for (int i = 0; i < 20 && hosts_[1]->node->valid_pool().size() == 3; ++i) {
    ASSERT_TRUE(hosts_[1]->node->submit(data(now_), now_).ok());
    transport_.pump();
    advance(now_ + buffers_.data_window + buffers_.policy_window);
  }
  for (auto& h : hosts_) {
    EXPECT_EQ(h->node->valid_pool(), (std::vector<std::string>{"node-2", "node-3"})) << h->id;
  }
}

TEST_F(Cluster, TakingTheMajorityOutOfThePoolIsInvalid) {
  start(3);
  setup_world();
  const std::string leader =
      *elect_leader(hosts_[0]->node->last_semi_finished(), 0, hosts_[0]->node->valid_pool());
  Host& bad = host(hosts_, leader);
  // The leader proposes to suspend both other nodes: it would be left alone as the pool.
  std::vector<Package> suspensions;
  for (auto& h : hosts_) {
    if (h->id == leader) continue;
    suspensions.push_back(must(make_membership_package(
        {Uuid{}, "", leader, now_},
        MembershipRecord{MembershipAction::suspend_node, h->id, h->key.public_key()},
        {nullptr, nullptr, &bad.key})));
  }
  Candidate c{BlockType::policy, leader, 0, now_, bad.node->last_semi_finished(), suspensions};
  transport_.broadcast(leader,
                       encode_message(Proposal{must(SemiFinishedBlock::propose(c, bad.key))}));
  now_ += 10'000'000;  // long silence would make a suspension acceptable, but not this one
  transport_.pump();
  for (auto& h : hosts_) {
    if (h->id == leader) continue;
    ASSERT_FALSE(h->accusations.empty()) << h->id;
    EXPECT_EQ(h->accusations[0].verdict, Verdict::malformed);
    EXPECT_EQ(h->node->valid_pool().size(), 3u);
  }
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
