// Layer-1 consensus over the real peer network: three nodes, each with its own store and
// NodeService, talk only through TLS links on 127.0.0.1. Packages submitted at any node are
// confirmed in the same semi-finished blocks on every node. (The multi-process cluster, with
// catch-up and a killed node, is the next step of the several-hosts work.)
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "chain/net/peer_network.h"
#include "chain/node/service.h"
#include "chain/test_util.h"
#include "chain/test_world.h"
#include "temp_dir.h"

namespace mchain {
namespace {

using namespace std::chrono_literals;
using testing::must;

struct Host {
  std::string id;
  crypto::PrivateKey key = testing::make_key();
  std::unique_ptr<Store> store;
  std::unique_ptr<net::PeerNetwork> network;
  std::unique_ptr<net::NetTransport> transport;
  std::unique_ptr<NodeService> service;
  // Set once the service exists; messages that arrive before are dropped (none are sent).
  std::atomic<NodeService*> inbox{nullptr};
};

class NetCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    const TimeUs t0 = now_us() - 1'000'000;
    std::vector<std::string> pool;
    for (int i = 1; i <= 3; ++i) {
      hosts_.push_back(std::make_unique<Host>());
      hosts_.back()->id = "node-" + std::to_string(i);
      pool.push_back(hosts_.back()->id);
    }
    keys_ = [this](const std::string& id) -> std::optional<crypto::PublicKey> {
      for (const auto& h : hosts_) {
        if (h->id == id) return h->key.public_key();
      }
      return std::nullopt;
    };
    // The lower id dials: start from the highest, so each node knows the ports it dials.
    std::map<std::string, std::uint16_t> ports;
    for (auto it = hosts_.rbegin(); it != hosts_.rend(); ++it) {
      Host& h = **it;
      StoreOptions store_options;
      store_options.sync = false;  // crash safety is the crash test's business
      h.store = must(Store::open(dir_ / h.id, store_options));
      for (const auto& member : hosts_) {
        ASSERT_TRUE(h.store->add_genesis_node(member->id, member->key.public_key(), t0));
      }
      net::PeerNetwork::Options options;
      options.node_id = h.id;
      for (const auto& [id, port] : ports) options.peers.push_back({id, "127.0.0.1", port});
      options.log = [](std::string_view) {};
      Host* self = &h;
      auto network = net::PeerNetwork::start(options, h.key, keys_,
                                             [self](const std::string& from, const Bytes& message) {
                                               if (NodeService* service = self->inbox.load())
                                                 service->deliver(from, message);
                                             });
      ASSERT_TRUE(network) << network.error().message;
      h.network = std::move(*network);
      ports[h.id] = h.network->port();
      h.transport = std::make_unique<net::NetTransport>(*h.network);

      ServiceConfig config;
      config.consensus = {h.id, &h.key, pool, {}, 120'000'000};
      config.consensus.buffers.data_window = 50'000;  // 50 ms
      config.consensus.buffers.policy_window = 50'000;
      // Mined and required difficulty agree: a peer's block of another difficulty is bad data,
      // and its sender would be removed.
      config.mining = {.data_diff = 8, .policy_diff = 8, .slice = {0, 0, UINT64_MAX}};
      config.consensus.data_diff = config.consensus.policy_diff = 8;
      config.miner_threads = 1;
      config.tick = 5'000;
      h.service = std::make_unique<NodeService>(config, *h.store, *h.transport);
      h.inbox = h.service.get();
    }
  }

  void TearDown() override {
    // The networks stop first, so that no delivery reaches a service that is going away; they
    // are destroyed only after the services, whose threads may still send through them.
    for (auto& h : hosts_) h->network->stop();
    for (auto& h : hosts_) {
      h->inbox = nullptr;
      h->service.reset();
      h->transport.reset();
      h->network.reset();
      h->store.reset();
    }
  }

  // Generous bounds: a failure must fail the test, not hang the suite.
  static Result<Hash256> await(std::future<Result<Hash256>> f) {
    if (f.wait_for(60s) != std::future_status::ready) return fail("timed out");
    return f.get();
  }

