// mchaind processes for tests: a Daemon is one mchaind started the way systemd starts it (its
// configuration, state directory and control socket in a test directory, $NOTIFY_SOCKET
// pointing at a NotifyListener); Daemons is a fixture of three on loopback, members of one
// test cluster. Header-only.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/control.h"
#include "chain/file_io.h"
#include "chain/node_cluster.h"
#include "temp_dir.h"

namespace mchain::agent::testing {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline const std::string kDaemon = std::string(MCHAIN_BINARY_DIR) + "/agent/mchaind";
inline const std::string kCtl = std::string(MCHAIN_BINARY_DIR) + "/agent/mchainctl";

// A datagram socket standing in for systemd's $NOTIFY_SOCKET.
class NotifyListener {
 public:
  explicit NotifyListener(fs::path path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof address.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  }
  ~NotifyListener() { ::close(fd_); }
  const fs::path& path() const { return path_; }

  // Waits for a datagram equal to `state`, keeping everything received.
  bool wait_for(const std::string& state, std::chrono::milliseconds within) {
    for (auto deadline = Clock::now() + within;;) {
      std::array<char, 512> buffer;
      for (ssize_t n; (n = ::recv(fd_, buffer.data(), buffer.size(), 0)) > 0;) {
        received_.emplace_back(buffer.data(), static_cast<std::size_t>(n));
      }
      if (std::find(received_.begin(), received_.end(), state) != received_.end()) return true;
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
  }

 private:
  fs::path path_;
  int fd_ = -1;
  std::vector<std::string> received_;
};

class Daemon {
 public:
  Daemon(fs::path dir, std::string id) : dir_(std::move(dir)), id_(std::move(id)) {}
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  fs::path socket() const { return dir_ / (id_ + ".sock"); }
  fs::path log_file() const { return dir_ / (id_ + ".log"); }
  fs::path config() const { return dir_ / (id_ + ".json"); }

  void write_config(const fs::path& genesis, const fs::path& key, bool enforce_hooks = false,
                    Json libvirt = nullptr, int measure_interval_s = 3600, Json abe = nullptr) {
    Json c = {{"hook", {{"enforce", enforce_hooks}}},
              {"libvirt", libvirt},
              {"node", {{"id", id_}, {"key", key.string()}, {"genesis", genesis.string()}}},
              {"state_dir", (dir_ / (id_ + "-state")).string()},
              {"control", {{"socket", socket().string()}}},
              {"consensus", {{"round_timeout_ms", 1000}, {"silence_ms", 2000}}},
              {"measurement",
               {{"policy", (dir_ / "measure.pol").string()}, {"interval_s", measure_interval_s}}},
              {"drain_timeout_ms", 20000}};
    if (!abe.is_null()) c["abe"] = std::move(abe);
    std::ofstream(dir_ / "measure.pol") << "/etc -> $(ReadOnly);\n";
    std::ofstream(config()) << c.dump(2);
  }

  bool start(const NotifyListener& notify, std::optional<std::chrono::microseconds> watchdog = {}) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const int log = ::open(log_file().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      ::dup2(log, STDOUT_FILENO);
      ::dup2(log, STDERR_FILENO);
      ::setenv("NOTIFY_SOCKET", notify.path().c_str(), 1);
      if (watchdog) {
        ::setenv("WATCHDOG_USEC", std::to_string(watchdog->count()).c_str(), 1);
        ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
      }
      ::execl(kDaemon.c_str(), kDaemon.c_str(), "--config", config().c_str(), nullptr);
      ::_exit(127);
    }
    return pid_ > 0;
  }

  // SIGTERM and wait; the exit status (128 + signal if one ended it).
  int stop(std::chrono::seconds within = 30s) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    for (auto deadline = Clock::now() + within; Clock::now() < deadline;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << id_ << " did not stop within " << within.count() << " s";
    return -1;
  }

  Result<Json> ask(const Json& request, std::chrono::milliseconds timeout = 10s) const {
    return control_request(socket(), request, timeout);
  }

  // Polls `status` until `condition` holds.
  bool wait_status(const std::function<bool(const Json&)>& condition, std::chrono::seconds within) {
    for (auto deadline = Clock::now() + within; Clock::now() < deadline;
         std::this_thread::sleep_for(50ms)) {
      if (auto s = ask({{"command", "status"}}, 2s); s && condition(*s)) return true;
    }
    return false;
  }

  std::string log() const {
    auto text = read_small_file(log_file(), 1 << 22, "log");
    return text ? *text : "";
  }

 private:
  fs::path dir_;
  std::string id_;
  pid_t pid_ = -1;
};

// Runs a shell command; "STATUS:" and its output with stderr.
inline std::string run(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  std::string out;
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ":" + out;
}

class Daemons : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.ok());
    for (std::size_t i = 0; i < 3; ++i) {
      daemons_.push_back(
          std::make_unique<Daemon>(tmp_.path(), mchain::testing::TestCluster::id(i)));
      daemons_.back()->write_config(tmp_.path() / "genesis.json",
                                    tmp_.path() / (mchain::testing::TestCluster::id(i) + ".key"));
      notify_.push_back(
          std::make_unique<NotifyListener>(tmp_.path() / ("notify-" + std::to_string(i))));
    }
  }

  void start_all() {
    for (std::size_t i = 0; i < 3; ++i) ASSERT_TRUE(daemons_[i]->start(*notify_[i]));
    for (std::size_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(notify_[i]->wait_for("READY=1", 30s)) << daemons_[i]->log();
      ASSERT_TRUE(
          daemons_[i]->wait_status([](const Json& s) { return s["linked"].size() == 2; }, 30s))
          << daemons_[i]->log();
    }
  }

  bool confirmed_everywhere(std::uint64_t count) {
    for (auto& d : daemons_) {
      if (!d->wait_status(
              [&](const Json& s) { return s["confirmed"].get<std::uint64_t>() >= count; }, 60s)) {
        ADD_FAILURE() << "not confirmed " << count << ":\n" << d->log();
        return false;
      }
    }
    return true;
  }

  // Writes `package` to a file, as an operator would hand it to mchainctl.
  fs::path package_file(const std::string& name, const Package& package) {
    const fs::path file = tmp_.path() / (name + ".pkg");
    const Bytes bytes = package.encode();
    EXPECT_TRUE(
        write_file_atomically(file, std::string(bytes.begin(), bytes.end()), 0644, "package"));
    return file;
  }

  mchain::testing::TempDir tmp_{"mchaind"};
  mchain::testing::World w_;
  mchain::testing::TestCluster cluster_{tmp_.path()};
  std::vector<std::unique_ptr<Daemon>> daemons_;
  std::vector<std::unique_ptr<NotifyListener>> notify_;
};

}  // namespace mchain::agent::testing
