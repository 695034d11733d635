// A harness for multi-process cluster tests: mchain_test_node processes (see
// tests/chain/node_process.cc) started from one genesis file, driven through their spool
// directories and observed through their logs and, once stopped, their stores.
//
//   DIR/genesis.json, DIR/node-I.key         written by TestCluster
//   DIR/node-I/{chain,spool,node.log}        one node's store, spool and log (all runs)
//
// Failures are reported with ADD_FAILURE and a false/empty result, so that helpers can be
// used from anywhere; tests ASSERT_TRUE the results.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chain/crypto/sign.h"
#include "chain/node/genesis.h"
#include "chain/package/package.h"
#include "chain/store/store.h"
#include "chain/test_world.h"

namespace mchain::testing {

// A port nobody listens on now on 127.0.0.1 (the OS picks it); a node binds it a moment later.
std::uint16_t free_port();

// The latest heartbeat line of a node ("net: peers N, frames in …, confirmed N, pending N").
struct Heartbeat {
  std::size_t peers = 0;
  std::size_t confirmed = 0;
  std::size_t pending = 0;
  std::size_t height = 0;  // main-chain tip
  std::size_t pool = 0;    // the valid pool as this node sees it
  bool suspended = false;  // this node is out of the pool
  std::size_t accusations = 0, bad_marks = 0, bad_blocks = 0, offences = 0;
};

// One node process; killed and reaped when the object goes. It can be started again after
// stop() or kill(): same store, spool and key, its log appended to.
class NodeProcess {
 public:
  // `cluster_dir` holds genesis.json and ID.key; the node's own files go to cluster_dir/ID.
  NodeProcess(const std::filesystem::path& cluster_dir, std::string id);
  ~NodeProcess();
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  // Appended to the standard arguments at the next start() ("--round-timeout-ms", "1500").
  std::vector<std::string> extra_args;
  // When set, the node runs in this network namespace (a /run/netns file): the child enters
  // it before execv, so pid() is the node itself.
  std::filesystem::path netns;

  bool start();
  // Reaps the process if it has exited on its own.
  bool running();
  // SIGTERM and wait (SIGKILL after `within`, a test failure): the node stops its network and
  // threads and closes its store. Returns its exit code, 128 + signal if a signal ended it, or
  // the earlier run's code if it was not running (-1 if never started).
  int stop(std::chrono::seconds within = std::chrono::seconds(30));
  // Sends `signal` and reaps the process (for SIGKILL: a crash).
  void kill(int signal = SIGKILL);
  // Sends `signal` and returns (SIGSTOP, SIGCONT).
  void signal(int signal);
  pid_t pid() const { return pid_; }
  const std::string& id() const { return id_; }

  // Waits for `text` in this run's log ("ready …" once its spool and network are up).
  bool wait_log(const std::string& text, std::chrono::milliseconds within);
  // This run's latest complete heartbeat, if any yet.
  std::optional<Heartbeat> heartbeat() const;
  // Waits until this run's latest heartbeat meets `condition`.
  bool wait_heartbeat(const std::function<bool(const Heartbeat&)>& condition,
                      std::chrono::milliseconds within);
  // Waits until this run's latest heartbeat shows exactly `peers` linked peers.
  bool wait_peers(std::size_t peers, std::chrono::milliseconds within);

  // Puts `package` into the spool inbox as NAME.pkg.
  bool hand(const std::string& name, const Package& package);
  // The hash of the semi-finished block that confirmed `name`, once this node says so; a
  // refusal or a timeout fails the test.
  std::optional<std::string> confirmed(const std::string& name, std::chrono::milliseconds within);

  std::string log() const;      // every run
  std::string run_log() const;  // since the latest start()
  std::string log_tail(std::size_t bytes = 8192) const;
  std::filesystem::path store_dir() const { return dir_ / "chain"; }
  std::filesystem::path spool_dir() const { return dir_ / "spool"; }
  // The node's store, for reading while the node is stopped.
  Result<std::unique_ptr<Store>> open_store() const;

