// The peer network over real TLS on 127.0.0.1 (ports chosen by the OS), several nodes in one
// process, plus the frame codec byte by byte. Waits poll with generous limits; nothing asserts
// on timing.
#include <gtest/gtest.h>

#include <algorithm>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "chain/net/framing.h"
#include "chain/net/peer_network.h"
#include "chain/net/tls_identity.h"
#include "chain/test_util.h"

namespace mchain::net {
namespace {

using crypto::PrivateKey;
using crypto::PublicKey;
using crypto::SigAlg;
using mchain::testing::make_key;
using mchain::testing::must;
using namespace std::chrono_literals;

// --- framing -------------------------------------------------------------------------------

Bytes payload_of(std::size_t n, std::uint8_t seed) {
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(seed + i * 7);
  return out;
}

TEST(Framing, EncodesBigEndianLength) {
  Bytes frame = encode_frame(payload_of(0x0102, 1));
  ASSERT_EQ(frame.size(), 4u + 0x0102);
  EXPECT_EQ(frame[0], 0);
  EXPECT_EQ(frame[1], 0);
  EXPECT_EQ(frame[2], 1);
  EXPECT_EQ(frame[3], 2);
}

TEST(Framing, DecodesWhateverWayTheStreamIsSplit) {
  std::vector<Bytes> payloads = {payload_of(5, 1), payload_of(0, 2), payload_of(300, 3),
                                 payload_of(1, 4)};
  Bytes stream;
  for (const auto& p : payloads) {
    Bytes f = encode_frame(p);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    FrameDecoder decoder(1024);
    ASSERT_TRUE(decoder.feed(ByteView(stream).first(split)));
    ASSERT_TRUE(decoder.feed(ByteView(stream).subspan(split)));
    for (const auto& p : payloads) {
      auto got = decoder.next();
      ASSERT_TRUE(got.has_value()) << "split at " << split;
      EXPECT_EQ(*got, p) << "split at " << split;
    }
    EXPECT_FALSE(decoder.next().has_value());
  }
}

TEST(Framing, DecodesOneByteAtATime) {
  Bytes stream = encode_frame(payload_of(100, 9));
  FrameDecoder decoder(100);
  for (std::size_t i = 0; i < stream.size(); ++i) {
    EXPECT_FALSE(decoder.next().has_value());
    ASSERT_TRUE(decoder.feed(ByteView(stream).subspan(i, 1)));
  }
  EXPECT_EQ(decoder.next(), payload_of(100, 9));
}

TEST(Framing, ZeroLengthFrameIsAFrame) {
  FrameDecoder decoder(16);
  ASSERT_TRUE(decoder.feed(encode_frame({})));
  auto got = decoder.next();
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->empty());
}

TEST(Framing, OversizeHeaderFailsBeforeThePayloadArrives) {
  FrameDecoder decoder(100);
  Bytes frame = encode_frame(payload_of(101, 0));
  auto fed = decoder.feed(ByteView(frame).first(4));
  ASSERT_FALSE(fed);
  EXPECT_NE(fed.error().message.find("exceeds"), std::string::npos);
  EXPECT_TRUE(decoder.failed());
  EXPECT_FALSE(decoder.feed(encode_frame({})));
  EXPECT_FALSE(decoder.next().has_value());
}

TEST(Framing, FrameAtTheCapIsAccepted) {
  FrameDecoder decoder(100);
  ASSERT_TRUE(decoder.feed(encode_frame(payload_of(100, 0))));
  EXPECT_EQ(decoder.next(), payload_of(100, 0));
}

TEST(Framing, HelloAndGossipCarryTheirKind) {
  FrameDecoder decoder;
  ASSERT_TRUE(decoder.feed(encode_hello("node-1")));
  ASSERT_TRUE(decoder.feed(encode_gossip(payload_of(3, 0))));
  Bytes hello = *decoder.next();
  EXPECT_EQ(hello[0], static_cast<std::uint8_t>(FrameKind::kHello));
  EXPECT_EQ(std::string(hello.begin() + 1, hello.end()), "node-1");
  Bytes gossip = *decoder.next();
  EXPECT_EQ(gossip[0], static_cast<std::uint8_t>(FrameKind::kGossip));
  EXPECT_EQ(Bytes(gossip.begin() + 1, gossip.end()), payload_of(3, 0));
}

TEST(Framing, AgentFramesCarryTheirKind) {
  FrameDecoder decoder;
  ASSERT_TRUE(decoder.feed(encode_agent(payload_of(5, 2))));
  Bytes agent = *decoder.next();
  EXPECT_EQ(agent[0], 6);
  EXPECT_EQ(agent[0], static_cast<std::uint8_t>(FrameKind::kAgent));
  EXPECT_EQ(Bytes(agent.begin() + 1, agent.end()), payload_of(5, 2));
}

// --- helpers for the network tests ---------------------------------------------------------

// The admitted keys, replaceable while the networks run (a membership change).
class Registry {
 public:
  void add(const std::string& id, const PublicKey& key) {
    std::lock_guard lock(mutex_);
    keys_.insert_or_assign(id, key);
  }
  void remove(const std::string& id) {
    std::lock_guard lock(mutex_);
    keys_.erase(id);
  }
  PeerNetwork::Admission admission() {
    return [this](const std::string& id) -> std::optional<PublicKey> {
      std::lock_guard lock(mutex_);
      auto it = keys_.find(id);
      if (it == keys_.end()) return std::nullopt;
      return it->second;
    };
  }

