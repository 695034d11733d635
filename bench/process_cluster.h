// A cluster of mchain_test_node processes on this host (tests/chain/node_process.cc), for
// benchmarks that need the nodes as separate processes: one genesis file, P-256 node keys,
// packages handed through the spool, timings read from the nodes' --trace files.
//
//   DIR/genesis.json, DIR/node-I.key
//   DIR/node-I/{chain,spool,node.log,trace}   one node's store, spool, output and trace
//
// Failures throw std::runtime_error with what the node said; the destructor stops every
// node (SIGTERM, then SIGKILL), so that an error leaves no process behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "chain/crypto/sign.h"
#include "chain/package/package.h"
#include "chain/types.h"

namespace mchain::bench {

// One line of a node's --trace file.
struct TraceEvent {
  std::size_t node = 0;      // index of the node that wrote it
  bool confirmed = false;    // false: "proposed"
  std::string candidate;     // candidate hash, hex
  TimeUs at = 0;             // µs since the epoch
  std::size_t packages = 0;  // "confirmed" lines only
};

class ProcessCluster {
 public:
  // Writes the keys and a genesis file (time one second ago, `difficulty`) for nodes
  // "node-1" … "node-N" on 127.0.0.1 ports the OS picked; starts nothing.
  ProcessCluster(const std::filesystem::path& dir, std::size_t nodes,
                 std::filesystem::path node_binary, int difficulty);
  ~ProcessCluster();
  ProcessCluster(const ProcessCluster&) = delete;
  ProcessCluster& operator=(const ProcessCluster&) = delete;

  std::size_t size() const { return nodes_.size(); }
  static std::string id(std::size_t i) { return "node-" + std::to_string(i + 1); }
  const crypto::PrivateKey& key(std::size_t i) const { return keys_.at(i); }

  // Starts every node with the standard flags, --trace and `extra`, and waits until each
  // one's heartbeat shows all the others linked.
  void start(const std::vector<std::string>& extra, std::chrono::seconds within);
  // SIGTERM to every node, SIGKILL to any still running after `grace`.
  void stop(std::chrono::seconds grace = std::chrono::seconds(10));

  // Puts `package` into node i's inbox as NAME.pkg (written aside, then renamed into place:
  // the node never reads half a package).
  void hand(std::size_t i, const std::string& name, const Package& package);
  // The refusal node i wrote for NAME, if any.
  std::optional<std::string> refusal(std::size_t i, const std::string& name) const;
  // Trace lines completed since the last call, from every node; throws if a node exited.
  std::vector<TraceEvent> poll();
  // CPU time all nodes have used so far (user and system, every thread), in clock ticks.
  std::uint64_t cpu_ticks() const;
  // Packages still waiting in node i's inbox.
  std::size_t inbox_size(std::size_t i) const;
  // Removes the packages node i has taken (NAME.pkg.taken): it scans its inbox every 20 ms,
  // which costs it CPU in proportion to the entries there.
  void remove_taken(std::size_t i);

 private:
  struct Node {
    std::filesystem::path dir;
    pid_t pid = -1;
    std::uintmax_t log_from = 0;    // this run's output starts here
    std::uintmax_t trace_from = 0;  // next unread byte of the trace
  };

  std::vector<std::string> argv(std::size_t i, const std::vector<std::string>& extra) const;
  void throw_if_exited(std::size_t i);
  std::optional<std::size_t> peers(std::size_t i) const;
  std::string log_tail(std::size_t i) const;

  std::filesystem::path dir_;
  std::filesystem::path binary_;
  std::vector<crypto::PrivateKey> keys_;
  std::vector<Node> nodes_;
};

}  // namespace mchain::bench
