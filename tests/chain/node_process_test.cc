// Three nodes as three processes (mchain_test_node), each with its own store, talking over TLS
// on 127.0.0.1 and started from one genesis file: packages handed to different nodes are
// confirmed, and every store ends with the same semi-finished blocks.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "chain/crypto/keyfile.h"
#include "chain/file_io.h"
#include "chain/node/genesis.h"
#include "chain/store/store.h"
#include "chain/test_util.h"
#include "chain/test_world.h"
#include "temp_dir.h"

namespace mchain {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::must;

// A port nobody listens on now (the OS picks it); the node binds it a moment later.
std::uint16_t free_port() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return 0;
  socklen_t size = sizeof address;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.sin_port);
}

// One node process, killed and reaped when the object goes.
class NodeProcess {
 public:
  NodeProcess(const fs::path& dir, const std::string& id) : dir_(dir / id), id_(id) {}
  ~NodeProcess() { kill(SIGKILL); }

  void start() {
    fs::create_directories(dir_);
    std::vector<std::string> args = {MCHAIN_TEST_NODE,
                                     "--genesis",
                                     (dir_.parent_path() / "genesis.json").string(),
                                     "--id",
                                     id_,
                                     "--key",
                                     (dir_.parent_path() / (id_ + ".key")).string(),
                                     "--store",
                                     (dir_ / "chain").string(),
                                     "--spool",
                                     (dir_ / "spool").string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = (dir_ / "node.log").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }

  // Waits for `text` in the node's log ("ready …" once its spool and network are up,
  // "net: peers N" in its heartbeat).
  bool wait_log(const std::string& text, std::chrono::seconds within) {
    for (auto deadline = std::chrono::steady_clock::now() + within;
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(20ms)) {
      if (log().find(text) != std::string::npos) return true;
    }
    return false;
  }

  // SIGTERM and wait: the node stops its network, its threads and closes its store.
  int stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  void kill(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  void hand(const std::string& name, const Package& package) {
    const Bytes bytes = package.encode();
    ASSERT_TRUE(write_file_atomically(dir_ / "spool" / "inbox" / (name + ".pkg"),
                                      std::string(bytes.begin(), bytes.end()), 0644, "package"));
  }

  // The hash of the semi-finished block that confirmed `name`, once this node says so.
  std::optional<std::string> confirmed(const std::string& name, std::chrono::seconds within) {
    const fs::path ok = dir_ / "spool" / "done" / (name + ".ok");
    const fs::path err = dir_ / "spool" / "done" / (name + ".err");
    for (auto deadline = std::chrono::steady_clock::now() + within;
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(20ms)) {
      if (fs::exists(err)) {
        ADD_FAILURE() << id_ << " refused " << name << ": " << *read_small_file(err, 4096, "err");
        return std::nullopt;
      }
      if (auto text = read_small_file(ok, 4096, "ok")) return *text;
    }
    ADD_FAILURE() << id_ << " did not confirm " << name << "; log:\n" << log();
    return std::nullopt;
  }

  std::string log() const {
    auto text = read_small_file(dir_ / "node.log", 1 << 20, "log");
    return text ? *text : "";
  }
  fs::path store_dir() const { return dir_ / "chain"; }

 private:
  fs::path dir_;
  std::string id_;
  pid_t pid_ = -1;
};

TEST(NodeProcesses, ThreeProcessesConfirmTheSameBlocks) {
  testing::TempDir tmp("mchain-procs");
  testing::World w;
  std::vector<crypto::PrivateKey> keys;
  std::string nodes_json;
  for (int i = 1; i <= 3; ++i) {
    // Both node key algorithms in one cluster.
    keys.push_back(
        testing::make_key(i == 2 ? crypto::SigAlg::ed25519 : crypto::SigAlg::ecdsa_p256_sha256));
    const std::string id = "node-" + std::to_string(i);
    ASSERT_TRUE(crypto::write_private_key_file(tmp.path() / (id + ".key"), keys.back()));
    const std::uint16_t port = free_port();
    ASSERT_NE(port, 0);
    nodes_json += std::string(i > 1 ? "," : "") + R"({"id": ")" + id +
                  R"(", "address": "127.0.0.1:)" + std::to_string(port) + R"(", "key": ")" +
                  key_text(keys.back().public_key()) + R"("})";
  }
  auto genesis =
      parse_genesis(R"({"chain": "procs", "time": ")" + format_time(now_us() - 1'000'000) +
                    R"(", "difficulty": 8, "nodes": [)" + nodes_json + "]}");
  ASSERT_TRUE(genesis) << genesis.error().message;
  ASSERT_TRUE(
      write_file_atomically(tmp.path() / "genesis.json", genesis->to_json(), 0644, "genesis"));

  std::vector<std::unique_ptr<NodeProcess>> nodes;
  for (int i = 1; i <= 3; ++i) {
    nodes.push_back(std::make_unique<NodeProcess>(tmp.path(), "node-" + std::to_string(i)));
    nodes.back()->start();
  }
  // Gossip is not kept for peers that are not linked yet: hand packages once all are linked.
  for (auto& n : nodes) ASSERT_TRUE(n->wait_log("net: peers 2,", 30s)) << n->log();

  const crypto::PrivateKey& node1 = keys[0];
  const PackageSigners signers{&w.vm_key, &w.alice, &node1};
  std::vector<std::pair<std::string, Package>> handed;
  auto hand = [&](std::size_t node, const std::string& name, Package package) {
    nodes[node]->hand(name, package);
    handed.emplace_back(name, std::move(package));
    return nodes[node]->confirmed(name, 60s).has_value();
  };
  // A package that depends on another may only go to a node that has confirmed that one:
  // each setup step waits until every node's heartbeat shows it.
  auto everywhere = [&](std::size_t blocks) {
    for (auto& n : nodes) {
      if (!n->wait_log("confirmed " + std::to_string(blocks) + ",", 30s)) return false;
    }
    return true;
  };
  ASSERT_TRUE(hand(0, "user",
                   must(make_membership_package({Uuid{}, "alice", "node-1", now_us()},
                                                MembershipRecord{MembershipAction::register_user,
                                                                 "alice", w.alice.public_key()},
                                                {nullptr, &w.alice, &node1}))));
  ASSERT_TRUE(everywhere(1));
  ASSERT_TRUE(
      hand(1, "binding",
           must(make_binding_package({w.vm, "alice", "node-1", now_us()}, PolicyRef{},
                                     BindingEvent::started, w.vm_key.public_key(), signers))));
  ASSERT_TRUE(everywhere(2));
  ASSERT_TRUE(
      hand(2, "policy",
           must(make_policy_package({w.vm, "alice", "node-1", now_us()}, w.policy1, signers))));
  ASSERT_TRUE(everywhere(3));
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(hand(
        static_cast<std::size_t>(i % 3), "report-" + std::to_string(i),
        must(make_data_package({w.vm, "alice", "node-1", now_us()}, w.policy1.ref(), w.data_key,
                               as_bytes("report " + std::to_string(i)), signers))));
  }

  // Let the last round reach every node, then stop them all cleanly and read their stores.
  std::this_thread::sleep_for(500ms);
  for (auto& n : nodes) EXPECT_EQ(n->stop(), 0) << n->log();
  std::vector<std::vector<Hash256>> confirmed;
  for (auto& n : nodes) {
    StoreOptions existing;
    existing.create_if_missing = false;
    auto store = Store::open(n->store_dir(), existing);
    ASSERT_TRUE(store) << store.error().message;
    for (const auto& [name, package] : handed) {
      EXPECT_TRUE((*store)->find_package(package.id())) << name << " missing from a store";
    }
    confirmed.push_back((*store)->confirmed());
  }
  EXPECT_GE(confirmed[0].size(), 4u);
  EXPECT_EQ(confirmed[0], confirmed[1]);
  EXPECT_EQ(confirmed[1], confirmed[2]);
}

}  // namespace
}  // namespace mchain