 private:
  std::mutex mutex_;
  std::map<std::string, PublicKey> keys_;
};

class Inbox {
 public:
  PeerNetwork::Deliver deliver() {
    return [this](const std::string& from, const Bytes& message) {
      std::lock_guard lock(mutex_);
      received_.emplace_back(from, message);
    };
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return received_.size();
  }
  std::size_t count(const Bytes& message) const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(std::count_if(
        received_.begin(), received_.end(), [&](const auto& r) { return r.second == message; }));
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, Bytes>> received_;
};

// What on_agent_message received, apart from what Deliver (consensus) received.
class AgentInbox {
 public:
  PeerNetwork::AgentDeliver deliver() {
    return [this](const std::string& from, Bytes message) {
      std::lock_guard lock(mutex_);
      received_.emplace_back(from, std::move(message));
    };
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return received_.size();
  }
  std::vector<std::pair<std::string, Bytes>> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, Bytes>> received_;
};

// Polls `done` until it holds or `limit` passes.
bool eventually(const std::function<bool()>& done, std::chrono::seconds limit = 30s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

struct Node {
  Node(std::string node_id, SigAlg alg) : id(std::move(node_id)), key(make_key(alg)) {}
  std::string id;
  PrivateKey key;
  Inbox inbox;
  AgentInbox agent;
  std::unique_ptr<PeerNetwork> net;

  NetMetrics metrics() const { return net->snapshot(); }
  std::size_t connected() const { return net->snapshot().connected.size(); }
  PeerAddress address() const { return {id, "127.0.0.1", net->port()}; }
};

PeerNetwork::Options test_options(const std::string& id, std::vector<PeerAddress> peers) {
  PeerNetwork::Options o;
  o.node_id = id;
  o.peers = std::move(peers);
  o.initial_backoff = 20ms;
  o.max_backoff = 300ms;
  // Quiet unless asked for: refusals are expected in these tests.
  if (std::getenv("MCHAIN_NET_LOG") == nullptr) o.log = [](std::string_view) {};
  return o;
}

// Every node started this way takes agent messages into node.agent.
void start(Node& node, Registry& registry, PeerNetwork::Options options) {
  if (!options.on_agent_message) options.on_agent_message = node.agent.deliver();
  node.net = must(
      PeerNetwork::start(std::move(options), node.key, registry.admission(), node.inbox.deliver()));
}

void start(Node& node, Registry& registry, std::vector<PeerAddress> peers = {}) {
  start(node, registry, test_options(node.id, std::move(peers)));
}

// Registers a, b and c, starts them as a full mesh and waits until every link is up.
bool start_full_mesh(Registry& registry, Node& a, Node& b, Node& c) {
  for (Node* n : {&a, &b, &c}) registry.add(n->id, n->key.public_key());
  start(c, registry);
  start(b, registry, {c.address()});
  start(a, registry, {b.address(), c.address()});
  return eventually([&] { return a.connected() == 2 && b.connected() == 2 && c.connected() == 2; });
}

Bytes message(std::string_view text) {
  auto v = as_bytes(text);
  return Bytes(v.begin(), v.end());
}

// A bare TLS client speaking the wire format by hand: it can claim any id, send anything, and
// never read.
class RawClient {
 public:
  explicit RawClient(const PrivateKey& key)
      : ssl_(must(make_tls_context(key, "raw")).release()), stream_(io_, ssl_) {}

  bool connect(std::uint16_t port) {
    asio::error_code ec;
    stream_.lowest_layer().connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    if (!ec) stream_.handshake(asio::ssl::stream_base::client, ec);
    return !ec;
  }
  bool send(const Bytes& bytes) {
    asio::error_code ec;
    asio::write(stream_, asio::buffer(bytes), ec);
    return !ec;
  }

 private:
  asio::io_context io_;
  asio::ssl::context ssl_;
  asio::ssl::stream<asio::ip::tcp::socket> stream_;
};

// --- network tests -------------------------------------------------------------------------

class FullMesh : public ::testing::TestWithParam<SigAlg> {};

TEST_P(FullMesh, EveryNodeDeliversEveryMessageExactlyOnce) {
  Registry registry;
  Node a("a", GetParam()), b("b", GetParam()), c("c", GetParam());
  ASSERT_TRUE(start_full_mesh(registry, a, b, c));

  constexpr int kPerNode = 10;
  for (int i = 0; i < kPerNode; ++i) {
    for (Node* n : {&a, &b, &c}) {
      ASSERT_TRUE(n->net->broadcast(message(n->id + "-" + std::to_string(i))));
    }
  }
  ASSERT_TRUE(eventually([&] {
    return a.inbox.size() >= 2 * kPerNode && b.inbox.size() >= 2 * kPerNode &&
           c.inbox.size() >= 2 * kPerNode;
  }));
  // Let the flooded copies arrive too; they must all be dropped as duplicates.
  ASSERT_TRUE(eventually([&] {
    std::uint64_t dups = 0;
    for (Node* n : {&a, &b, &c}) dups += n->metrics().duplicates;
    return dups >= 3 * 2 * kPerNode;
  }));
  for (Node* n : {&a, &b, &c}) {
    EXPECT_EQ(n->inbox.size(), 2u * kPerNode) << n->id;
    for (Node* sender : {&a, &b, &c}) {
      for (int i = 0; i < kPerNode; ++i) {
        Bytes m = message(sender->id + "-" + std::to_string(i));
        EXPECT_EQ(n->inbox.count(m), sender == n ? 0u : 1u) << n->id << " got " << sender->id << i;
      }
    }
    NetMetrics m = n->metrics();
    EXPECT_EQ(m.delivered, 2u * kPerNode);
    EXPECT_EQ(m.refused_unknown + m.refused_wrong_key + m.refused_handshake, 0u);
    EXPECT_GT(m.frames_in, 0u);
    EXPECT_GT(m.bytes_out, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Algorithms, FullMesh,
                         ::testing::Values(SigAlg::ecdsa_p256_sha256, SigAlg::ed25519),
                         [](const auto& info) {
                           return info.param == SigAlg::ed25519 ? std::string("Ed25519")
                                                                : std::string("EcdsaP256");
                         });

TEST(PeerNetwork, MixedKeyAlgorithmsConnect) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ed25519);
  registry.add("a", a.key.public_key());
  registry.add("b", b.key.public_key());
  start(b, registry);
  start(a, registry, {b.address()});
  ASSERT_TRUE(eventually([&] { return a.connected() == 1 && b.connected() == 1; }));
  ASSERT_TRUE(b.net->broadcast(message("from b")));
  ASSERT_TRUE(eventually([&] { return a.inbox.count(message("from b")) == 1; }));
}

TEST(PeerNetwork, LineTopologyFloodsToTheFarEnd) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ecdsa_p256_sha256),
      c("c", SigAlg::ecdsa_p256_sha256);
  for (Node* n : {&a, &b, &c}) registry.add(n->id, n->key.public_key());
  start(c, registry);
  start(b, registry, {c.address()});
  start(a, registry, {b.address()});  // a and c are never linked
  ASSERT_TRUE(
      eventually([&] { return a.connected() == 1 && b.connected() == 2 && c.connected() == 1; }));