 private:
  std::string read_log(std::uintmax_t from) const;
  void reap(int status);

  std::filesystem::path cluster_dir_;
  std::filesystem::path dir_;
  std::string id_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::uintmax_t run_offset_ = 0;  // where this run's log starts
};

struct ClusterOptions {
  std::size_t nodes = 3;
  std::string chain = "procs";
  int difficulty = 8;
  // Node i listens on hosts[i] (default 127.0.0.1) and ports[i] (default free_port()).
  std::vector<std::string> hosts;
  std::vector<std::uint16_t> ports;
  // Node i runs in network namespace netns[i] (default: the test's own).
  std::vector<std::filesystem::path> netns;
};

// Nodes "node-1" … "node-N" (index 0 … N-1) with keys alternating P-256 and Ed25519, one
// genesis file (time one second ago), not started yet.
class TestCluster {
 public:
  TestCluster(const std::filesystem::path& dir, ClusterOptions options = {});
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;

  // The keys and genesis file were written.
  bool ok() const { return ok_; }
  std::size_t size() const { return nodes_.size(); }
  NodeProcess& node(std::size_t i) { return *nodes_.at(i); }
  const crypto::PrivateKey& key(std::size_t i) const { return keys_.at(i); }
  static std::string id(std::size_t i) { return "node-" + std::to_string(i + 1); }
  const Genesis& genesis() const { return genesis_; }

  // Starts every node that is not running.
  bool start_all();
  // The usual start of a test: every node started and linked (gossip is not kept for peers
  // that are not linked yet), then setup_world(w).
  bool start_with_world(const World& w);
  // Every running node's latest heartbeat shows all other running nodes linked.
  bool wait_linked(std::chrono::milliseconds within);
  // Every running node's latest heartbeat shows at least `count` confirmed blocks.
  bool wait_confirmed_everywhere(std::size_t count, std::chrono::milliseconds within);
  // Stops every running node; false (and a test failure) if one did not exit with 0.
  bool stop_all();

  // Hands `package` to node i, remembers it in handed(), and waits until node i confirms it.
  bool hand(std::size_t i, const std::string& name, Package package,
            std::chrono::milliseconds within = std::chrono::seconds(60));
  const std::vector<std::pair<std::string, Package>>& handed() const { return handed_; }

  // Packages of World `w`, made on node-1 (index 0): alice's registration ("user"), the VM
  // binding ("binding") and policy v1 ("policy"), and data packages on that policy.
  PackageSigners signers(const World& w) const;
  Package report(const World& w, const std::string& text) const;
  // The three setup packages, in the order they must be confirmed.
  std::vector<std::pair<std::string, Package>> world_packages(const World& w) const;
  // On a cluster with nothing confirmed yet: hands the three setup packages to nodes 0, 1, 2
  // (modulo size), each after the previous one is confirmed everywhere, since a package may
  // only go to a node that has confirmed what it depends on. Blocks 1 to 3 then.
  bool setup_world(const World& w, std::chrono::milliseconds within = std::chrono::seconds(60));

  // The end of a test: waits until every running node among `nodes` (default: all) reports as
  // many confirmed blocks as the one furthest ahead, stops every node, and expects those
  // nodes' stores to hold the same confirmed blocks and every handed package. Returns how
  // many blocks that is (0 on failure).
  std::size_t stop_and_expect_one_chain(std::vector<std::size_t> nodes = {});
  // Node index → its store's confirmed() list, for every node that is not running.
  std::map<std::size_t, std::vector<Hash256>> stored_confirmed();
  // Names of handed() packages missing from stopped node i's store.
  std::vector<std::string> missing_packages(std::size_t i);

 private:
  std::vector<crypto::PrivateKey> keys_;
  Genesis genesis_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::vector<std::pair<std::string, Package>> handed_;
  bool ok_ = false;
};

}  // namespace mchain::testing
