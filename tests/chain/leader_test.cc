#include "chain/node/leader.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "chain/crypto/hash.h"
#include "test_util.h"

namespace mchain {
namespace {

const std::vector<std::string> kPool{"node-1", "node-2", "node-3", "node-4"};

TEST(Leader, SameInputsSameLeaderWhateverThePoolOrder) {
  const Hash256 last = crypto::sha256(as_bytes("semi"));
  std::vector<std::string> shuffled{"node-3", "node-1", "node-4", "node-2"};
  for (std::uint64_t round = 0; round < 50; ++round) {
    EXPECT_EQ(testing::must(elect_leader(last, round, kPool)),
              testing::must(elect_leader(last, round, shuffled)));
  }
}

TEST(Leader, ChangesWithRoundAndSeed) {
  const Hash256 a = crypto::sha256(as_bytes("a"));
  const Hash256 b = crypto::sha256(as_bytes("b"));
  std::set<std::string> by_round, by_seed;
  for (std::uint64_t round = 0; round < 40; ++round) {
    by_round.insert(testing::must(elect_leader(a, round, kPool)));
  }
  for (int i = 0; i < 40; ++i) {
    const Hash256 seed = crypto::sha256(as_bytes(std::to_string(i)));
    by_seed.insert(testing::must(elect_leader(seed, 0, kPool)));
  }
  EXPECT_EQ(by_round.size(), kPool.size());
  EXPECT_EQ(by_seed.size(), kPool.size());
  EXPECT_NE(testing::must(elect_leader(a, 7, kPool)) + testing::must(elect_leader(a, 8, kPool)) +
                testing::must(elect_leader(a, 9, kPool)),
            testing::must(elect_leader(b, 7, kPool)) + testing::must(elect_leader(b, 8, kPool)) +
                testing::must(elect_leader(b, 9, kPool)));
}

// Deterministic inputs, so this is a fixed computation, not a flaky statistical test: over
// 30,000 rounds of a 3-node pool every node leads 10,000 ± 3%.
TEST(Leader, IsUniformOverThePool) {
  const std::vector<std::string> pool{"a", "b", "c"};
  const Hash256 last = crypto::sha256(as_bytes("uniform"));
  std::map<std::string, int> count;
  for (std::uint64_t round = 0; round < 30'000; ++round) {
    ++count[testing::must(elect_leader(last, round, pool))];
  }
  for (const auto& [node, n] : count) EXPECT_NEAR(n, 10'000, 300) << node;
}

TEST(Leader, RejectsEmptyOrRepeatedPools) {
  const Hash256 last{};
  EXPECT_FALSE(elect_leader(last, 0, {}));
  const std::vector<std::string> repeated{"node-1", "node-1"};
  EXPECT_FALSE(elect_leader(last, 0, repeated));
  const std::vector<std::string> one{"solo"};
  EXPECT_EQ(testing::must(elect_leader(last, 12, one)), "solo");
}

}  // namespace
}  // namespace mchain
