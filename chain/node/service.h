// The pipeline of one node on its own threads: packages in, confirmations and mature blocks
// out (SPEC §6). A consensus thread owns the ConsensusNode and is the store's only writer
// (commands, peer messages and mined blocks are queued to it, and it ticks on a short
// period); a mining thread mines the store's queue over this node's slice of the nonces and
// starts over when a peer's block moves the tip. submit() answers when the package's
// semi-finished block is durable — the producer's confirmation — and wait_mature() when a
// main-chain block holds it.
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "chain/node/consensus.h"
#include "chain/node/mining.h"

namespace mchain {

struct ServiceConfig {
  ConsensusConfig consensus;
  MiningConfig mining;
  unsigned miner_threads = 0;  // 0: one per hardware thread
  TimeUs tick = 10'000;        // how often the consensus thread looks for due candidates
  // Called on the consensus thread; must not call back into the service.
  std::function<void(const std::string&)> log;
  std::function<void(const Accusation&)> on_accusation;
  std::function<void(const Misbehaviour&)> on_misbehaviour;
  std::function<void()> on_pool_changed;
  std::function<void(const SemiFinishedBlock&)> on_proposed;
  std::function<void(const SemiFinishedBlock&)> on_confirmed;  // after it is durable
  std::function<void(Candidate&)> tamper_candidate;            // fault-injection tests only
};

// A consistent view of the node for heartbeats and metrics.
struct NodeSnapshot {
  ConsensusCounters counters;
  std::vector<std::string> pool;
  bool suspended = false;
  std::uint64_t attempt = 0;
  std::uint64_t confirmed = 0;
  std::uint64_t height = 0;  // main-chain tip
  std::size_t waiting = 0;   // packages in the candidate buffers
  bool round_open = false;   // a proposal or a due candidate is not confirmed yet
  std::uint64_t ticks = 0;   // consensus loop iterations: alive if it grows (watchdog)
};

class NodeService {
 public:
  NodeService(ServiceConfig config, Store& store, Transport& transport);
  ~NodeService();  // stops both threads
  NodeService(const NodeService&) = delete;
  NodeService& operator=(const NodeService&) = delete;

  // Validates and buffers a package produced on this host. The future yields the hash of the
  // semi-finished block that confirmed it once that block is durable, or the validation
  // error ("<verdict>: <detail>") if the package was refused.
  std::future<Result<Hash256>> submit(Package package);
  // The hash of the main-chain block that holds the package, once there is one.
  std::future<Result<Hash256>> wait_mature(const Hash256& package_id);
  // A message from a peer (the network's receive path).
  void deliver(std::string from, Bytes message);
  // A link to `peer` came up (the network's link callback).
  void linked(std::string peer);
  NodeSnapshot snapshot() const;
  // Stops the threads; pending futures fail with "stopped".
  void stop();

 private:
  using Promise = std::promise<Result<Hash256>>;
  struct Command {
    std::optional<Package> package;  // a submission, or
    std::optional<Block> mined;      // a block this node mined, or
    std::string from;                // a peer message (or, with no message, a new link)
    Bytes message;
  };

  void consensus_loop();
  void mining_loop();
  void confirmed(const SemiFinishedBlock& block);
  void mature(const Block& block);
  void update_slice();
  void fail_all(std::multimap<Hash256, Promise>& waiting, const std::string& why);

  ServiceConfig config_;
  std::uint64_t snapshot_ticks_ = 0;  // consensus thread only
  Store& store_;
  ConsensusNode node_;  // touched by the consensus thread only (after construction)

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Command> commands_;
  std::multimap<Hash256, Promise> confirm_waiting_;  // by package id
  std::multimap<Hash256, Promise> mature_waiting_;   // by package id
  bool stopping_ = false;
  NodeSnapshot snapshot_;
  pow::NonceRange slice_{};          // this node's share of the nonces; empty while not in the pool
  std::uint64_t mined_pending_ = 0;  // mined blocks queued to the consensus thread

  // Set to stop the current nonce search: stopping, or a peer's block moved the tip.
  std::atomic<bool> interrupt_mining_{false};
  std::condition_variable mining_wake_;
  std::jthread consensus_thread_;
  std::jthread mining_thread_;
};

}  // namespace mchain
