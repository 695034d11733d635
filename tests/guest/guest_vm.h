// GuestVm: the test guest built by tests/guest/build-guest.sh, booted under plain QEMU as a direct
// child of the test, with its guest-agent (QGA) channel and its QMP monitor on unix sockets in a
// run directory the caller owns. Header-only; needs nlohmann_json.
//
//   auto vm = GuestVm::boot(*test_guest_dir(), tmp.path());
//   ASSERT_TRUE(vm) << vm.error();
//   ASSERT_TRUE(vm->wait_for_agent(std::chrono::seconds(60))) << "see " << vm->console_log();
//
// The QEMU process never outlives the object: the destructor SIGKILLs and reaps it, and the child
// also gets SIGKILL if the thread that booted it dies (PR_SET_PDEATHSIG), so boot from the thread
// that owns the object (GoogleTest runs tests on the main thread).
//
// QEMU serves one client at a time on each socket: close your own QGA connection before calling
// wait_for_agent() and open a new one after, and do not hold a QMP connection while calling qmp().
#pragma once

#include "chain/file_io.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <expected>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace mchain::testing {

namespace guest_detail {

using Clock = std::chrono::steady_clock;

inline std::string errno_text(std::string_view what) {
  return std::string(what) + ": " + std::strerror(errno);
}

using mchain::Fd;

inline std::expected<Fd, std::string> connect_unix(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string& name = path.native();
  if (name.size() >= sizeof(address.sun_path))
    return std::unexpected("socket path too long: " + name);
  std::memcpy(address.sun_path, name.c_str(), name.size() + 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return std::unexpected(errno_text("socket"));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0)
    return std::unexpected(errno_text("connect " + name));
  return fd;
}

inline std::expected<void, std::string> send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    // MSG_NOSIGNAL: a peer that went away must be an error here, not a SIGPIPE for the test.
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(errno_text("send"));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

// Appends what arrives before the deadline. Empty result with no error: nothing arrived in time.
// An error with text "eof": the peer closed.
inline std::expected<std::size_t, std::string> read_some(int fd, std::string& into,
                                                         Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() < 0) return 0;
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return std::unexpected(errno_text("poll"));
    if (ready == 0) return 0;
    char buffer[65536];
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(errno_text("read"));
    if (n == 0) return std::unexpected("eof");
    into.append(buffer, static_cast<std::size_t>(n));
    return static_cast<std::size_t>(n);
  }
}

// QMP speaks one JSON object per line.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  std::expected<std::string, std::string> line(Clock::time_point deadline) {
    for (;;) {
      if (auto end = buffer_.find('\n'); end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return line;
      }
      auto n = read_some(fd_, buffer_, deadline);
      if (!n) return std::unexpected(n.error());
      if (*n == 0) return std::unexpected("timed out");
    }
  }

 private:
  int fd_;
  std::string buffer_;
};

inline std::string file_tail(const std::filesystem::path& path, std::size_t max = 4000) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > max ? "..." + text.substr(text.size() - max) : text;
}

inline std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

// fork + exec (PATH lookup) with the given stdin, stdout and stderr. The child gets SIGKILL when
// the calling thread dies, so a crashed or killed test leaves nothing running.
inline std::expected<pid_t, std::string> spawn_child(const std::vector<std::string>& args, int in,
                                                     int out, int err) {
  // Everything the child needs is prepared before fork: after fork in a threaded process only
  // async-signal-safe calls are allowed.
  std::vector<char*> argv;
  for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  sigset_t none;
  sigemptyset(&none);
  pid_t parent = ::getpid();
  pid_t child = ::fork();
  if (child < 0) return std::unexpected(errno_text("fork"));
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::close_range(3, ~0U, 0);  // the test's sockets and files are not the child's business
    ::execvp(argv[0], argv.data());
    static constexpr char message[] = "guest_vm: exec failed\n";
    [[maybe_unused]] auto ignored = ::write(2, message, sizeof(message) - 1);
    ::_exit(127);
  }
  return child;
}

struct CommandResult {
  int status = -1;     // exit code, 128 + signal, or -1 when it could not run or timed out
  std::string output;  // stdout and stderr together
};

// Runs a command to completion, killing it at the timeout.
inline CommandResult run_command(const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  CommandResult result;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.output = errno_text("pipe");
    return result;
  }
  Fd read_end(pipe_fds[0]);
  Fd write_end(pipe_fds[1]);
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto child = spawn_child(args, null.get(), write_end.get(), write_end.get());
  write_end.reset();  // EOF on read_end once the child is done
  if (!child) {
    result.output = child.error();
    return result;
  }
  auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    auto n = read_some(read_end.get(), result.output, deadline);
    if (!n) break;  // eof or error
    if (*n == 0) {
      timed_out = true;
      ::kill(*child, SIGKILL);
      break;
    }
  }
  int status = 0;
  while (::waitpid(*child, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    result.output += "\n(killed after " + std::to_string(timeout.count()) + " ms)";
  } else {
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return result;
}

}  // namespace guest_detail