  ASSERT_TRUE(a.net->broadcast(message("from a")));
  ASSERT_TRUE(c.net->broadcast(message("from c")));
  ASSERT_TRUE(eventually([&] {
    return c.inbox.count(message("from a")) == 1 && a.inbox.count(message("from c")) == 1 &&
           b.inbox.size() == 2;
  }));
  EXPECT_EQ(a.metrics().connected, std::set<std::string>{"b"});
}

// b checks before it relays (as consensus does) and approves only messages that start with
// "good": the rest reaches b but never c.
struct CheckingRelay {
  std::atomic<PeerNetwork*> net{nullptr};
  Inbox inbox;
  PeerNetwork::Deliver deliver() {
    return [this, record = inbox.deliver()](const std::string& from, const Bytes& m) {
      record(from, m);
      const std::string_view good = "good";
      if (m.size() >= good.size() && std::equal(good.begin(), good.end(), m.begin())) {
        if (PeerNetwork* n = net.load()) n->relay(m, from);
      }
    };
  }
};

TEST(PeerNetwork, ARelayAfterCheckPassesOnOnlyWhatTheApplicationApproves) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ecdsa_p256_sha256),
      c("c", SigAlg::ecdsa_p256_sha256);
  for (Node* n : {&a, &b, &c}) registry.add(n->id, n->key.public_key());
  CheckingRelay relay;
  start(c, registry);
  auto b_options = test_options("b", {c.address()});
  b_options.relay_after_check = true;
  b.net =
      must(PeerNetwork::start(std::move(b_options), b.key, registry.admission(), relay.deliver()));
  relay.net = b.net.get();
  start(a, registry, {b.address()});  // a and c are never linked
  ASSERT_TRUE(
      eventually([&] { return a.connected() == 1 && b.connected() == 2 && c.connected() == 1; }));

  Bytes big(100'000, 'x');
  std::copy_n("good", 4, big.begin());
  ASSERT_TRUE(a.net->broadcast(message("bad: forged")));
  ASSERT_TRUE(a.net->broadcast(message("good: checked")));
  ASSERT_TRUE(a.net->broadcast(big));
  ASSERT_TRUE(eventually([&] { return c.inbox.size() == 2 && relay.inbox.size() == 3; }));
  std::this_thread::sleep_for(100ms);  // time for anything unwanted to arrive
  EXPECT_EQ(c.inbox.count(message("good: checked")), 1u);
  EXPECT_EQ(c.inbox.count(big), 1u);
  EXPECT_EQ(c.inbox.count(message("bad: forged")), 0u);
  // The large one went from b to c as an announce, a request and one copy.
  EXPECT_EQ(b.metrics().announced, 1u);
  EXPECT_EQ(b.metrics().served, 1u);
  EXPECT_EQ(c.metrics().requested, 1u);
}

