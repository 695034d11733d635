// Three nodes as three processes (mchain_test_node), each with its own store, talking over TLS
// on 127.0.0.1 and started from one genesis file: packages handed to different nodes are
// confirmed, and every store ends with the same semi-finished blocks.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "chain/node_cluster.h"
#include "chain/test_world.h"
#include "temp_dir.h"

namespace mchain {
namespace {

using namespace std::chrono_literals;

TEST(NodeProcesses, ThreeProcessesConfirmTheSameBlocks) {
  testing::TempDir tmp("mchain-procs");
  testing::World w;
  testing::TestCluster cluster(tmp.path());
  ASSERT_TRUE(cluster.ok());
  ASSERT_TRUE(cluster.start_all());
  // Gossip is not kept for peers that are not linked yet: hand packages once all are linked.
  ASSERT_TRUE(cluster.wait_linked(30s));
  ASSERT_TRUE(cluster.setup_world(w));
  for (int i = 0; i < 6; ++i) {
    const std::string name = "report-" + std::to_string(i);
    ASSERT_TRUE(cluster.hand(static_cast<std::size_t>(i % 3), name,
                             cluster.report(w, "report " + std::to_string(i))));
  }

  // Let the last round reach every node, then stop them all cleanly and read their stores.
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(cluster.stop_all());
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    EXPECT_EQ(cluster.missing_packages(i), std::vector<std::string>{}) << cluster.id(i);
  }
  auto confirmed = cluster.stored_confirmed();
  ASSERT_EQ(confirmed.size(), 3u);
  EXPECT_GE(confirmed[0].size(), 4u);
  EXPECT_EQ(confirmed[0], confirmed[1]);
  EXPECT_EQ(confirmed[1], confirmed[2]);
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

}  // namespace
}  // namespace mchain
