// The one-host pipeline on its threads: submit returns when the semi-finished block is durable,
// wait_mature when a main-chain block holds the package.
#include "chain/node/service.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "temp_dir.h"
#include "test_world.h"

namespace mchain {
namespace {

using testing::must;
using namespace std::chrono_literals;

class Service : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = must(Store::open(dir_ / "chain"));
    t0_ = now_us() - 1'000'000;
    ASSERT_TRUE(store_->add_genesis_node("node-1", node_key_.public_key(), t0_));
    ServiceConfig config;
    config.consensus = {"node-1", &node_key_, {"node-1"}, {}, 120'000'000};
    config.consensus.buffers.data_window = 20'000;  // 20 ms
    config.consensus.buffers.policy_window = 20'000;
    config.mining = {.data_diff = 10, .policy_diff = 10, .slice = {0, 0, UINT64_MAX}};
    config.consensus.data_diff = config.consensus.policy_diff = 10;
    config.miner_threads = 1;
    config.tick = 2'000;
    service_ = std::make_unique<NodeService>(config, *store_, transport_);
  }

  void TearDown() override {
    service_.reset();
    store_.reset();
  }

  // Waits for a future with a generous bound, so that a bug fails the test instead of
  // hanging the suite. Not a timing assertion: the expected wait is milliseconds.
  static Result<Hash256> await(std::future<Result<Hash256>> f) {
    if (f.wait_for(60s) != std::future_status::ready) return fail("timed out");
    return f.get();
  }

  PackageSigners signers() { return {&w_.vm_key, &w_.alice, &node_key_}; }

  testing::World w_;
  crypto::PrivateKey node_key_ = testing::make_key();
  testing::TempDir tmp_{"mchain-service"};
  const std::filesystem::path dir_ = tmp_.path();
  std::unique_ptr<Store> store_;
  LocalTransport transport_;
  std::unique_ptr<NodeService> service_;
  TimeUs t0_ = 0;
};

TEST_F(Service, SubmitAnswersWhenDurableAndWaitMatureWhenMined) {
  const TimeUs t = now_us();
  auto user = must(make_membership_package(
      {Uuid{}, "alice", "node-1", t},
      MembershipRecord{MembershipAction::register_user, "alice", w_.alice.public_key()},
      {nullptr, &w_.alice, &node_key_}));
  auto confirmed = await(service_->submit(user));
  ASSERT_TRUE(confirmed) << confirmed.error().message;
  // Durable means in the store now, not later.
  auto where = store_->find_package(user.id());
  ASSERT_TRUE(where);
  EXPECT_EQ(where->semi_finished, *confirmed);

  auto binding =
      must(make_binding_package({w_.vm, "alice", "node-1", now_us()}, PolicyRef{},
                                BindingEvent::started, w_.vm_key.public_key(), signers()));
  ASSERT_TRUE(await(service_->submit(binding)));
  auto policy =
      must(make_policy_package({w_.vm, "alice", "node-1", now_us()}, w_.policy1, signers()));
  ASSERT_TRUE(await(service_->submit(policy)));
  std::vector<Package> reports;
  std::vector<std::future<Result<Hash256>>> pending;
  for (int i = 0; i < 5; ++i) {
    reports.push_back(must(make_data_package({w_.vm, "alice", "node-1", now_us()}, w_.policy1.ref(),
                                             w_.data_key, as_bytes("r"), signers())));
    pending.push_back(service_->submit(reports.back()));
  }
  for (auto& f : pending) ASSERT_TRUE(await(std::move(f)));

  auto block = await(service_->wait_mature(reports.back().id()));
  ASSERT_TRUE(block) << block.error().message;
  auto mined = must(store_->block(*block));
  EXPECT_TRUE(check_block_structure(mined));
  // Already mined: answered at once from the store.
  auto again = await(service_->wait_mature(user.id()));
  ASSERT_TRUE(again);
  EXPECT_TRUE(store_->has_block(*again));
}

TEST_F(Service, ARefusedPackageFailsItsFuture) {
  auto rogue = testing::make_key();
  auto forged = must(make_membership_package(
      {Uuid{}, "alice", "node-9", now_us()},
      MembershipRecord{MembershipAction::register_user, "alice", w_.alice.public_key()},
      {nullptr, &w_.alice, &rogue}));
  auto result = await(service_->submit(forged));
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("unknown-node"), std::string::npos)
      << result.error().message;
}

TEST_F(Service, StopFailsWhatIsStillWaiting) {
  auto never = service_->wait_mature(Hash256{});
  service_->stop();
  auto result = await(std::move(never));
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("stopped"), std::string::npos);
  EXPECT_FALSE(await(service_->submit(w_.data(now_us()))));
}

}  // namespace
}  // namespace mchain
