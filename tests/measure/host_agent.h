// A real qemu-guest-agent running on the host as a child process, listening on a private
// unix socket: a QGA peer for tests and benchmarks without a VM. It serves guest-exec and
// guest-file-* against the host's own processes and files.
//
//   auto agent = HostAgent::start(dir);          // dir: a private directory (socket, state, log)
//   if (!agent) GTEST_SKIP() << HostAgent::unavailable_reason();
//   auto transport = qga::connect_unix_socket(agent->socket());
//
// The agent is SIGKILLed and reaped when the object goes, and also when the thread that
// started it exits (PR_SET_PDEATHSIG), so that a crashing test leaves no agent behind: start
// it from a thread that outlives its use.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace mchain::testing {

class HostAgent {
 public:
  // The qemu-ga executable, searched in PATH and in the sbin directories (where Debian puts
  // it, and which a non-root PATH often lacks).
  static std::optional<std::filesystem::path> binary() {
    std::vector<std::filesystem::path> dirs;
    if (const char* path = std::getenv("PATH")) {
      std::string_view rest(path);
      while (!rest.empty()) {
        const std::size_t colon = rest.find(':');
        const std::string_view dir = rest.substr(0, colon);
        if (!dir.empty()) dirs.emplace_back(dir);
        if (colon == std::string_view::npos) break;
        rest.remove_prefix(colon + 1);
      }
    }
    for (const char* dir : {"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"}) {
      dirs.emplace_back(dir);
    }
    for (const auto& dir : dirs) {
      const auto candidate = dir / "qemu-ga";
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return std::nullopt;
  }

  static std::string unavailable_reason() {
    if (!binary()) return "qemu-ga is not installed (apt-get install qemu-guest-agent)";
    return "qemu-ga did not start; see its log (qga.log) in the test's directory";
  }

  // Starts `qemu-ga -m unix-listen -p DIR/qga.sock -t DIR -l DIR/qga.log [-b blocked,...]` and
  // waits until the socket accepts. nullopt if qemu-ga is missing or does not come up.
  // Starting again in the same directory (after kill_agent()) reuses the socket path and
  // the agent's state, as an agent restarted in a guest would.
  static std::optional<HostAgent> start(
      const std::filesystem::path& dir, std::vector<std::string> blocked = {},
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto executable = binary();
    if (!executable) return std::nullopt;
    const std::filesystem::path state = std::filesystem::absolute(dir);  // qemu-ga wants it so
    const std::filesystem::path socket = state / "qga.sock";

    std::vector<std::string> args = {executable->string(),
                                     "-m",
                                     "unix-listen",
                                     "-p",
                                     socket.string(),
                                     "-t",
                                     state.string(),
                                     "-l",
                                     (state / "qga.log").string(),
                                     "-f",
                                     (state / "qga.pid").string()};
    if (!blocked.empty()) {
      std::string list;
      for (const auto& command : blocked) list += (list.empty() ? "" : ",") + command;
      args.push_back("-b");
      args.push_back(list);
    }
    // Built before fork(): the child may only make async-signal-safe calls.
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return std::nullopt;
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
      const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
      if (null >= 0) {
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDOUT_FILENO);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }

    HostAgent agent(pid, socket);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        agent.pid_ = -1;  // exited early: bad arguments, socket in use
        return std::nullopt;
      }
      if (accepts(socket)) return agent;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;  // the destructor kills it
  }

  HostAgent(HostAgent&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), socket_(std::move(other.socket_)) {}
  HostAgent& operator=(HostAgent&& other) noexcept {
    if (this != &other) {
      kill_agent();
      pid_ = std::exchange(other.pid_, -1);
      socket_ = std::move(other.socket_);
    }
    return *this;
  }
  HostAgent(const HostAgent&) = delete;
  HostAgent& operator=(const HostAgent&) = delete;
  ~HostAgent() { kill_agent(); }

  const std::filesystem::path& socket() const { return socket_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // SIGKILL, as a crash or a guest reset would end it, and reap. The socket file stays.
  void kill_agent() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  HostAgent(pid_t pid, std::filesystem::path socket) : pid_(pid), socket_(std::move(socket)) {}

  // Whether the agent listens yet. qemu-ga takes the probe as a client that leaves at once
  // and goes back to listening.
  static bool accepts(const std::filesystem::path& socket) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string name = socket.string();
    if (name.size() >= sizeof address.sun_path) return false;
    std::memcpy(address.sun_path, name.c_str(), name.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const bool connected =
        ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return connected;
  }

  pid_t pid_ = -1;
  std::filesystem::path socket_;
};

}  // namespace mchain::testing
