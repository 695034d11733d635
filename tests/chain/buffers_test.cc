#include "chain/node/buffers.h"

#include <gtest/gtest.h>

#include "test_world.h"

namespace mchain {
namespace {

using testing::kT0;
using testing::must;

class Buffers : public ::testing::Test {
 protected:
  testing::World w;
  BufferOptions options{.max_data_packages = 4,
                        .max_data_bytes = 1 << 20,
                        .max_policy_packages = 100,
                        .data_window = 1000,
                        .policy_window = 500};

  Package policy(std::uint64_t version, TimeUs t) const {
    PolicyRecord p = w.policy1;
    p.version = version;
    return must(make_policy_package({w.vm, "alice", "node-1", t}, p, w.signers("node-1")));
  }

  static std::vector<TimeUs> times(const std::vector<Package>& packages) {
    std::vector<TimeUs> out;
    for (const Package& p : packages) out.push_back(p.header().timestamp);
    return out;
  }
};

TEST_F(Buffers, DataWaitsForItsWindowThenLeavesOldestFirst) {
  CandidateBuffers b(options);
  const TimeUs now = kT0 + 10'000;
  EXPECT_EQ(b.add(w.data(kT0 + 300), now), CandidateBuffers::Added::queued);
  EXPECT_EQ(b.add(w.data(kT0 + 100), now + 10), CandidateBuffers::Added::queued);
  EXPECT_EQ(b.add(w.data(kT0 + 200), now + 20), CandidateBuffers::Added::queued);
  EXPECT_FALSE(b.take_due(BlockType::data, now + 999));
  EXPECT_EQ(b.next_deadline(), now + 1000);
  auto taken = b.take_due(BlockType::data, now + 1000);
  ASSERT_TRUE(taken);
  EXPECT_EQ(times(*taken), (std::vector<TimeUs>{kT0 + 100, kT0 + 200, kT0 + 300}));
  EXPECT_EQ(b.size(BlockType::data), 0u);
  EXPECT_FALSE(b.next_deadline());
}

TEST_F(Buffers, DataCapsCloseACandidateAtOnce) {
  CandidateBuffers b(options);
  for (int i = 0; i < 6; ++i) b.add(w.data(kT0 + 100 + i), kT0);
  auto taken = b.take_due(BlockType::data, kT0);  // 4 packages reached: due without waiting
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->size(), 4u);
  EXPECT_EQ(b.size(BlockType::data), 2u);
  EXPECT_FALSE(b.take_due(BlockType::data, kT0));  // the rest waits for its window

  BufferOptions by_bytes = options;
  by_bytes.max_data_packages = 100;
  by_bytes.max_data_bytes = 2 * w.data(kT0).encode().size();
  CandidateBuffers small(by_bytes);
  for (int i = 0; i < 3; ++i) small.add(w.data(kT0 + 100 + i), kT0);
  auto by_size = small.take_due(BlockType::data, kT0);
  ASSERT_TRUE(by_size);
  EXPECT_EQ(by_size->size(), 2u);
}

TEST_F(Buffers, ANewerPolicyReplacesTheWaitingOne) {
  CandidateBuffers b(options);
  EXPECT_EQ(b.add(policy(2, kT0 + 100), kT0), CandidateBuffers::Added::queued);
  EXPECT_EQ(b.add(policy(3, kT0 + 110), kT0 + 100), CandidateBuffers::Added::replaced);
  EXPECT_EQ(b.add(policy(2, kT0 + 120), kT0 + 200), CandidateBuffers::Added::superseded);
  EXPECT_EQ(b.size(BlockType::policy), 1u);
  // The window runs from the first arrival, not from the replacement.
  EXPECT_FALSE(b.take_due(BlockType::policy, kT0 + 499));
  auto taken = b.take_due(BlockType::policy, kT0 + 500);
  ASSERT_TRUE(taken);
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ((*taken)[0].header().policy.version, 3u);
}

TEST_F(Buffers, BindingsAndMembershipRideInPolicyBlocksUnreplaced) {
  CandidateBuffers b(options);
  auto binding = [&](TimeUs t, BindingEvent e) {
    return must(make_binding_package({w.vm, "alice", "node-1", t}, w.policy1.ref(), e,
                                     w.vm_key.public_key(), w.signers("node-1")));
  };
  b.add(binding(kT0 + 1, BindingEvent::stopped), kT0);
  b.add(binding(kT0 + 2, BindingEvent::started), kT0);
  b.add(policy(2, kT0 + 3), kT0);
  EXPECT_EQ(b.size(BlockType::policy), 3u);
  EXPECT_EQ(b.size(BlockType::data), 0u);
  auto taken = b.take_due(BlockType::policy, kT0 + 500);
  ASSERT_TRUE(taken);
  EXPECT_EQ(times(*taken), (std::vector<TimeUs>{kT0 + 1, kT0 + 2, kT0 + 3}));  // arrival order
}

TEST_F(Buffers, DuplicatesRemovalAndPutBack) {
  CandidateBuffers b(options);
  Package a = w.data(kT0 + 100);
  Package c = w.data(kT0 + 101);
  EXPECT_EQ(b.add(a, kT0), CandidateBuffers::Added::queued);
  EXPECT_EQ(b.add(a, kT0), CandidateBuffers::Added::duplicate);
  b.add(c, kT0);
  b.remove({a.id()});  // confirmed in another leader's block
  EXPECT_FALSE(b.contains(a.id()));
  auto taken = b.take_due(BlockType::data, kT0 + 1000);
  ASSERT_TRUE(taken);
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ((*taken)[0].id(), c.id());
  b.put_back(std::move(*taken), kT0);  // the round failed: due again at once
  EXPECT_TRUE(b.contains(c.id()));
  EXPECT_TRUE(b.take_due(BlockType::data, kT0 + 1000));
}

}  // namespace
}  // namespace mchain
