// The pipeline of one node on its own threads: packages in, confirmations and mature blocks
// out (SPEC §6). A consensus thread owns the ConsensusNode (commands and peer messages are
// queued to it, and it ticks on a short period); a mining thread mines the store's queue and
// appends. submit() answers when the package's semi-finished block is durable — the
// producer's confirmation — and wait_mature() when a main-chain block holds it.
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
  // Stops the threads; pending futures fail with "stopped".
  void stop();

 private:
  using Promise = std::promise<Result<Hash256>>;
  struct Command {
    std::optional<Package> package;  // a submission, or
    std::string from;                // a peer message
    Bytes message;
  };

  void consensus_loop();
  void mining_loop();
  void confirmed(const SemiFinishedBlock& block);
  void mature(const Block& block);
  void fail_all(std::multimap<Hash256, Promise>& waiting, const std::string& why);

  ServiceConfig config_;
  Store& store_;
  ConsensusNode node_;  // touched by the consensus thread only (after construction)

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Command> commands_;
  std::multimap<Hash256, Promise> confirm_waiting_;  // by package id
  std::multimap<Hash256, Promise> mature_waiting_;   // by package id
  bool stopping_ = false;

  std::atomic<bool> stop_mining_{false};
  std::condition_variable mining_wake_;
  std::jthread consensus_thread_;
  std::jthread mining_thread_;
};

}  // namespace mchain
