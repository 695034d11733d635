// The test guest under QEMU (TCG): it boots, its agent answers, guest-exec sees the fixture files
// as the manifest says, it survives a QMP system_reset, and it powers off through the agent.
// The QGA client here is plain POSIX socket code on purpose: it checks the harness and the guest,
// not mchain's own collector.
#include "guest/guest_vm.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "temp_dir.h"

namespace {

namespace fs = std::filesystem;
using mchain::testing::GuestVm;
using mchain::testing::TempDir;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Generous: TCG on a loaded CI machine, possibly next to another test's guest.
constexpr auto kAgentTimeout = 60s;

std::string base64_decode(const std::string& text) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (char c : text) {
    auto value = kAlphabet.find(c);
    if (value == std::string_view::npos) continue;  // '=' padding, newlines
    bits = (bits << 6) | static_cast<unsigned>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A minimal QGA client over the chardev socket.
class Qga {
 public:
  explicit Qga(const fs::path& socket_path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, socket_path.c_str(), sizeof(address.sun_path) - 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
      error_ = "connect " + socket_path.string() + ": " + std::strerror(errno);
    timeval timeout{30, 0};  // no QGA reply here takes longer, even under TCG
    if (fd_ >= 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~Qga() {
    if (fd_ >= 0) ::close(fd_);
  }
  Qga(const Qga&) = delete;
  Qga& operator=(const Qga&) = delete;

  const std::string& error() const { return error_; }

  // guest-sync-delimited: skip whatever is still in the stream up to the 0xFF before our reply.
  bool sync() {
    const long id = 0x5eed0000 + static_cast<long>(::getpid() & 0xffff);
    if (!send("\xff" +
              json{{"execute", "guest-sync-delimited"}, {"arguments", {{"id", id}}}}.dump()))
      return false;
    for (;;) {
      auto mark = buffer_.find('\xff');
      auto end = mark == std::string::npos ? mark : buffer_.find('\n', mark);
      if (end != std::string::npos) {
        auto reply = json::parse(buffer_.substr(mark + 1, end - mark - 1), nullptr, false);
        buffer_.erase(0, end + 1);
        if (reply.is_object() && reply.value("return", -1L) == id) return true;
        continue;
      }
      if (!receive()) return false;
    }
  }

  // One command and its reply (qemu-ga ends every reply with a newline).
  json command(const json& request) {
    if (!send(request.dump())) return json{{"error", error_}};
    for (;;) {
      if (auto end = buffer_.find('\n'); end != std::string::npos) {
        auto reply = json::parse(buffer_.substr(0, end), nullptr, false);
        buffer_.erase(0, end + 1);
        return reply;
      }
      if (!receive()) return json{{"error", error_}};
    }
  }

  // Sends without waiting for a reply (guest-shutdown gives none on success).
  bool send(const std::string& data) {
    if (!error_.empty()) return false;
    if (::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(data.size())) {
      error_ = std::string("send: ") + std::strerror(errno);
      return false;
    }
    return true;
  }

  // guest-exec with captured output, polled to completion.
  json exec(const std::string& path, const std::vector<std::string>& args) {
    json started =
        command({{"execute", "guest-exec"},
                 {"arguments", {{"path", path}, {"arg", args}, {"capture-output", true}}}});
    if (!started.contains("return")) return started;
    auto pid = started["return"]["pid"];
    auto deadline = Clock::now() + 60s;
    while (Clock::now() < deadline) {
      json status = command({{"execute", "guest-exec-status"}, {"arguments", {{"pid", pid}}}});
      if (!status.contains("return") || status["return"].value("exited", false)) return status;
      std::this_thread::sleep_for(50ms);
    }
    return json{{"error", "guest-exec of " + path + " did not finish in 60 s"}};
  }

 private:
  bool receive() {
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      error_ =
          n == 0 ? "agent closed the connection" : std::string("recv: ") + std::strerror(errno);
      return false;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
  std::string error_;
};

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

bool process_gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

class Guest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = mchain::testing::test_guest_dir();
    if (!dir)
      GTEST_SKIP() << "test guest not built: needs qemu-system-x86, qemu-guest-agent and "
                      "busybox-static (scripts/setup.sh installs them), then the test_guest target";
    guest_dir_ = *dir;
  }

  TempDir tmp_{"mchain-guest"};
  fs::path guest_dir_;
};

TEST_F(Guest, BootsAnswersSurvivesResetAndPowersOff) {
  auto manifest = mchain::testing::read_guest_manifest(guest_dir_ / "manifest.txt");
  ASSERT_TRUE(manifest.contains("/opt/blob.bin"));
  const std::string blob_sha256 = manifest["/opt/blob.bin"].at(6);

  auto started = Clock::now();
  auto vm = GuestVm::boot(guest_dir_, tmp_.path());
  ASSERT_TRUE(vm) << vm.error();
  EXPECT_EQ(vm->accelerator().value_or("unknown"), "tcg");
  ASSERT_TRUE(vm->wait_for_agent(kAgentTimeout)) << "no agent; console:\n"
                                                 << read_file(vm->console_log());
  auto boot_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  std::cout << "boot to agent: " << boot_ms.count() << " ms\n";
  RecordProperty("boot_to_agent_ms", static_cast<int>(boot_ms.count()));

  {
    Qga qga(vm->qga_socket());
    ASSERT_TRUE(qga.sync()) << qga.error();

    json info = qga.command({{"execute", "guest-info"}});
    ASSERT_TRUE(info.contains("return")) << info.dump();
    EXPECT_FALSE(info["return"].value("version", "").empty());
    std::map<std::string, bool> enabled;
    for (const auto& command : info["return"]["supported_commands"])
      enabled[command.value("name", "")] = command.value("enabled", false);
    for (const char* name : {"guest-exec", "guest-exec-status", "guest-file-open",
                             "guest-file-read", "guest-file-close", "guest-shutdown"})
      EXPECT_TRUE(enabled[name]) << name << " not enabled: " << info.dump();

    json os = qga.command({{"execute", "guest-get-osinfo"}});
    EXPECT_EQ(os["return"].value("id", ""), "debian") << os.dump();

    auto exec_started = Clock::now();
    json hashed = qga.exec("/bin/sha256sum", {"/opt/blob.bin"});
    std::cout << "guest-exec sha256sum of the 24 MiB blob: "
              << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - exec_started)
                     .count()
              << " ms\n";
    ASSERT_TRUE(hashed.contains("return")) << hashed.dump();
    EXPECT_EQ(hashed["return"].value("exitcode", -1), 0) << hashed.dump();
    EXPECT_EQ(base64_decode(hashed["return"].value("out-data", "")),
              blob_sha256 + "  /opt/blob.bin\n");

    // Owners and modes come from the archive itself (see build-guest.sh); check one of each kind.
    json stat = qga.exec("/bin/stat", {"-c", "%n %a %u %g", "/etc/shadow", "/etc/app",
                                       "/var/log/app.log", "/etc/passwd"});
    ASSERT_TRUE(stat.contains("return")) << stat.dump();
    EXPECT_EQ(base64_decode(stat["return"].value("out-data", "")),
              "/etc/shadow 640 0 42\n/etc/app 750 1000 1000\n/var/log/app.log 640 1000 4\n"
              "/etc/passwd 644 0 0\n");
  }

  ASSERT_TRUE(vm->qmp(R"({"execute":"system_reset"})"));
  auto reset_at = Clock::now();
  ASSERT_TRUE(vm->wait_for_agent(kAgentTimeout)) << "no agent after system_reset; console:\n"
                                                 << read_file(vm->console_log());
  std::cout
      << "system_reset to agent: "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - reset_at).count()
      << " ms\n";
  // The agent that answered is a new one: /init started it a second time.
  EXPECT_EQ(count_of(read_file(vm->console_log()), "init: starting qemu-ga"), 2u)
      << read_file(vm->console_log());

  {
    Qga qga(vm->qga_socket());
    ASSERT_TRUE(qga.sync()) << qga.error();
    // Through the guest's /sbin/shutdown wrapper to poweroff -f; no reply on success.
    ASSERT_TRUE(qga.send(
        json{{"execute", "guest-shutdown"}, {"arguments", {{"mode", "powerdown"}}}}.dump()))
        << qga.error();
  }
  auto status = vm->wait_exit(60s);
  ASSERT_TRUE(status) << "QEMU still running after guest-shutdown";
  EXPECT_EQ(*status, 0);
}

TEST_F(Guest, LeavesNoProcessBehind) {
  pid_t killed;
  {
    auto vm = GuestVm::boot(guest_dir_, tmp_.path() / "kill");
    ASSERT_TRUE(vm) << vm.error();
    killed = vm->pid();
    ASSERT_GT(killed, 0);
    vm->kill();
    EXPECT_EQ(vm->pid(), -1);
    EXPECT_TRUE(process_gone(killed));
    vm->kill();  // again: a no-op
  }
  pid_t dropped;
  {
    auto vm = GuestVm::boot(guest_dir_, tmp_.path() / "drop");
    ASSERT_TRUE(vm) << vm.error();
    dropped = vm->pid();
    GuestVm moved = std::move(*vm);  // the moved-from object must not kill the moved-to one's QEMU
    EXPECT_TRUE(moved.running());
  }
  EXPECT_TRUE(process_gone(dropped));
}

TEST_F(Guest, ReportsQemuFailingToStart) {
  GuestVm::Options options;
  options.extra_args = {"-no-such-option"};
  auto vm = GuestVm::boot(guest_dir_, tmp_.path(), options);
  ASSERT_FALSE(vm);
  EXPECT_NE(vm.error().find("no-such-option"), std::string::npos) << vm.error();
}

// KVM only where the hardware has it; a /dev/kvm without VMX/SVM must be refused, not tried.
TEST_F(Guest, UsesKvmOnlyWhereItIsReal) {
  GuestVm::Options options;
  options.accel = mchain::testing::Accel::kvm;
  auto reason = mchain::testing::kvm_unusable_reason();
  auto vm = GuestVm::boot(guest_dir_, tmp_.path(), options);
  if (reason) {
    std::cout << "KVM unusable here: " << *reason << "\n";
    ASSERT_FALSE(vm);
    EXPECT_NE(vm.error().find(*reason), std::string::npos) << vm.error();
  } else {
    ASSERT_TRUE(vm) << vm.error();
    EXPECT_EQ(vm->accelerator().value_or("unknown"), "kvm");
  }
}

TEST(GuestVm, ReportsAMissingGuest) {
  TempDir tmp("mchain-guest");
  auto vm = GuestVm::boot(tmp.path() / "nothing-here", tmp.path());
  ASSERT_FALSE(vm);
  EXPECT_NE(vm.error().find("test_guest"), std::string::npos) << vm.error();
}

}  // namespace