TEST(PeerNetwork, ALargeMessageCrossesAFullMeshOncePerLink) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ecdsa_p256_sha256),
      c("c", SigAlg::ecdsa_p256_sha256);
  ASSERT_TRUE(start_full_mesh(registry, a, b, c));
  const Bytes big(1'000'000, 'y');
  ASSERT_TRUE(a.net->broadcast(big));
  ASSERT_TRUE(eventually([&] {
    return b.inbox.count(big) == 1 && c.inbox.count(big) == 1 && b.metrics().announced == 1 &&
           c.metrics().announced == 1;
  }));
  std::this_thread::sleep_for(100ms);
  // b and c flood it on by hash; a copy crosses b–c only if an announce outran a's own copy.
  const std::uint64_t served = b.metrics().served + c.metrics().served;
  EXPECT_LE(served, 1u);
  EXPECT_LT(b.metrics().bytes_in + c.metrics().bytes_in, (2 + served) * big.size() + 64'000);
  EXPECT_EQ(b.inbox.count(big) + c.inbox.count(big), 2u);
}

TEST(PeerNetwork, UnregisteredKeyIsRefusedAndNeverDelivered) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256);
  registry.add("a", a.key.public_key());
  start(a, registry);

  // A full node whose key nobody admitted: it dials a, sends its hello, and is refused.
  // Its id sorts below "a", so it is the one that dials; it admits a's key, nobody admits its own.
  Node x("0-intruder", SigAlg::ecdsa_p256_sha256);
  start(x, registry, {a.address()});
  ASSERT_TRUE(eventually([&] { return a.metrics().refused_unknown >= 1; }));
  ASSERT_TRUE(x.net->broadcast(message("intrusion")));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(a.inbox.size(), 0u);
  EXPECT_TRUE(a.metrics().connected.empty());

  // The same through a bare client naming an id that is not admitted.
  RawClient raw(make_key());
  ASSERT_TRUE(raw.connect(a.net->port()));
  auto before = a.metrics().refused_unknown;
  raw.send(encode_hello("stranger"));
  raw.send(encode_gossip(message("intrusion 2")));
  ASSERT_TRUE(eventually([&] { return a.metrics().refused_unknown > before; }));
  EXPECT_EQ(a.inbox.size(), 0u);
  EXPECT_EQ(a.metrics().delivered, 0u);
}