// Why KVM cannot be used here, or nullopt when it can. /dev/kvm alone proves nothing: some hosts
// provide a software implementation (kvm_pvm) without VMX/SVM, under which real guests fail with
// MSR assertions or emulation failures.
inline std::optional<std::string> kvm_unusable_reason() {
  guest_detail::Fd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!kvm) return guest_detail::errno_text("open /dev/kvm");
  std::ifstream cpuinfo("/proc/cpuinfo");
  bool hardware = false;
  for (std::string line; !hardware && std::getline(cpuinfo, line);) {
    if (!line.starts_with("flags")) continue;
    std::istringstream flags(line);
    for (std::string flag; flags >> flag;) hardware = hardware || flag == "vmx" || flag == "svm";
  }
  if (!hardware) return "the CPU flags show neither vmx nor svm";
  std::ifstream modules("/proc/modules");
  for (std::string line; std::getline(modules, line);)
    if (line.starts_with("kvm_pvm ")) return "/dev/kvm is kvm_pvm, a software implementation";
  return std::nullopt;
}

enum class Accel {
  tcg,  // what tests use: behaves the same on every machine
  kvm,  // only where kvm_unusable_reason() is nullopt; boot() refuses otherwise
};

struct GuestVmOptions {
  unsigned memory_mb = 256;  // qemu-ga needs room for 1 MiB guest-file-read chunks and its state
  // How long boot() waits for QEMU to answer on QMP; the guest boots on after that.
  std::chrono::milliseconds timeout{30'000};
  Accel accel = Accel::tcg;
  std::string qemu = "qemu-system-x86_64";  // looked up in PATH
  std::vector<std::string> extra_args;      // appended to the command line, e.g. -incoming
};

class GuestVm {
 public:
  using Options = GuestVmOptions;
  static constexpr const char* kCmdline = "console=ttyS0 quiet panic=-1 rdinit=/init";

