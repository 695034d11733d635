// Faults in a cluster of node processes (mchain_test_node) over TLS on 127.0.0.1: a node
// killed in the middle of a round and restarted, and a member that misbehaves. Whatever
// happens, every package a node confirmed is in every honest store, and the honest stores
// agree.
#include <gtest/gtest.h>

#include <thread>

#include "chain/file_io.h"
#include "chain/node/genesis.h"
#include "chain/pow/pow.h"
#include "chain/test_util.h"
#include "chain/test_world.h"
#include "node_cluster.h"
#include "temp_dir.h"

namespace mchain {
namespace {

using namespace std::chrono_literals;
using testing::Heartbeat;
using testing::NodeProcess;
using testing::TestCluster;

// Short timers, so that a fault is noticed within seconds.
const std::vector<std::string> kFastLiveness = {"--round-timeout-ms", "1000", "--silence-ms",
                                                "1500"};

// Every block a stopped node stored carries the chain's difficulty and meets it.
void expect_only_valid_blocks(Store& store, std::uint8_t diff) {
  auto tip = store.tip();
  if (!tip) return;
  for (std::uint64_t h = 0; h <= tip->height; ++h) {
    for (const Hash256& hash : store.blocks_at(h)) {
      auto block = store.block(hash);
      ASSERT_TRUE(block) << block.error().message;
      EXPECT_EQ(block->header.diff, diff);
      EXPECT_TRUE(pow::meets_difficulty(hash, static_cast<std::uint8_t>(block->header.type), diff));
    }
  }
}

TEST(ClusterFaults, FiveNodesGoOnWithoutAKilledNodeWhichCatchesUpAndRejoins) {
  testing::TempDir tmp("mchain-five");
  testing::World w;
  testing::ClusterOptions options;
  options.nodes = 5;
  TestCluster cluster(tmp.path(), options);
  ASSERT_TRUE(cluster.ok());
  for (std::size_t i = 0; i < 5; ++i) cluster.node(i).extra_args = kFastLiveness;
  ASSERT_TRUE(cluster.start_with_world(w));

  // A report goes in and node-4 dies with the round under way: SIGKILL, no goodbye.
  NodeProcess& victim = cluster.node(3);
  ASSERT_TRUE(cluster.node(0).hand("during", cluster.report(w, "during the kill")));
  // The candidate window is 50 ms: by then the round is being proposed and marked.
  std::this_thread::sleep_for(55ms);
  victim.kill(SIGKILL);
  // The four others suspend it and confirm every report, whoever they go to.
  ASSERT_TRUE(cluster.node(0).confirmed("during", 60s));
  for (std::size_t i : {0u, 1u, 2u, 4u}) {
    ASSERT_TRUE(cluster.hand(i, "without-" + std::to_string(i),
                             cluster.report(w, "without " + std::to_string(i))));
  }
  for (std::size_t i : {0u, 1u, 2u, 4u}) {
    EXPECT_TRUE(cluster.node(i).wait_heartbeat([](const Heartbeat& h) { return h.pool == 4; }, 30s))
        << cluster.node(i).log_tail();
  }

  // Restarted on its store: it catches up from a locator, finds itself suspended and asks to
  // rejoin; then the pool is whole again and it marks rounds.
  ASSERT_TRUE(victim.start());
  ASSERT_TRUE(victim.wait_heartbeat(
      [](const Heartbeat& h) { return h.pool == 5 && !h.suspended && h.peers == 4; }, 60s))
      << victim.log_tail();
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_TRUE(cluster.node(i).wait_heartbeat([](const Heartbeat& h) { return h.pool == 5; }, 30s))
        << cluster.node(i).log_tail();
  }
  ASSERT_TRUE(cluster.hand(3, "after", cluster.report(w, "after the restart")));
  cluster.stop_and_expect_one_chain();
}

class MisbehavingMember : public ::testing::TestWithParam<std::string> {};

// node-3 misbehaves in one way; node-1 and node-2 are honest.
TEST_P(MisbehavingMember, IsDetectedAndTheHonestNodesAgree) {
  testing::TempDir tmp("mchain-rogue");
  testing::World w;
  TestCluster cluster(tmp.path());
  ASSERT_TRUE(cluster.ok());
  for (std::size_t i = 0; i < 3; ++i) cluster.node(i).extra_args = kFastLiveness;
  // It misbehaves once the world is set up (three blocks), through it too.
  cluster.node(2).extra_args.insert(cluster.node(2).extra_args.end(),
                                    {"--misbehave", GetParam(), "--misbehave-after", "3"});
  // node-1's administrator hook writes what it was told.
  const std::filesystem::path hook = tmp.path() / "alarm.sh";
  ASSERT_TRUE(write_file_atomically(hook, "#!/bin/sh\nenv | grep '^MCHAIN_' >> \"$0.out\"\n", 0755,
                                    "alarm hook"));
  cluster.node(0).extra_args.insert(cluster.node(0).extra_args.end(),
                                    {"--alarm-command", hook.string()});
  ASSERT_TRUE(cluster.start_with_world(w));

  // Reports through the honest nodes until the fault has shown and node-3 is out of the pool:
  // for an invalid proposal, once it led a round and was accused; otherwise once an honest
  // node led a round after seeing its bad data. Every report is confirmed anyway.
  auto shown = [&](const Heartbeat& h) {
    if (h.pool != 2) return false;
    if (GetParam() == "invalid-package") return h.accusations > 0;
    if (GetParam() == "forge-mark") return h.bad_marks > 0 && h.offences > 0;
    return h.bad_blocks > 0 && h.offences > 0;
  };
  bool detected = false;
  for (int i = 0; i < 40 && !detected; ++i) {
    ASSERT_TRUE(cluster.hand(static_cast<std::size_t>(i % 2), "report-" + std::to_string(i),
                             cluster.report(w, "report " + std::to_string(i))));
    detected =
        cluster.node(0).wait_heartbeat(shown, 100ms) && cluster.node(1).wait_heartbeat(shown, 5s);
  }
  EXPECT_TRUE(detected) << cluster.node(0).log_tail() << cluster.node(2).log_tail();
  const bool accused = GetParam() == "invalid-package";
  EXPECT_NE(cluster.node(0).log().find(accused ? "ALARM[node-1]: node-3 accused"
                                               : "ALARM[node-1]: node-3 misbehaved"),
            std::string::npos);
  std::optional<std::string> told;
  for (int i = 0; i < 100 && !told; ++i, std::this_thread::sleep_for(50ms)) {
    if (auto out = read_small_file(hook.string() + ".out", 1 << 16, "hook output")) told = *out;
  }
  ASSERT_TRUE(told) << "the alarm hook did not run";
  EXPECT_NE(told->find(accused ? "MCHAIN_ALARM=accusation" : "MCHAIN_ALARM=misbehaviour"),
            std::string::npos)
      << *told;
  EXPECT_NE(told->find("MCHAIN_ACCUSED=node-3"), std::string::npos) << *told;
  const std::string verdict = accused                      ? "MCHAIN_VERDICT=bad-"
                              : GetParam() == "forge-mark" ? "MCHAIN_VERDICT=forged-mark"
                                                           : "MCHAIN_VERDICT=bad-block";
  EXPECT_NE(told->find(verdict), std::string::npos) << *told;
  ASSERT_TRUE(cluster.hand(0, "last", cluster.report(w, "last")));
  cluster.stop_and_expect_one_chain({0, 1});
  for (std::size_t i : {0u, 1u}) {
    auto store = cluster.node(i).open_store();
    ASSERT_TRUE(store) << store.error().message;
    expect_only_valid_blocks(**store, static_cast<std::uint8_t>(cluster.genesis().difficulty));
  }
}

INSTANTIATE_TEST_SUITE_P(Faults, MisbehavingMember,
                         ::testing::Values("invalid-package", "forge-mark", "bad-pow"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::erase(name, '-');
                           return name;
                         });

}  // namespace
}  // namespace mchain
