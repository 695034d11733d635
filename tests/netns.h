// Private network namespaces for tests that cut links between processes (partitions, isolated
// nodes). A NetnsLab is one "hub" namespace holding a Linux bridge and N node namespaces, each
// joined to the bridge by a veth pair:
//
//   node ns i: lo, eth0 10.231.X.(i+1)/24 ── veth ── hub ns: p<i> ── bridge br0 (or br1)
//
// Every link and address lives inside the lab's namespaces (`ip -n`), so nothing touches the
// host's interfaces, interface names cannot clash with other labs and deleting the namespaces
// deletes everything. Names carry the test process's pid and a counter, so parallel test
// processes (ctest -j) do not meet. Needs root and iproute2; tests GTEST_SKIP with
// unavailable_reason() elsewhere.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace mchain::testing {

// A command's exit code (128 + signal if killed, -1 if it could not be run) and its stdout and
// stderr together.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
// Runs argv[0] (an absolute path) with those arguments, no shell, and waits for it.
CommandResult run_command(const std::vector<std::string>& argv);

class NetnsLab {
 public:
  // Empty when labs can be made here; otherwise why not (not root, no ip, namespaces or
  // bridges refused). Probed once per process.
  static const std::string& unavailable_reason();
  // `ip` with these arguments (e.g. {"netns", "list"}).
  static CommandResult ip(const std::vector<std::string>& args);

  // Creates the namespaces; a failure is a test failure (ADD_FAILURE) and leaves ok() false.
  explicit NetnsLab(std::size_t nodes);
  // Deletes every namespace (and with them the veths and bridges), even after a failed test.
  // Processes still inside a namespace keep it alive, nameless: stop them first.
  ~NetnsLab();
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  bool ok() const { return ok_; }
  std::size_t size() const { return names_.size(); }
  // Node i's IPv4 address, reachable from the other node namespaces only.
  std::string address(std::size_t i) const;
  // The namespace's name for `ip netns` and its file for setns(CLONE_NEWNET).
  const std::string& name(std::size_t i) const { return names_.at(i); }
  std::filesystem::path namespace_path(std::size_t i) const;
  // Every namespace this lab made (nodes and hub).
  std::vector<std::string> all_names() const;

  // Cuts node i off from everyone (its hub-side veth goes down); heal(i) joins it to br0 again.
  bool isolate(std::size_t i);
  bool heal(std::size_t i);
  // Nodes in `a` see only each other, nodes in `b` likewise (b moves to a second bridge);
  // nodes in neither are isolated. heal_all() puts everyone back on br0.
  bool partition(const std::vector<std::size_t>& a, const std::vector<std::size_t>& b);
  bool heal_all();

 private:
  bool hub(const std::vector<std::string>& args);

  std::string hub_;
  std::vector<std::string> names_;
  std::string subnet_;  // "10.231.X."
  bool ok_ = false;
};

// Moves the calling thread (in a child: the process) into the network namespace at `path`.
bool enter_network_namespace(const std::filesystem::path& path);

}  // namespace mchain::testing
