#include "chain/node/runtime.h"

#include "chain/crypto/keyfile.h"
#include "chain/net/peer_network.h"
#include "chain/node/alarm.h"
#include "chain/package/signature_cache.h"
#include "chain/package/validation_pool.h"
#include "chain/store/store.h"

namespace mchain {

NodeRuntime::NodeRuntime(NodeRuntimeOptions options, Genesis genesis, crypto::PrivateKey key)
    : options_(std::move(options)), genesis_(std::move(genesis)), key_(std::move(key)) {}

NodeRuntime::~NodeRuntime() { stop(); }

Result<std::unique_ptr<NodeRuntime>> NodeRuntime::start(NodeRuntimeOptions options) {
  auto genesis = load_genesis(options.genesis_file);
  if (!genesis) return std::unexpected(genesis.error());
  const std::string& self = options.node_id;
  const GenesisNode* me = nullptr;
  std::vector<std::string> pool;
  for (const GenesisNode& n : genesis->nodes) {
    pool.push_back(n.id);
    if (n.id == self) me = &n;
  }
  if (options.join_at && me != nullptr) {
    return fail(self + " is in the genesis file: it does not join");
  }
  if (!options.join_at && me == nullptr)
    return fail("node " + self + " is not in the genesis file");
  auto key = crypto::read_private_key_file(options.key_file);
  if (!key) return std::unexpected(key.error());
  if (me != nullptr && key->public_key() != me->key) {
    return fail("the key file " + options.key_file.string() + " does not hold " + self +
                "'s key as the genesis file names it");
  }

  const std::string listen_host = me != nullptr ? me->host : "";
  const std::uint16_t listen_port = me != nullptr ? me->port : 0;
  std::unique_ptr<NodeRuntime> rt(
      new NodeRuntime(std::move(options), *std::move(genesis), *std::move(key)));
  const NodeRuntimeOptions& o = rt->options_;
  const std::string& id = o.node_id;  // `self` and `me` went with the moves
  auto store = Store::open(o.store_dir);
  if (!store) return std::unexpected(store.error());
  rt->store_ = *std::move(store);
  for (const GenesisNode& n : rt->genesis_.nodes) {
    if (auto added = rt->store_->add_genesis_node(n.id, n.key, rt->genesis_.time); !added) {
      return std::unexpected(added.error());
    }
  }

  // Admission follows the chain: a node is let in while the store's view holds its key.
  Store& view = *rt->store_;
  net::PeerNetwork::Admission admission = [&view](const std::string& id) {
    return view.node_key(id, now_us());
  };
  net::PeerNetwork::Options net_options;
  net_options.node_id = id;
  if (o.join_at) {
    net_options.listen_host = o.join_at->first;
    net_options.listen_port = o.join_at->second;
  } else {
    net_options.listen_host = o.listen_host.empty() ? listen_host : o.listen_host;
    net_options.listen_port = listen_port;
  }
  net_options.dial_every_peer = o.join_at.has_value();
  net_options.relay_after_check = true;  // consensus passes on what checks out
  NodeRuntime* raw = rt.get();
  net_options.on_link = [raw](const std::string& peer) {
    if (NodeService* service = raw->inbox_.load()) service->linked(peer);
  };
  net_options.on_agent_message = o.on_agent_message;
  if (o.net_log) {
    net_options.log = [log = o.net_log](std::string_view line) { log(std::string(line)); };
  }
  for (const GenesisNode& n : rt->genesis_.nodes) {
    if (n.id != id) net_options.peers.push_back({n.id, n.host, n.port});
  }
  auto network = net::PeerNetwork::start(std::move(net_options), rt->key_, admission,
                                         [raw](const std::string& from, const Bytes& message) {
                                           if (raw->options_.on_message)
                                             raw->options_.on_message(from, message);
                                           if (NodeService* service = raw->inbox_.load())
                                             service->deliver(from, message);
                                         });
  if (!network) return std::unexpected(network.error());
  rt->network_ = *std::move(network);
  rt->transport_ = std::make_unique<net::NetTransport>(*rt->network_);

  rt->signature_cache_ = std::make_unique<SignatureCache>();
  rt->validation_pool_ = std::make_unique<ValidationPool>(o.verify_threads);
  if (!o.alarm_command.empty()) rt->alarm_ = std::make_unique<AlarmCommand>(o.alarm_command);

  ServiceConfig config;
  config.consensus.node = id;
  config.consensus.key = &rt->key_;
  config.consensus.pool = pool;
  config.consensus.buffers.data_window = config.consensus.buffers.policy_window = o.window;
  config.consensus.buffers.max_data_packages = o.max_data_packages;
  config.consensus.buffers.max_data_bytes = 64u << 20;
  config.consensus.round_timeout = o.round_timeout;
  config.consensus.silence = o.silence;
  config.consensus.mode = o.mode;
  config.consensus.data_diff = config.consensus.policy_diff = rt->genesis_.difficulty;
  if (o.signature_cache) config.consensus.signature_cache = rt->signature_cache_.get();
  config.consensus.validation_pool = rt->validation_pool_.get();
  config.mining = {.data_diff = rt->genesis_.difficulty,
                   .policy_diff = rt->genesis_.difficulty,
                   .slice = {0, 0, UINT64_MAX}};
  config.miner_threads = o.miner_threads;
  config.tick = 5'000;
  config.log = o.log;
  config.on_proposed = o.on_proposed;
  config.on_confirmed = o.on_confirmed;
  config.tamper_candidate = o.tamper_candidate;
  config.on_accusation = [raw](const Accusation& a) {
    if (raw->options_.on_accusation) raw->options_.on_accusation(a);
    if (!raw->alarm_) return;
    if (auto raised = raw->alarm_->raise(a); !raised && raw->options_.log) {
      raw->options_.log(raised.error().message);
    }
  };
  config.on_misbehaviour = [raw](const Misbehaviour& m) {
    if (raw->options_.on_misbehaviour) raw->options_.on_misbehaviour(m);
    if (!raw->alarm_) return;
    if (auto raised = raw->alarm_->raise(m); !raised && raw->options_.log) {
      raw->options_.log(raised.error().message);
    }
  };
  config.on_pool_changed = [raw] { raw->network_->recheck_admission(); };
  rt->service_ = std::make_unique<NodeService>(config, *rt->store_, *rt->transport_);
  rt->inbox_ = rt->service_.get();
  return rt;
}

std::uint16_t NodeRuntime::port() const { return network_->port(); }

Status NodeRuntime::send_agent(const std::string& to, Bytes message) {
  return network_->send_agent(to, std::move(message));
}

void NodeRuntime::stop() {
  if (network_) network_->stop();
  inbox_ = nullptr;
  if (service_) service_->stop();
}

}  // namespace mchain
