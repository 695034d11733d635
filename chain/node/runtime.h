// One cluster node, wired up: the genesis file, the node's key, its LevelDB store, the TLS peer
// network (admission from the chain, validate before relay), and the NodeService pipeline with
// a signature cache, a validation pool and the administrator's alarm command. mchaind runs one;
// so does the multi-process test node (tests/chain/node_process.cc), with its fault hooks.
//
// start() checks everything before it starts anything: the genesis file, that the key is the
// one the genesis file names for this node (or that the node joins from outside it), the
// store. stop() closes the network first, so that no message reaches a stopping service.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chain/crypto/sign.h"
#include "chain/error.h"
#include "chain/node/genesis.h"
#include "chain/node/service.h"

namespace mchain {

namespace net {
class PeerNetwork;
}
class Store;
class AlarmCommand;
class SignatureCache;
class ValidationPool;

struct NodeRuntimeOptions {
  std::filesystem::path genesis_file;
  std::string node_id;
  std::filesystem::path key_file;
  std::filesystem::path store_dir;
  // A node that is not in the genesis file listens here and dials every member; the members
  // let it in once an add-node package for its key is confirmed. Members listen where the
  // genesis file says, on `listen_host` if set (e.g. "0.0.0.0" behind NAT).
  std::optional<std::pair<std::string, std::uint16_t>> join_at;
  std::string listen_host;

  TimeUs round_timeout = 2'000'000;
  TimeUs silence = 3'000'000;
  TimeUs window = 50'000;  // data and policy candidate windows
  std::size_t max_data_packages = 1000;
  ValidationMode mode = ValidationMode::concurrent;
  bool signature_cache = true;
  unsigned verify_threads = 0;  // 0: one per hardware thread
  unsigned miner_threads = 1;
  std::vector<std::string> alarm_command;  // run for every accusation and misbehaviour

  // Log lines from consensus (its thread) and from the network (its thread; default: stderr).
  std::function<void(const std::string&)> log;
  std::function<void(const std::string&)> net_log;
  std::function<void(const SemiFinishedBlock&)> on_proposed;
  std::function<void(const SemiFinishedBlock&)> on_confirmed;
  std::function<void(const Accusation&)> on_accusation;
  std::function<void(const Misbehaviour&)> on_misbehaviour;
  // Agent messages from linked peers (net::PeerNetwork::send_agent; VM migration secrets),
  // on the network thread; consensus never sees them. Unset: they are dropped and logged.
  std::function<void(const std::string& from_peer, Bytes message)> on_agent_message;
  // Fault-injection tests only: sees every message as it arrives (network thread), and may
  // change a candidate before it is signed.
  std::function<void(const std::string& from, const Bytes& message)> on_message;
  std::function<void(Candidate&)> tamper_candidate;
};

class NodeRuntime {
 public:
  static Result<std::unique_ptr<NodeRuntime>> start(NodeRuntimeOptions options);
  ~NodeRuntime();  // stop()
  NodeRuntime(const NodeRuntime&) = delete;
  NodeRuntime& operator=(const NodeRuntime&) = delete;

  const std::string& id() const { return options_.node_id; }
  const Genesis& genesis() const { return genesis_; }
  const crypto::PrivateKey& key() const { return key_; }
  Store& store() { return *store_; }
  net::PeerNetwork& network() { return *network_; }
  NodeService& service() { return *service_; }
  // The port the network listens on (the genesis file's, or the OS's choice for port 0).
  std::uint16_t port() const;
  // Sends an agent message to the linked peer `to` (see net::PeerNetwork::send_agent): fails
  // if `to` has no link now or the message is above the network's cap (256 KiB).
  Status send_agent(const std::string& to, Bytes message);
  // Closes the network, then stops the service (pending submissions fail with "stopped").
  // Idempotent.
  void stop();

 private:
  NodeRuntime(NodeRuntimeOptions options, Genesis genesis, crypto::PrivateKey key);

  NodeRuntimeOptions options_;
  Genesis genesis_;
  crypto::PrivateKey key_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<SignatureCache> signature_cache_;
  std::unique_ptr<ValidationPool> validation_pool_;
  std::unique_ptr<AlarmCommand> alarm_;
  std::unique_ptr<net::PeerNetwork> network_;
  std::unique_ptr<Transport> transport_;
  std::atomic<NodeService*> inbox_{nullptr};  // what the network delivers to, once it exists
  std::unique_ptr<NodeService> service_;
};

}  // namespace mchain
