// Network namespaces for partition tests: the lab itself (links that can be cut and healed,
// nothing left behind), and three node processes, each in its own namespace, confirming the
// same blocks over the lab's bridge.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "chain/file_io.h"
#include "chain/node_cluster.h"
#include "chain/test_world.h"
#include "netns.h"
#include "temp_dir.h"

namespace mchain {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::NetnsLab;

#define SKIP_WITHOUT_NETNS() \
  if (const std::string& why = NetnsLab::unavailable_reason(); !why.empty()) GTEST_SKIP() << why

constexpr std::uint16_t kPort = 7400;

std::set<std::string> netns_names() {
  auto listed = NetnsLab::ip({"netns", "list"});
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  std::set<std::string> names;
  std::istringstream lines(listed.output);
  for (std::string line; std::getline(lines, line);) {
    names.insert(line.substr(0, line.find(' ')));  // "NAME (id: 3)"
  }
  return names;
}

void expect_gone(const std::vector<std::string>& names) {
  const std::set<std::string> left = netns_names();
  for (const auto& name : names) EXPECT_FALSE(left.contains(name)) << name << " was left behind";
}

// A forked child that enters a network namespace and runs `body` there; killed and reaped when
// the object goes.
class NetnsChild {
 public:
  NetnsChild(const fs::path& ns, const std::function<int()>& body) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (!testing::enter_network_namespace(ns)) ::_exit(126);
      ::_exit(body());
    }
  }
  ~NetnsChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  NetnsChild(const NetnsChild&) = delete;
  NetnsChild& operator=(const NetnsChild&) = delete;

  // The exit code, or -1 if the child did not exit within `within`.
  int wait(std::chrono::milliseconds within) {
    for (auto deadline = std::chrono::steady_clock::now() + within;
         pid_ > 0 && std::chrono::steady_clock::now() < deadline;
         std::this_thread::sleep_for(10ms)) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

sockaddr_in socket_address(const std::string& host, std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  return address;
}

// A listener on node i's address in node i's namespace, up once the constructor returns.
class Listener {
 public:
  Listener(const NetnsLab& lab, std::size_t i) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    Fd read_end(fds[0]), write_end(fds[1]);
    const sockaddr_in address = socket_address(lab.address(i), kPort);
    child_ = std::make_unique<NetnsChild>(lab.namespace_path(i), [&] {
      Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
      if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
          ::listen(fd.get(), 16) != 0) {
        return 1;
      }
      (void)!::write(write_end.get(), "r", 1);
      // Connections complete in the kernel's backlog; nothing to accept. The test kills it.
      ::sleep(60);
      return 0;
    });
    write_end.reset();
    pollfd ready{read_end.get(), POLLIN, 0};
    char byte = 0;
    up_ = ::poll(&ready, 1, 5000) == 1 && ::read(read_end.get(), &byte, 1) == 1;
  }
  bool up() const { return up_; }

 private:
  std::unique_ptr<NetnsChild> child_;
  bool up_ = false;
};

// Whether a TCP connection from namespace `from` to node `to`'s listener completes within 1 s.
bool can_connect(const NetnsLab& lab, std::size_t from, std::size_t to) {
  const sockaddr_in address = socket_address(lab.address(to), kPort);
  NetnsChild child(lab.namespace_path(from), [&] {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 &&
        errno != EINPROGRESS) {
      return 1;
    }
    pollfd done{fd.get(), POLLOUT, 0};
    if (::poll(&done, 1, 1000) != 1) return 2;
    int error = 0;
    socklen_t size = sizeof error;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size);
    return error == 0 ? 0 : 3;
  });
  return child.wait(5s) == 0;
}

// After heal() the port needs a moment to forward again.
bool connects_soon(const NetnsLab& lab, std::size_t from, std::size_t to) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (can_connect(lab, from, to)) return true;
  }
  return false;
}

TEST(Netns, LinksCanBeCutAndHealedAndNothingIsLeftBehind) {
  SKIP_WITHOUT_NETNS();
  std::vector<std::string> names;
  {
    NetnsLab lab(3);
    ASSERT_TRUE(lab.ok());
    names = lab.all_names();
    const std::set<std::string> listed = netns_names();
    for (const auto& name : names) EXPECT_TRUE(listed.contains(name)) << name;

    Listener one(lab, 1), two(lab, 2);
    ASSERT_TRUE(one.up());
    ASSERT_TRUE(two.up());
    EXPECT_TRUE(connects_soon(lab, 0, 1));
    EXPECT_TRUE(connects_soon(lab, 0, 2));

    ASSERT_TRUE(lab.isolate(1));
    EXPECT_FALSE(can_connect(lab, 0, 1));
    EXPECT_TRUE(can_connect(lab, 0, 2));
    ASSERT_TRUE(lab.heal(1));
    EXPECT_TRUE(connects_soon(lab, 0, 1));

    ASSERT_TRUE(lab.partition({0, 1}, {2}));
    EXPECT_TRUE(connects_soon(lab, 0, 1));
    EXPECT_FALSE(can_connect(lab, 0, 2));
    ASSERT_TRUE(lab.heal_all());
    EXPECT_TRUE(connects_soon(lab, 0, 2));
  }
  expect_gone(names);
}