TEST(PeerNetwork, RegisteredKeyClaimingAnotherIdIsRefused) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ecdsa_p256_sha256),
      c("c", SigAlg::ed25519);
  for (Node* n : {&a, &b, &c}) registry.add(n->id, n->key.public_key());
  start(a, registry);

  // c's (admitted) key, claiming to be b.
  RawClient impostor(c.key);
  ASSERT_TRUE(impostor.connect(a.net->port()));
  impostor.send(encode_hello("b"));
  impostor.send(encode_gossip(message("forged")));
  ASSERT_TRUE(eventually([&] { return a.metrics().refused_wrong_key >= 1; }));
  EXPECT_EQ(a.inbox.size(), 0u);
  EXPECT_TRUE(a.metrics().connected.empty());

  // A dialled server presenting the wrong key for the id it is dialled as is refused too:
  // a dials "z" at the address of a node holding c's key.
  registry.add("z", b.key.public_key());
  Node fake("z", SigAlg::ecdsa_p256_sha256);
  fake.key = must(PrivateKey::from_pem(c.key.pem()));
  start(fake, registry);
  Node d("0", SigAlg::ecdsa_p256_sha256);
  registry.add("0", d.key.public_key());
  start(d, registry, {fake.address()});
  ASSERT_TRUE(eventually([&] { return d.metrics().refused_wrong_key >= 1; }));
  EXPECT_TRUE(d.metrics().connected.empty());
}

TEST(PeerNetwork, RemovedKeyIsDisconnectedAndRefusedOnReconnect) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ecdsa_p256_sha256),
      c("c", SigAlg::ecdsa_p256_sha256);
  ASSERT_TRUE(start_full_mesh(registry, a, b, c));

  registry.remove("c");
  a.net->recheck_admission();
  b.net->recheck_admission();
  ASSERT_TRUE(eventually([&] {
    return a.metrics().connected == std::set<std::string>{"b"} &&
           b.metrics().connected == std::set<std::string>{"a"};
  }));
  // a and b keep dialling c (they are the lower ids) and are refused each time.
  auto refused = a.metrics().refused_unknown;
  ASSERT_TRUE(eventually([&] { return a.metrics().refused_unknown > refused; }));
  EXPECT_EQ(c.connected(), 0u);

  ASSERT_TRUE(c.net->broadcast(message("from removed c")));
  ASSERT_TRUE(a.net->broadcast(message("from a")));
  ASSERT_TRUE(eventually([&] { return b.inbox.count(message("from a")) == 1; }));
  EXPECT_EQ(b.inbox.count(message("from removed c")), 0u);
  EXPECT_EQ(a.inbox.count(message("from removed c")), 0u);
}

TEST(PeerNetwork, RestartedPeerIsReconnectedWithBackoff) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ed25519);
  registry.add("a", a.key.public_key());
  registry.add("b", b.key.public_key());
  start(b, registry);
  std::uint16_t b_port = b.net->port();
  start(a, registry, {b.address()});
  ASSERT_TRUE(eventually([&] { return a.connected() == 1; }));

  b.net.reset();  // b goes down; a keeps redialling
  ASSERT_TRUE(eventually([&] { return a.connected() == 0 && a.metrics().reconnects >= 2; }));
  auto options = test_options("b", {});
  options.listen_port = b_port;
  start(b, registry, std::move(options));
  ASSERT_TRUE(eventually([&] { return a.connected() == 1 && b.connected() == 1; }));

  ASSERT_TRUE(a.net->broadcast(message("after restart")));
  ASSERT_TRUE(eventually([&] { return b.inbox.count(message("after restart")) == 1; }));
}