  // Starts QEMU on guest_dir/vmlinuz and guest_dir/initramfs.cpio.gz and returns once QEMU
  // answers on QMP. run_dir receives qga.sock, qmp.sock, pid, console.log and qemu.log (QEMU's
  // own stdout and stderr); the caller removes it.
  static std::expected<GuestVm, std::string> boot(const std::filesystem::path& guest_dir,
                                                  const std::filesystem::path& run_dir,
                                                  Options options = {}) {
    namespace fs = std::filesystem;
    using namespace guest_detail;
    for (const char* name : {"vmlinuz", "initramfs.cpio.gz"})
      if (!fs::is_regular_file(guest_dir / name))
        return std::unexpected("no " + (guest_dir / name).string() +
                               " (build the test_guest target)");
    if (options.accel == Accel::kvm)
      if (auto reason = kvm_unusable_reason()) return std::unexpected("KVM unusable: " + *reason);
    std::error_code ec;
    fs::create_directories(run_dir, ec);
    if (ec) return std::unexpected("create " + run_dir.string() + ": " + ec.message());
    GuestVm vm(fs::absolute(run_dir));
    for (const fs::path& socket : {vm.qga_socket(), vm.qmp_socket()}) {
      if (socket.native().size() >= sizeof(sockaddr_un::sun_path))
        return std::unexpected("run directory too long for a unix socket: " + socket.string());
      fs::remove(socket, ec);
    }

    // Option and value on one line.
    // clang-format off
    std::vector<std::string> args = {
        options.qemu,
        "-accel", options.accel == Accel::kvm ? "kvm" : "tcg",
        // qemu64 is what TCG emulates fully; -cpu host would pass KVM-only features through.
        "-cpu", options.accel == Accel::kvm ? "host" : "qemu64",
        "-m", std::to_string(options.memory_mb),
        "-smp", "1",
        "-nodefaults", "-no-user-config", "-display", "none",
        "-kernel", (guest_dir / "vmlinuz").string(),
        "-initrd", (guest_dir / "initramfs.cpio.gz").string(),
        "-append", kCmdline,
        "-serial", "file:" + vm.console_log().string(),
        "-device", "virtio-serial-pci,id=vser0",
        "-chardev", "socket,id=qga0,path=" + vm.qga_socket().string() + ",server=on,wait=off",
        "-device", "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0",
        "-qmp", "unix:" + vm.qmp_socket().string() + ",server=on,wait=off",
        "-pidfile", (vm.run_dir_ / "pid").string(),
    };
    // clang-format on
    args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
    if (auto started = vm.spawn(args); !started) return std::unexpected(started.error());

    // QMP answering query-status means QEMU has parsed everything, opened both sockets and
    // started the machine.
    auto deadline = Clock::now() + options.timeout;
    std::string last_error = "no attempt";
    while (Clock::now() < deadline) {
      if (auto status = vm.reap(false)) {
        return std::unexpected("qemu " + describe_status(*status) + ":\n" +
                               file_tail(vm.run_dir_ / "qemu.log"));
      }
      if (fs::exists(vm.qmp_socket())) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        auto status = vm.qmp_return(R"({"execute":"query-status"})", left);
        if (status) return vm;
        last_error = status.error();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    vm.kill();
    return std::unexpected("qemu did not answer on QMP within " +
                           std::to_string(options.timeout.count()) + " ms (" + last_error + "):\n" +
                           file_tail(vm.run_dir_ / "qemu.log"));
  }

  GuestVm(GuestVm&& other) noexcept
      : run_dir_(std::move(other.run_dir_)),
        pid_(std::exchange(other.pid_, -1)),
        exit_status_(other.exit_status_) {}
  GuestVm& operator=(GuestVm&& other) noexcept {
    if (this != &other) {
      kill();
      run_dir_ = std::move(other.run_dir_);
      pid_ = std::exchange(other.pid_, -1);
      exit_status_ = other.exit_status_;
    }
    return *this;
  }
  GuestVm(const GuestVm&) = delete;
  GuestVm& operator=(const GuestVm&) = delete;
  ~GuestVm() { kill(); }

  std::filesystem::path qga_socket() const { return run_dir_ / "qga.sock"; }
  std::filesystem::path qmp_socket() const { return run_dir_ / "qmp.sock"; }
  std::filesystem::path console_log() const { return run_dir_ / "console.log"; }
  std::filesystem::path qemu_log() const { return run_dir_ / "qemu.log"; }
  // The QEMU process, or -1 once it is gone.
  pid_t pid() const { return pid_; }

  // True once qemu-ga in the guest answered guest-sync-delimited on qga_socket(). Sends a fresh
  // sync every 250 ms on one connection: the guest kernel discards what arrives on the port
  // before qemu-ga opens it, so only a sync sent after that gets an answer. Later clients must
  // resynchronise themselves (guest-sync-delimited, matching id): replies to syncs sent here
  // may still be on their way.
  bool wait_for_agent(std::chrono::milliseconds timeout) {
    using namespace guest_detail;
    auto deadline = Clock::now() + timeout;
    std::mt19937_64 random(std::random_device{}());
    while (Clock::now() < deadline && running()) {
      auto connection = connect_unix(qga_socket());
      if (!connection) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      std::vector<std::int64_t> ids;
      std::string received;
      bool alive = true;
      while (alive && Clock::now() < deadline) {
        ids.push_back(static_cast<std::int64_t>(random() >> 2));
        // The leading 0xFF makes the agent drop any half-parsed input (it answers with a parse
        // error, which is skipped below along with everything else before its 0xFF).
        std::string sync = "\xff" + nlohmann::json{{"execute", "guest-sync-delimited"},
                                                   {"arguments", {{"id", ids.back()}}}}
                                        .dump();
        if (!send_all(connection->get(), sync)) break;
        auto until = std::min(deadline, Clock::now() + std::chrono::milliseconds(250));
        while (Clock::now() < until) {
          auto n = read_some(connection->get(), received, until);
          if (!n) {
            alive = false;
            break;
          }
          if (agent_answered(received, ids)) return true;
        }
      }
    }
    return false;
  }

  // Sends one QMP command, e.g. R"({"execute":"system_reset"})", and waits for its reply.
  std::expected<void, std::string> qmp(
      const std::string& execute_json,
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    auto reply = qmp_return(execute_json, timeout);
    if (!reply) return std::unexpected(reply.error());
    return {};
  }

  // The same, returning the reply's "return" value.
  std::expected<nlohmann::json, std::string> qmp_return(
      const std::string& execute_json,
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    using namespace guest_detail;
    auto command = nlohmann::json::parse(execute_json, nullptr, false);
    if (command.is_discarded() || !command.is_object() || !command.contains("execute"))
      return std::unexpected("not a QMP command: " + execute_json);
    auto deadline = Clock::now() + timeout;
    auto connection = connect_unix(qmp_socket());
    if (!connection) return std::unexpected(connection.error());
    LineReader reader(connection->get());
    auto greeting = reader.line(deadline);
    if (!greeting) return std::unexpected("QMP greeting: " + greeting.error());
    // Events may come between our command and its reply; the id picks the reply out.
    auto exchange = [&](nlohmann::json request,
                        const std::string& id) -> std::expected<nlohmann::json, std::string> {
      request["id"] = id;
      if (auto sent = send_all(connection->get(), request.dump() + "\n"); !sent)
        return std::unexpected(sent.error());
      for (;;) {
        auto line = reader.line(deadline);
        if (!line)
          return std::unexpected(request["execute"].get<std::string>() + ": " + line.error());
        auto reply = nlohmann::json::parse(*line, nullptr, false);
        if (reply.is_discarded() || !reply.is_object() || reply.value("id", "") != id) continue;
        if (reply.contains("error"))
          return std::unexpected(request["execute"].get<std::string>() + ": " +
                                 reply["error"].value("desc", reply["error"].dump()));
        return reply.value("return", nlohmann::json::object());
      }
    };
    if (auto negotiated = exchange({{"execute", "qmp_capabilities"}}, "caps"); !negotiated)
      return std::unexpected(negotiated.error());
    return exchange(std::move(command), "cmd");
  }

  // "kvm" or "tcg", as QEMU reports it, not as requested.
  std::expected<std::string, std::string> accelerator() {
    auto kvm = qmp_return(R"({"execute":"query-kvm"})");
    if (!kvm) return std::unexpected(kvm.error());
    return kvm->value("enabled", false) ? "kvm" : "tcg";
  }

  bool running() {
    reap(false);
    return pid_ > 0;
  }

  // Waits for QEMU to exit on its own (guest poweroff, QMP quit); its exit code, or 128 + signal,
  // or nullopt on timeout (QEMU keeps running).
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = guest_detail::Clock::now() + timeout;
    for (;;) {
      reap(false);
      if (pid_ < 0) return exit_status_;
      if (guest_detail::Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // SIGKILL and reap; nothing of QEMU is left after this. Safe to call again.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    reap(true);
  }

 private:
  explicit GuestVm(std::filesystem::path run_dir) : run_dir_(std::move(run_dir)) {}

  std::expected<void, std::string> spawn(const std::vector<std::string>& args) {
    using namespace guest_detail;
    Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    Fd log(::open((run_dir_ / "qemu.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!null || !log) return std::unexpected(errno_text("open /dev/null or qemu.log"));
    auto child = spawn_child(args, null.get(), log.get(), log.get());
    if (!child) return std::unexpected(child.error());
    pid_ = *child;
    return {};
  }

  // Collects QEMU's exit status once it is gone; returns it when this call reaped it.
  std::optional<int> reap(bool block) {
    if (pid_ <= 0) return std::nullopt;
    int status = 0;
    pid_t got;
    do got = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    while (got < 0 && errno == EINTR);
    if (got == 0) return std::nullopt;
    pid_ = -1;
    if (got < 0) return std::nullopt;  // not our child any more (cannot happen) - treat as gone
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return status;
  }

  // Looks for 0xFF followed by a complete reply to one of our syncs; drops what it has examined.
  static bool agent_answered(std::string& received, const std::vector<std::int64_t>& ids) {
    for (;;) {
      auto mark = received.find('\xff');
      if (mark == std::string::npos) {
        received.clear();
        return false;
      }
      auto end = received.find('\n', mark);
      if (end == std::string::npos) {
        received.erase(0, mark);
        return false;
      }
      auto reply = nlohmann::json::parse(received.substr(mark + 1, end - mark - 1), nullptr, false);
      received.erase(0, end + 1);
      if (!reply.is_discarded() && reply.is_object() && reply.contains("return") &&
          reply["return"].is_number_integer() &&
          std::find(ids.begin(), ids.end(), reply["return"].get<std::int64_t>()) != ids.end())
        return true;
    }
  }

  std::filesystem::path run_dir_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// The guest built by the test_guest target, or nullopt when it was not built (no QEMU, qemu-ga or
// busybox-static on this machine); tests GTEST_SKIP then.
// The guest's manifest.txt, by path: "path type mode uid gid size sha256|target", where type
// is f, d or l and size and sha256 are "-" for a directory.
inline std::map<std::string, std::vector<std::string>> read_guest_manifest(
    const std::filesystem::path& path) {
  std::map<std::string, std::vector<std::string>> entries;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::vector<std::string> row;
    for (std::string field; fields >> field;) row.push_back(field);
    if (row.size() == 7) entries[row[0]] = row;
  }
  return entries;
}

inline std::optional<std::filesystem::path> test_guest_dir() {
#ifdef MCHAIN_TEST_GUEST_DIR
  std::filesystem::path dir = MCHAIN_TEST_GUEST_DIR;
  std::error_code ec;
  if (std::filesystem::is_regular_file(dir / "vmlinuz", ec) &&
      std::filesystem::is_regular_file(dir / "initramfs.cpio.gz", ec) &&
      std::filesystem::is_regular_file(dir / "manifest.txt", ec))
    return dir;
#endif
  return std::nullopt;
}

}  // namespace mchain::testing