// One node per namespace of the lab, listening on its namespace's address.
testing::ClusterOptions in_namespaces(const NetnsLab& lab) {
  testing::ClusterOptions options;
  options.nodes = lab.size();
  for (std::size_t i = 0; i < lab.size(); ++i) {
    options.hosts.push_back(lab.address(i));
    options.ports.push_back(kPort);
    options.netns.push_back(lab.namespace_path(i));
  }
  return options;
}

TEST(Netns, ThreeNodesInThreeNamespacesConfirmTheSameBlocks) {
  SKIP_WITHOUT_NETNS();
  testing::TempDir tmp("mchain-netns");
  testing::World w;
  std::vector<std::string> names;
  {
    NetnsLab lab(3);
    ASSERT_TRUE(lab.ok());
    names = lab.all_names();
    testing::TestCluster cluster(tmp.path(), in_namespaces(lab));
    ASSERT_TRUE(cluster.ok());
    ASSERT_TRUE(cluster.start_with_world(w));
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(cluster.hand(static_cast<std::size_t>(i), "report-" + std::to_string(i),
                               cluster.report(w, "report " + std::to_string(i))));
    }
    EXPECT_GE(cluster.stop_and_expect_one_chain(), 4u);
  }
  expect_gone(names);
}

// Five nodes split 3 | 2 by the network. The majority suspends the two it cannot hear and goes
// on; the minority cannot take the majority out, so it confirms nothing on its own. When the
// network heals, the two catch up, rejoin, and their stalled package is confirmed: one chain,
// nothing confirmed lost.
TEST(Netns, APartitionHealsIntoOneChain) {
  SKIP_WITHOUT_NETNS();
  testing::TempDir tmp("mchain-split");
  testing::World w;
  std::vector<std::string> names;
  {
    NetnsLab lab(5);
    ASSERT_TRUE(lab.ok());
    names = lab.all_names();
    testing::TestCluster cluster(tmp.path(), in_namespaces(lab));
    ASSERT_TRUE(cluster.ok());
    for (std::size_t i = 0; i < 5; ++i) {
      cluster.node(i).extra_args = {"--round-timeout-ms", "1000", "--silence-ms", "1500"};
    }
    ASSERT_TRUE(cluster.start_with_world(w));

    ASSERT_TRUE(lab.partition({0, 1, 2}, {3, 4}));
    ASSERT_TRUE(cluster.hand(0, "majority-1", cluster.report(w, "majority 1")));
    ASSERT_TRUE(cluster.node(3).hand("minority", cluster.report(w, "minority")));
    ASSERT_TRUE(cluster.hand(1, "majority-2", cluster.report(w, "majority 2")));
    for (std::size_t i : {0u, 1u, 2u}) {
      EXPECT_TRUE(cluster.node(i).wait_heartbeat(
          [](const testing::Heartbeat& h) { return h.pool == 3; }, 30s))
          << cluster.node(i).log_tail();
    }
    // The minority confirmed nothing new: its package still waits.
    EXPECT_EQ(cluster.node(3).heartbeat()->confirmed, 3u) << cluster.node(3).log_tail();
    EXPECT_FALSE(std::filesystem::exists(cluster.node(3).spool_dir() / "done" / "minority.ok"));

    ASSERT_TRUE(lab.heal_all());
    ASSERT_TRUE(cluster.node(3).confirmed("minority", 90s)) << cluster.node(3).log_tail();
    for (std::size_t i = 0; i < 5; ++i) {
      EXPECT_TRUE(cluster.node(i).wait_heartbeat(
          [](const testing::Heartbeat& h) { return h.pool == 5 && !h.suspended; }, 60s))
          << cluster.node(i).log_tail();
    }
    ASSERT_TRUE(cluster.hand(4, "healed", cluster.report(w, "healed")));
    cluster.stop_and_expect_one_chain();
  }
  expect_gone(names);
}

}  // namespace
}  // namespace mchain