TEST(PeerNetwork, FrameOverTheCapClosesTheLink) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ecdsa_p256_sha256);
  registry.add("a", a.key.public_key());
  registry.add("b", b.key.public_key());
  auto b_options = test_options("b", {});
  b_options.max_frame = 64 * 1024;
  start(b, registry, std::move(b_options));
  start(a, registry, {b.address()});
  ASSERT_TRUE(eventually([&] { return a.connected() == 1 && b.connected() == 1; }));

  ASSERT_TRUE(a.net->broadcast(Bytes(100 * 1024, 0x5a)));
  ASSERT_TRUE(eventually([&] { return b.metrics().oversize_frames >= 1; }));
  EXPECT_EQ(b.inbox.size(), 0u);

  // The link comes back (a redials) and small messages flow again. A message sent while a
  // still holds the closed link is lost (gossip keeps nothing for absent peers), so keep
  // sending fresh ones until one arrives.
  int sent = 0;
  ASSERT_TRUE(eventually([&] {
    if (a.connected() == 1) {
      EXPECT_TRUE(a.net->broadcast(message("small " + std::to_string(sent++))));
    }
    for (int i = 0; i < sent; ++i) {
      if (b.inbox.count(message("small " + std::to_string(i))) == 1) return true;
    }
    return false;
  }));

  // Our own cap applies to what we send.
  EXPECT_FALSE(b.net->broadcast(Bytes(64 * 1024, 0)));
}

TEST(PeerNetwork, StuckPeerDoesNotStallTheOthers) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ecdsa_p256_sha256);
  PrivateKey stuck_key = make_key();
  registry.add("a", a.key.public_key());
  registry.add("b", b.key.public_key());
  registry.add("stuck", stuck_key.public_key());
  start(b, registry);
  auto a_options = test_options("a", {b.address()});
  a_options.max_queue_messages = 32;
  start(a, registry, std::move(a_options));

  // A peer that completes the handshake and hello, then never reads.
  RawClient stuck(stuck_key);
  ASSERT_TRUE(stuck.connect(a.net->port()));
  ASSERT_TRUE(stuck.send(encode_hello("stuck")));
  ASSERT_TRUE(eventually([&] {
    return a.metrics().connected == std::set<std::string>{"b", "stuck"};
  }));

  // Batches small enough for b's queue; the stuck peer's queue only grows, until it overflows
  // once the socket buffers are full.
  constexpr std::size_t kBatch = 8;
  std::size_t sent = 0;
  for (int round = 0; round < 400 && a.metrics().queue_overflows == 0; ++round) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      Bytes m(64 * 1024, static_cast<std::uint8_t>(round));
      m[0] = static_cast<std::uint8_t>(i);
      ASSERT_TRUE(a.net->broadcast(std::move(m)));
      ++sent;
    }
    ASSERT_TRUE(eventually([&] { return b.inbox.size() == sent; })) << "round " << round;
  }
  NetMetrics m = a.metrics();
  EXPECT_GE(m.queue_overflows, 1u);
  EXPECT_EQ(m.connected, std::set<std::string>{"b"});
  EXPECT_EQ(b.inbox.size(), sent);
  ASSERT_TRUE(a.net->broadcast(message("still flowing")));
  ASSERT_TRUE(eventually([&] { return b.inbox.count(message("still flowing")) == 1; }));
}

TEST(PeerNetwork, NetTransportBroadcastsAsTheLocalNode) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ecdsa_p256_sha256);
  registry.add("a", a.key.public_key());
  registry.add("b", b.key.public_key());
  start(b, registry);
  start(a, registry, {b.address()});
  ASSERT_TRUE(eventually([&] { return a.connected() == 1; }));

  NetTransport transport(*a.net);
  Transport& t = transport;
  t.broadcast("a", message("consensus"));
  ASSERT_TRUE(eventually([&] { return b.inbox.count(message("consensus")) == 1; }));
}

// --- agent messages ------------------------------------------------------------------------