  bool wait_until(const std::function<bool()>& done) {
    for (auto deadline = std::chrono::steady_clock::now() + 60s;
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(20ms)) {
      if (done()) return true;
    }
    return done();
  }

  // Every node holds the package, in the same semi-finished block.
  bool confirmed_everywhere(const Package& p) {
    return wait_until([&] {
      std::optional<Hash256> block;
      for (const auto& h : hosts_) {
        auto where = h->store->find_package(p.id());
        if (!where || (block && *block != where->semi_finished)) return false;
        block = where->semi_finished;
      }
      return true;
    });
  }

  PackageSigners signers(const crypto::PrivateKey& node) { return {&w_.vm_key, &w_.alice, &node}; }

  testing::World w_;
  testing::TempDir tmp_{"mchain-net-cluster"};
  const std::filesystem::path dir_ = tmp_.path();
  std::vector<std::unique_ptr<Host>> hosts_;
  net::PeerNetwork::Admission keys_;
};

TEST_F(NetCluster, PackagesFromEveryNodeConfirmInTheSameBlocksEverywhere) {
  ASSERT_TRUE(wait_until([&] {
    for (const auto& h : hosts_) {
      if (h->network->snapshot().connected.size() != 2) return false;
    }
    return true;
  })) << "the three nodes did not connect";

  Host& n1 = *hosts_[0];
  Host& n2 = *hosts_[1];
  Host& n3 = *hosts_[2];
  // Setup at node-1 (the VM runs there), then reports submitted at every node: each node
  // validates and gossips what it is handed, wherever it was produced.
  auto user = must(make_membership_package(
      {Uuid{}, "alice", "node-1", now_us()},
      MembershipRecord{MembershipAction::register_user, "alice", w_.alice.public_key()},
      {nullptr, &w_.alice, &n1.key}));
  ASSERT_TRUE(await(n1.service->submit(user)));
  ASSERT_TRUE(confirmed_everywhere(user));
  auto binding =
      must(make_binding_package({w_.vm, "alice", "node-1", now_us()}, PolicyRef{},
                                BindingEvent::started, w_.vm_key.public_key(), signers(n1.key)));
  ASSERT_TRUE(await(n2.service->submit(binding)));
  ASSERT_TRUE(confirmed_everywhere(binding));
  auto policy =
      must(make_policy_package({w_.vm, "alice", "node-1", now_us()}, w_.policy1, signers(n1.key)));
  ASSERT_TRUE(await(n3.service->submit(policy)));
  ASSERT_TRUE(confirmed_everywhere(policy));

  std::vector<Package> reports;
  std::vector<std::future<Result<Hash256>>> pending;
  for (int i = 0; i < 9; ++i) {
    reports.push_back(
        must(make_data_package({w_.vm, "alice", "node-1", now_us()}, w_.policy1.ref(), w_.data_key,
                               as_bytes("report " + std::to_string(i)), signers(n1.key))));
    pending.push_back(hosts_[i % 3]->service->submit(reports.back()));
  }
  for (auto& f : pending) {
    auto confirmed = await(std::move(f));
    ASSERT_TRUE(confirmed) << confirmed.error().message;
  }
  for (const Package& r : reports) EXPECT_TRUE(confirmed_everywhere(r));

  // Layer 1 agrees: the same semi-finished blocks, in the same order, on every node.
  ASSERT_TRUE(wait_until([&] {
    return n1.store->confirmed() == n2.store->confirmed() &&
           n2.store->confirmed() == n3.store->confirmed();
  }));
  EXPECT_GE(n1.store->confirmed().size(), 4u);
  for (const auto& h : hosts_) {
    const net::NetMetrics m = h->network->snapshot();
    EXPECT_EQ(m.refused_unknown + m.refused_wrong_key + m.refused_handshake, 0u) << h->id;
  }
}

}  // namespace
}  // namespace mchain
