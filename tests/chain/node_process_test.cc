// Three nodes as three processes (mchain_test_node), each with its own store, talking over TLS
// on 127.0.0.1 and started from one genesis file: packages handed to different nodes are
// confirmed, and every store ends with the same semi-finished blocks.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "chain/crypto/keyfile.h"
#include "chain/node_cluster.h"
#include "chain/package/records.h"
#include "chain/test_util.h"
#include "chain/test_world.h"
#include "temp_dir.h"

namespace mchain {
namespace {

using namespace std::chrono_literals;
using testing::must;

TEST(NodeProcesses, ThreeProcessesConfirmTheSameBlocks) {
  testing::TempDir tmp("mchain-procs");
  testing::World w;
  testing::TestCluster cluster(tmp.path());
  ASSERT_TRUE(cluster.ok());
  ASSERT_TRUE(cluster.start_with_world(w));
  for (int i = 0; i < 6; ++i) {
    const std::string name = "report-" + std::to_string(i);
    ASSERT_TRUE(cluster.hand(static_cast<std::size_t>(i % 3), name,
                             cluster.report(w, "report " + std::to_string(i))));
  }

  EXPECT_GE(cluster.stop_and_expect_one_chain(), 4u);
}

// The harness's restart: a killed node starts again on its store and spool, appends to its log,
// and the others link with it again.
TEST(NodeProcesses, AKilledNodeRestartsAndLinksAgain) {
  testing::TempDir tmp("mchain-procs");
  testing::TestCluster cluster(tmp.path());
  ASSERT_TRUE(cluster.ok());
  ASSERT_TRUE(cluster.start_all());
  ASSERT_TRUE(cluster.wait_linked(30s));

  testing::NodeProcess& node = cluster.node(2);
  node.kill(SIGKILL);
  EXPECT_FALSE(node.running());
  EXPECT_EQ(node.stop(), 128 + SIGKILL);
  ASSERT_TRUE(cluster.wait_linked(30s));  // the two left see one peer each

  ASSERT_TRUE(node.start());
  EXPECT_TRUE(node.running());
  ASSERT_TRUE(cluster.wait_linked(30s));
  EXPECT_NE(node.log().find("ready node-3"), node.log().rfind("ready node-3"));
  EXPECT_EQ(node.run_log().find("ready node-3"), node.run_log().rfind("ready node-3"));
  EXPECT_TRUE(cluster.stop_all());
  EXPECT_EQ(node.stop(), 0);  // the last run's exit code
}

// A node that is not in the genesis file joins through an add-node package (signed by a
// member as issuing node), catches up, takes part in rounds, and leaves with a remove-node
// package it signs itself; the pool follows the chain at every step.
TEST(NodeProcesses, ANodeJoinsThroughAMembershipPackageAndLeaves) {
  testing::TempDir tmp("mchain-join");
  testing::World w;
  testing::TestCluster cluster(tmp.path());
  ASSERT_TRUE(cluster.ok());
  ASSERT_TRUE(cluster.start_with_world(w));

  const crypto::PrivateKey key = testing::make_key();
  ASSERT_TRUE(crypto::write_private_key_file(tmp.path() / "node-4.key", key));
  ASSERT_TRUE(
      cluster.hand(0, "add",
                   must(make_membership_package(
                       {Uuid{}, "", "node-1", now_us()},
                       MembershipRecord{MembershipAction::add_node, "node-4", key.public_key()},
                       {nullptr, nullptr, &cluster.key(0)}))));
  testing::NodeProcess joiner(tmp.path(), "node-4");
  const std::uint16_t port = testing::free_port();
  joiner.extra_args = {"--join", "127.0.0.1:" + std::to_string(port)};
  ASSERT_TRUE(joiner.start());
  auto in_pool = [](std::size_t n) {
    return [n](const testing::Heartbeat& h) { return h.pool == n && !h.suspended; };
  };
  ASSERT_TRUE(joiner.wait_heartbeat(
      [](const testing::Heartbeat& h) { return h.pool == 4 && !h.suspended && h.peers == 3; }, 60s))
      << joiner.log_tail();
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(cluster.node(i).wait_heartbeat(in_pool(4), 30s));

  // A member now: a report handed to it is confirmed with its mark.
  ASSERT_TRUE(joiner.hand("report", cluster.report(w, "from the new node")));
  ASSERT_TRUE(joiner.confirmed("report", 60s)) << joiner.log_tail();

  // It leaves; the others let it go and close their links to it.
  ASSERT_TRUE(joiner.hand(
      "leave", must(make_membership_package(
                   {Uuid{}, "", "node-4", now_us()},
                   MembershipRecord{MembershipAction::remove_node, "node-4", key.public_key()},
                   {nullptr, nullptr, &key}))));
  ASSERT_TRUE(joiner.confirmed("leave", 60s)) << joiner.log_tail();
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(cluster.node(i).wait_heartbeat(
        [](const testing::Heartbeat& h) { return h.pool == 3 && h.peers == 2; }, 30s))
        << cluster.node(i).log_tail();
  }
  ASSERT_TRUE(cluster.hand(1, "after", cluster.report(w, "after it left")));
  EXPECT_EQ(joiner.stop(), 0);
  cluster.stop_and_expect_one_chain();
}

}  // namespace
}  // namespace mchain