TEST(PeerNetwork, AgentMessageReachesOnlyItsAddresseeAndNeverConsensus) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ecdsa_p256_sha256),
      c("c", SigAlg::ed25519);
  ASSERT_TRUE(start_full_mesh(registry, a, b, c));

  const Bytes secret = message("sealed VM key for b");
  ASSERT_TRUE(a.net->send_agent("b", secret));
  ASSERT_TRUE(eventually([&] { return b.agent.size() == 1; }));
  // Barriers: each link delivers in order, so once c has gossip that a and b sent after the
  // agent message, anything a or b had wrongly passed on to c would have arrived before it.
  ASSERT_TRUE(a.net->broadcast(message("barrier from a")));
  ASSERT_TRUE(b.net->broadcast(message("barrier from b")));
  ASSERT_TRUE(eventually([&] {
    return c.inbox.count(message("barrier from a")) == 1 &&
           c.inbox.count(message("barrier from b")) == 1 &&
           b.inbox.count(message("barrier from a")) == 1;
  }));
  using Received = std::vector<std::pair<std::string, Bytes>>;
  EXPECT_EQ(b.agent.received(), (Received{{"a", secret}}));
  EXPECT_EQ(a.agent.size(), 0u);
  EXPECT_EQ(c.agent.size(), 0u);
  for (Node* n : {&a, &b, &c}) EXPECT_EQ(n->inbox.count(secret), 0u) << n->id;
  EXPECT_EQ(a.metrics().agent_out, 1u);
  EXPECT_EQ(b.metrics().agent_in, 1u);
  EXPECT_EQ(c.metrics().agent_in, 0u);
  EXPECT_EQ(b.metrics().delivered, 1u);  // the barrier only

  // Neither deduplicated nor held against gossip: the same bytes again as an agent message,
  // then as gossip, then as an agent message once more all arrive.
  ASSERT_TRUE(a.net->send_agent("b", secret));
  ASSERT_TRUE(eventually([&] { return b.agent.size() == 2; }));
  ASSERT_TRUE(a.net->broadcast(secret));
  ASSERT_TRUE(eventually([&] { return b.inbox.count(secret) == 1 && c.inbox.count(secret) == 1; }));
  ASSERT_TRUE(a.net->send_agent("b", secret));
  ASSERT_TRUE(eventually([&] { return b.agent.size() == 3; }));
  EXPECT_EQ(b.agent.received(), (Received{{"a", secret}, {"a", secret}, {"a", secret}}));
  EXPECT_EQ(c.agent.size(), 0u);
  for (Node* n : {&a, &b, &c}) {
    NetMetrics m = n->metrics();
    EXPECT_EQ(m.agent_dropped, 0u) << n->id;
    EXPECT_EQ(m.refused_unknown + m.refused_wrong_key + m.refused_handshake, 0u) << n->id;
  }
}

TEST(PeerNetwork, AgentSendRefusesUnlinkedPeersAndOversizeMessages) {
  EXPECT_EQ(PeerNetwork::Options{}.max_agent_message, 256u << 10);
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ed25519),
      c("c", SigAlg::ecdsa_p256_sha256);
  for (Node* n : {&a, &b, &c}) registry.add(n->id, n->key.public_key());
  start(c, registry);
  start(b, registry);
  auto a_options = test_options("a", {b.address()});  // c runs and is admitted, but not linked
  a_options.max_agent_message = 1000;
  start(a, registry, std::move(a_options));
  ASSERT_TRUE(eventually([&] { return a.connected() == 1 && b.connected() == 1; }));

  for (const std::string peer : {"c", "nobody", "a"}) {
    auto sent = a.net->send_agent(peer, message("for " + peer));
    ASSERT_FALSE(sent) << peer;
    EXPECT_NE(sent.error().message.find("no established link"), std::string::npos)
        << sent.error().message;
  }
  auto big = a.net->send_agent("b", Bytes(1001, 1));
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().message.find("above the cap of 1000"), std::string::npos)
      << big.error().message;
  ASSERT_TRUE(a.net->send_agent("b", Bytes(1000, 2)));  // at the cap
  ASSERT_TRUE(eventually([&] { return b.agent.size() == 1; }));
  EXPECT_EQ(b.agent.received()[0].second, Bytes(1000, 2));

  // b's cap is the default; a's, lower, applies to what a receives: dropped there, link kept.
  EXPECT_FALSE(b.net->send_agent("a", Bytes((256u << 10) + 1, 3)));
  ASSERT_TRUE(b.net->send_agent("a", Bytes(256u << 10, 4)));
  ASSERT_TRUE(eventually([&] { return a.metrics().agent_dropped == 1; }));
  ASSERT_TRUE(b.net->send_agent("a", message("small")));
  ASSERT_TRUE(eventually([&] { return a.agent.size() == 1; }));
  EXPECT_EQ(a.agent.received()[0], std::make_pair(std::string("b"), message("small")));
  EXPECT_EQ(a.metrics().agent_in, 2u);
  EXPECT_EQ(a.metrics().reconnects, 0u);
  EXPECT_EQ(c.agent.size(), 0u);

  a.net->stop();
  EXPECT_FALSE(a.net->send_agent("b", message("after stop")));
}

