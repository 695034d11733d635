// The control socket: JSON lines each way, access decided by the kernel's peer credentials.
#include "agent/control.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "temp_dir.h"

namespace mchain::agent {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

struct Logged {
  std::mutex mutex;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& line) {
      std::lock_guard lock(mutex);
      lines.push_back(line);
    };
  }
  bool contains(const std::string& text) {
    std::lock_guard lock(mutex);
    for (const auto& l : lines) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }
};

// Echoes the request back under "echo"; "later" answers from another thread after 50 ms.
ControlServer::Handler echo() {
  return [](const ControlPeer& peer, const Json& request, ControlServer::Reply reply) {
    Json response = {{"ok", true}, {"echo", request}, {"uid", peer.uid}};
    if (request["command"] == "later") {
      std::thread([reply, response] {
        std::this_thread::sleep_for(50ms);
        reply(response);
      }).detach();
      return;
    }
    reply(response);
  };
}

// A raw client: writes `bytes`, then reads until `lines` newlines or EOF.
std::string raw_exchange(const std::filesystem::path& socket, const std::string& bytes, int lines) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket.c_str(), sizeof address.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return "connect failed";
  }
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string out;
  char buffer[4096];
  while (std::count(out.begin(), out.end(), '\n') < lines) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

class Control : public ::testing::Test {
 protected:
  std::unique_ptr<ControlServer> start(std::string group = "") {
    ControlServer::Options o;
    o.socket = socket_;
    o.group = std::move(group);
    o.log = log_.sink();
    o.max_request_bytes = 4096;
    auto server = ControlServer::start(o, echo());
    EXPECT_TRUE(server) << server.error().message;
    return server ? *std::move(server) : nullptr;
  }

  testing::TempDir tmp_{"mchain-control"};
  std::filesystem::path socket_ = tmp_.path() / "run" / "mchaind.sock";
  Logged log_;
};

TEST_F(Control, ARequestGetsItsResponse) {
  auto server = start();
  ASSERT_TRUE(server);
  auto r = control_request(socket_, {{"command", "status"}, {"x", 1}}, 5s);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)["ok"], true);
  EXPECT_EQ((*r)["echo"]["x"], 1);
  EXPECT_EQ((*r)["uid"], ::geteuid());
  // Made with no access for others: 0600 without a group.
  struct stat st {};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(Control, RequestsOnOneConnectionAreAnsweredInOrderEvenWhenOneWaits) {
  auto server = start();
  ASSERT_TRUE(server);
  const std::string out = raw_exchange(socket_,
                                       R"({"command":"later","n":1})"
                                       "\n"
                                       R"({"command":"now","n":2})"
                                       "\n",
                                       2);
  const auto newline = out.find('\n');
  ASSERT_NE(newline, std::string::npos) << out;
  EXPECT_EQ(Json::parse(out.substr(0, newline))["echo"]["n"], 1);
  EXPECT_EQ(Json::parse(out.substr(newline + 1))["echo"]["n"], 2);
}

TEST_F(Control, MalformedAndOversizeRequestsGetAClearError) {
  auto server = start();
  ASSERT_TRUE(server);
  const std::string out = raw_exchange(socket_, "not json\n{\"no\":\"command\"}\n", 2);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
  EXPECT_NE(out.find("expected a JSON object with a \\\"command\\\" string"), std::string::npos)
      << out;
  const std::string big = raw_exchange(socket_, std::string(5000, 'x'), 1);
  EXPECT_NE(big.find("request larger than 4096 bytes"), std::string::npos) << big;
  // The server goes on serving.
  EXPECT_TRUE(control_request(socket_, {{"command", "status"}}, 5s));
}

TEST_F(Control, AStaleSocketIsReplacedButALiveOneIsNotTaken) {
  {
    auto first = start();
    ASSERT_TRUE(first);
    ControlServer::Options o;
    o.socket = socket_;
    auto second = ControlServer::start(o, echo());
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().message.find("another mchaind is listening"), std::string::npos);
  }
  // A socket file nobody listens on, as a killed daemon leaves it.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_.c_str(), sizeof address.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ::close(fd);
  ASSERT_TRUE(std::filesystem::exists(socket_));
  auto server = start();
  ASSERT_TRUE(server);
  EXPECT_TRUE(control_request(socket_, {{"command", "status"}}, 5s));
  server->stop();
  EXPECT_FALSE(std::filesystem::exists(socket_)) << "stop() removes the socket file";
  auto gone = control_request(socket_, {{"command", "status"}}, 2s);
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.error().message.find("cannot reach mchaind"), std::string::npos);
}

TEST_F(Control, ASilentServerTimesOut) {
  ControlServer::Options o;
  o.socket = socket_;
  auto server = ControlServer::start(o, [](const ControlPeer&, const Json&, ControlServer::Reply) {
    // Never answers.
  });
  ASSERT_TRUE(server);
  auto r = control_request(socket_, {{"command", "status"}}, 200ms);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("did not answer"), std::string::npos) << r.error().message;
}

// Runs a control request as another user (fork, setgid, setuid) and returns the response's
// "ok" and "error", or the failure.
std::string request_as(const std::filesystem::path& socket, uid_t uid, gid_t gid) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return "pipe failed";
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::string out;
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
      out = "could not drop privileges";
    } else {
      auto r = control_request(socket, {{"command", "status"}}, std::chrono::milliseconds(5000));
      out = r ? r->dump() : "failed: " + r.error().message;
    }
    (void)!::write(pipe_fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
    out.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  return out;
}

TEST_F(Control, OtherUsersAreRefusedAndLoggedUnlessInTheGroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  const group* nogroup = ::getgrnam("nogroup");
  if (nogroup == nullptr) GTEST_SKIP() << "no group 'nogroup' on this host";
  // The socket's directory must be reachable by the other user.
  ::chmod(tmp_.path().c_str(), 0755);
  {
    auto server = start();
    ASSERT_TRUE(server);
    ::chmod(socket_.c_str(), 0666);  // so that only the credential check stands in the way
    const std::string out = request_as(socket_, 65534, nogroup->gr_gid);
    EXPECT_NE(out.find("permission denied"), std::string::npos) << out;
    EXPECT_TRUE(log_.contains("refused uid 65534")) << "the refusal is logged";
  }
  auto server = start("nogroup");
  ASSERT_TRUE(server);
  struct stat st {};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, nogroup->gr_gid);
  const std::string out = request_as(socket_, 65534, nogroup->gr_gid);
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
}

}  // namespace
}  // namespace mchain::agent
