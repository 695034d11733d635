#include "netns.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "chain/file_io.h"

extern char** environ;

namespace mchain::testing {
namespace {

namespace fs = std::filesystem;

const std::string& ip_binary() {
  static const std::string path = [] {
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
      if (::access(p, X_OK) == 0) return std::string(p);
    }
    return std::string();
  }();
  return path;
}

std::string describe(const std::vector<std::string>& args, const CommandResult& result) {
  std::string text = "ip";
  for (const auto& a : args) text += " " + a;
  return text + ": exit " + std::to_string(result.exit_code) + ": " + result.output;
}

// A new lab's first name part: the pid keeps parallel test processes apart, the counter
// several labs of one process.
std::string next_prefix() {
  static std::atomic<int> counter{0};
  return "mchain-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv) {
  CommandResult result;
  if (argv.empty()) return result;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return result;
  Fd read_end(fds[0]), write_end(fds[1]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  write_end.reset();  // so that the read below ends when the child exits
  if (spawned != 0) {
    result.output = std::string("cannot run ") + args[0] + ": " + std::strerror(spawned);
    return result;
  }
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(read_end.get(), buffer, sizeof buffer);
    if (n > 0) {
      result.output.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

CommandResult NetnsLab::ip(const std::vector<std::string>& args) {
  if (ip_binary().empty()) return {-1, "no ip command (iproute2)"};
  std::vector<std::string> argv{ip_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

const std::string& NetnsLab::unavailable_reason() {
  static const std::string reason = []() -> std::string {
    if (::geteuid() != 0) return "network namespaces need root";
    if (ip_binary().empty()) return "no ip command (install iproute2)";
    // What a lab does, once: a namespace, a bridge and a veth pair in it.
    const std::string probe = next_prefix() + "-probe";
    std::string why;
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"netns", "add", probe},
          {"-n", probe, "link", "add", "br0", "type", "bridge"},
          {"-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1"}}) {
      if (auto r = ip(args); r.exit_code != 0) {
        why = "cannot make network namespaces here: " + describe(args, r);
        break;
      }
    }
    ip({"netns", "del", probe});
    return why;
  }();
  return reason;
}

NetnsLab::NetnsLab(std::size_t nodes) {
  const std::string prefix = next_prefix();
  hub_ = prefix + "-hub";
  // The subnet only has to differ between labs that could ever share a namespace, which they
  // never do; deriving it from the pid still makes addresses in logs tell labs apart.
  static std::atomic<int> labs{0};
  subnet_ = "10.231." + std::to_string((::getpid() + 31 * labs++) % 254 + 1) + ".";
  for (std::size_t i = 0; i < nodes; ++i) names_.push_back(prefix + "-" + std::to_string(i));

  auto run = [](const std::vector<std::string>& args) {
    auto r = ip(args);
    if (r.exit_code != 0) ADD_FAILURE() << describe(args, r);
    return r.exit_code == 0;
  };
  if (!run({"netns", "add", hub_})) return;
  // br1 only serves partition(); STP stays off, so ports forward at once.
  for (const char* bridge : {"br0", "br1"}) {
    if (!hub({"link", "add", bridge, "type", "bridge"}) || !hub({"link", "set", bridge, "up"})) {
      return;
    }
  }
  if (!hub({"link", "set", "lo", "up"})) return;
  for (std::size_t i = 0; i < nodes; ++i) {
    const std::string& ns = names_[i];
    const std::string port = "p" + std::to_string(i);
    if (!run({"netns", "add", ns}) || !run({"-n", ns, "link", "set", "lo", "up"}) ||
        !hub({"link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns}) ||
        !hub({"link", "set", port, "master", "br0", "up"}) ||
        !run({"-n", ns, "addr", "add", address(i) + "/24", "dev", "eth0"}) ||
        !run({"-n", ns, "link", "set", "eth0", "up"})) {
      return;
    }
  }
  ok_ = true;
}

NetnsLab::~NetnsLab() {
  // Also the names that failed half-way: deleting a missing one only fails quietly.
  for (const std::string& name : all_names()) ip({"netns", "del", name});
}

std::vector<std::string> NetnsLab::all_names() const {
  std::vector<std::string> names = names_;
  names.push_back(hub_);
  return names;
}

std::string NetnsLab::address(std::size_t i) const { return subnet_ + std::to_string(i + 1); }

fs::path NetnsLab::namespace_path(std::size_t i) const { return fs::path("/run/netns") / name(i); }

bool NetnsLab::hub(const std::vector<std::string>& args) {
  std::vector<std::string> full{"-n", hub_};
  full.insert(full.end(), args.begin(), args.end());
  auto r = ip(full);
  if (r.exit_code != 0) ADD_FAILURE() << describe(full, r);
  return r.exit_code == 0;
}

bool NetnsLab::isolate(std::size_t i) {
  return hub({"link", "set", "p" + std::to_string(i), "down"});
}

bool NetnsLab::heal(std::size_t i) {
  return hub({"link", "set", "p" + std::to_string(i), "master", "br0", "up"});
}

bool NetnsLab::partition(const std::vector<std::size_t>& a, const std::vector<std::size_t>& b) {
  bool ok = true;
  for (std::size_t i = 0; i < size(); ++i) {
    const std::string port = "p" + std::to_string(i);
    if (std::find(a.begin(), a.end(), i) != a.end()) {
      ok = hub({"link", "set", port, "master", "br0", "up"}) && ok;
    } else if (std::find(b.begin(), b.end(), i) != b.end()) {
      ok = hub({"link", "set", port, "master", "br1", "up"}) && ok;
    } else {
      ok = isolate(i) && ok;
    }
  }
  return ok;
}

bool NetnsLab::heal_all() {
  bool ok = true;
  for (std::size_t i = 0; i < size(); ++i) ok = heal(i) && ok;
  return ok;
}

bool enter_network_namespace(const fs::path& path) {
  Fd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  return ns && ::setns(ns.get(), CLONE_NEWNET) == 0;
}

}  // namespace mchain::testing