TEST(PeerNetwork, AgentMessageWithoutACallbackIsDroppedWithALogLineAndTheLinkStays) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256), b("b", SigAlg::ecdsa_p256_sha256);
  registry.add("a", a.key.public_key());
  registry.add("b", b.key.public_key());
  std::mutex log_mutex;
  std::vector<std::string> b_log;
  auto b_options = test_options("b", {});
  b_options.log = [&](std::string_view line) {
    std::lock_guard lock(log_mutex);
    b_log.emplace_back(line);
  };
  // Started directly: start() would give b an agent callback.
  b.net = must(
      PeerNetwork::start(std::move(b_options), b.key, registry.admission(), b.inbox.deliver()));
  start(a, registry, {b.address()});
  ASSERT_TRUE(eventually([&] { return a.connected() == 1 && b.connected() == 1; }));

  ASSERT_TRUE(a.net->send_agent("b", message("nobody takes this")));
  ASSERT_TRUE(eventually([&] { return b.metrics().agent_dropped == 1; }));
  ASSERT_TRUE(a.net->broadcast(message("still linked")));
  ASSERT_TRUE(eventually([&] { return b.inbox.count(message("still linked")) == 1; }));
  EXPECT_EQ(b.inbox.count(message("nobody takes this")), 0u);
  EXPECT_EQ(b.metrics().delivered, 1u);
  EXPECT_EQ(a.metrics().reconnects, 0u);
  EXPECT_EQ(b.metrics().connected, std::set<std::string>{"a"});
  std::lock_guard lock(log_mutex);
  EXPECT_EQ(std::count_if(b_log.begin(), b_log.end(),
                          [](const std::string& line) {
                            return line.find(
                                       "dropped an agent message of 17 bytes from a: no "
                                       "agent callback") != std::string::npos;
                          }),
            1);
}

TEST(PeerNetwork, AgentFramesCountOnlyFromAnAdmittedPeerAfterItsHello) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256);
  PrivateKey raw_key = make_key();
  registry.add("a", a.key.public_key());
  registry.add("raw", raw_key.public_key());
  start(a, registry);

  // An admitted key that sends an agent frame before its hello.
  RawClient early(raw_key);
  ASSERT_TRUE(early.connect(a.net->port()));
  early.send(encode_agent(message("before hello")));
  ASSERT_TRUE(eventually([&] { return a.metrics().refused_handshake >= 1; }));

  // A key nobody admitted, under an id nobody admitted.
  RawClient stranger(make_key());
  ASSERT_TRUE(stranger.connect(a.net->port()));
  stranger.send(encode_hello("stranger"));
  stranger.send(encode_agent(message("from a stranger")));
  ASSERT_TRUE(eventually([&] { return a.metrics().refused_unknown >= 1; }));

  // The admitted peer after its hello: this one arrives, and only this one.
  RawClient admitted(raw_key);
  ASSERT_TRUE(admitted.connect(a.net->port()));
  admitted.send(encode_hello("raw"));
  admitted.send(encode_agent(message("from raw")));
  ASSERT_TRUE(eventually([&] { return a.agent.size() == 1; }));
  EXPECT_EQ(a.agent.received()[0], std::make_pair(std::string("raw"), message("from raw")));
  EXPECT_EQ(a.metrics().agent_in, 1u);
  EXPECT_EQ(a.inbox.size(), 0u);
}

TEST(PeerNetwork, StopIsIdempotentAndStartRejectsBadOptions) {
  Registry registry;
  Node a("a", SigAlg::ecdsa_p256_sha256);
  start(a, registry);
  a.net->stop();
  a.net->stop();
  EXPECT_FALSE(PeerNetwork::start(test_options("bad id!", {}), a.key, registry.admission(),
                                  a.inbox.deliver()));
  auto o = test_options("ok", {});
  o.listen_host = "not an address";
  EXPECT_FALSE(PeerNetwork::start(std::move(o), a.key, registry.admission(), a.inbox.deliver()));
}

}  // namespace
}  // namespace mchain::net
