// Agent messages through NodeRuntime: two nodes of one genesis file, in this process, over TLS
// on 127.0.0.1. What one node's send_agent() sends reaches the other's on_agent_message, and
// consensus on either side never sees it (so it cannot be taken for a malformed message).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "chain/crypto/keyfile.h"
#include "chain/file_io.h"
#include "chain/node/runtime.h"
#include "chain/test_util.h"
#include "temp_dir.h"

namespace mchain {
namespace {

using namespace std::chrono_literals;
using testing::make_key;
using testing::must;

// A port nobody listens on right now (the OS's choice for a socket bound and closed again).
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::uint16_t port = 0;
  socklen_t size = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

bool eventually(const std::function<bool()>& done, std::chrono::seconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

Bytes text(std::string_view s) {
  ByteView v = as_bytes(s);
  return Bytes(v.begin(), v.end());
}

// Everything one runtime saw, from its network thread.
struct Seen {
  std::mutex mutex;
  std::vector<std::pair<std::string, Bytes>> agent;
  std::vector<Bytes> consensus;
  std::vector<std::string> misbehaviour;

  std::size_t agent_count() {
    std::lock_guard lock(mutex);
    return agent.size();
  }
};

TEST(NodeRuntimeAgent, AMessageReachesThePeersAgentCallbackOnly) {
  testing::TempDir dir("mchain-runtime-agent");
  const std::vector<std::string> ids = {"node-1", "node-2"};
  std::vector<crypto::PrivateKey> keys;
  std::string nodes_json;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    keys.push_back(make_key());
    ASSERT_TRUE(crypto::write_private_key_file(dir.path() / (ids[i] + ".key"), keys.back()));
    const std::uint16_t port = free_port();
    ASSERT_NE(port, 0);
    nodes_json += std::string(i > 0 ? "," : "") + R"({"id": ")" + ids[i] +
                  R"(", "address": "127.0.0.1:)" + std::to_string(port) + R"(", "key": ")" +
                  key_text(keys.back().public_key()) + R"("})";
  }
  const std::string genesis = R"({"chain": "agent-test", "time": ")" +
                              format_time(now_us() - 1'000'000) +
                              R"(", "difficulty": 4, "nodes": [)" + nodes_json + "]}";
  ASSERT_TRUE(write_file_atomically(dir.path() / "genesis.json", genesis, 0644, "genesis"));

  std::vector<std::unique_ptr<Seen>> seen;
  std::vector<std::unique_ptr<NodeRuntime>> nodes;
  for (const std::string& id : ids) {
    seen.push_back(std::make_unique<Seen>());
    Seen* s = seen.back().get();
    NodeRuntimeOptions o;
    o.genesis_file = dir.path() / "genesis.json";
    o.node_id = id;
    o.key_file = dir.path() / (id + ".key");
    o.store_dir = dir.path() / (id + "-store");
    o.verify_threads = 1;
    o.net_log = [](const std::string&) {};
    o.on_agent_message = [s](const std::string& from, Bytes message) {
      std::lock_guard lock(s->mutex);
      s->agent.emplace_back(from, std::move(message));
    };
    o.on_message = [s](const std::string&, const Bytes& message) {
      std::lock_guard lock(s->mutex);
      s->consensus.push_back(message);
    };
    o.on_misbehaviour = [s](const Misbehaviour& m) {
      std::lock_guard lock(s->mutex);
      s->misbehaviour.push_back(m.node + ": " + m.detail);
    };
    auto runtime = NodeRuntime::start(std::move(o));
    ASSERT_TRUE(runtime) << runtime.error().message;
    nodes.push_back(*std::move(runtime));
  }

  // Until the link is up the send fails, saying so.
  const Bytes secret = text("sealed VM key, as a stand-in");
  ASSERT_TRUE(eventually([&] { return nodes[0]->send_agent("node-2", secret).has_value(); }));
  ASSERT_TRUE(eventually([&] { return seen[1]->agent_count() == 1; }));
  ASSERT_TRUE(nodes[1]->send_agent("node-1", text("reply")));
  ASSERT_TRUE(eventually([&] { return seen[0]->agent_count() == 1; }));

  EXPECT_FALSE(nodes[0]->send_agent("node-3", secret));
  EXPECT_FALSE(nodes[0]->send_agent("node-2", Bytes((256u << 10) + 1, 0)));

  for (auto& s : seen) {
    std::lock_guard lock(s->mutex);
    for (const Bytes& m : s->consensus) {
      EXPECT_NE(m, secret);
      EXPECT_NE(m, text("reply"));
    }
    EXPECT_TRUE(s->misbehaviour.empty()) << s->misbehaviour.front();
  }
  {
    std::lock_guard lock(seen[1]->mutex);
    ASSERT_EQ(seen[1]->agent.size(), 1u);
    EXPECT_EQ(seen[1]->agent[0].first, "node-1");
    EXPECT_EQ(seen[1]->agent[0].second, secret);
  }
  {
    std::lock_guard lock(seen[0]->mutex);
    ASSERT_EQ(seen[0]->agent.size(), 1u);
    EXPECT_EQ(seen[0]->agent[0].first, "node-2");
    EXPECT_EQ(seen[0]->agent[0].second, text("reply"));
  }
  for (auto& n : nodes) n->stop();
  // A stopped node has no links left to send on.
  EXPECT_FALSE(nodes[0]->send_agent("node-2", secret));
}

}  // namespace
}  // namespace mchain
