// mchain_test_node: one cluster node as its own process, built from the chain library, for the
// multi-process tests (the several-hosts issue allows "a node binary built from the same
// library" until mchaind runs a node). It reads the genesis file, opens its store, joins the
// peer network and runs the consensus and mining pipeline.
//
// Packages are handed to it through a spool directory, so that a test can drive several
// processes without a control protocol: every SPOOL/inbox/NAME.pkg is submitted (and renamed
// NAME.pkg.taken); when the package's semi-finished block is durable, SPOOL/done/NAME.ok holds
// that block's hash in hex (or NAME.err the refusal). SIGTERM or SIGINT stops it cleanly.
//
//   mchain_test_node --genesis FILE --id NODE --key KEY.pem --store DIR --spool DIR
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <iostream>
#include <list>
#include <thread>

#include "chain/crypto/keyfile.h"
#include "chain/file_io.h"
#include "chain/net/peer_network.h"
#include "chain/node/genesis.h"
#include "chain/node/service.h"
#include "chain/store/store.h"

namespace {

using namespace mchain;
namespace fs = std::filesystem;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

int die(const std::string& message) {
  std::cerr << "mchain_test_node: " << message << '\n';
  return 1;
}

struct Pending {
  std::string name;
  std::future<Result<Hash256>> confirmed;
};

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  for (const char* required : {"--genesis", "--id", "--key", "--store", "--spool"}) {
    if (!args.contains(required)) return die(std::string("missing ") + required);
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  auto genesis = load_genesis(args["--genesis"]);
  if (!genesis) return die(genesis.error().message);
  const std::string self = args["--id"];
  const GenesisNode* me = nullptr;
  std::vector<std::string> pool;
  for (const GenesisNode& n : genesis->nodes) {
    pool.push_back(n.id);
    if (n.id == self) me = &n;
  }
  if (me == nullptr) return die("node " + self + " is not in the genesis file");
  auto key = crypto::read_private_key_file(args["--key"]);
  if (!key) return die(key.error().message);
  if (key->public_key() != me->key) return die("the key file does not hold " + self + "'s key");

  auto store = Store::open(args["--store"]);
  if (!store) return die(store.error().message);
  for (const GenesisNode& n : genesis->nodes) {
    if (auto added = (*store)->add_genesis_node(n.id, n.key, genesis->time); !added) {
      return die(added.error().message);
    }
  }

  const fs::path spool = args["--spool"];
  fs::create_directories(spool / "inbox");
  fs::create_directories(spool / "done");

  // Admission follows the chain: a node is let in while the store's view holds its key.
  Store& view = **store;
  net::PeerNetwork::Admission admission = [&view](const std::string& id) {
    return view.node_key(id, now_us());
  };
  std::atomic<NodeService*> inbox{nullptr};
  net::PeerNetwork::Options options;
  options.node_id = self;
  options.listen_host = me->host;
  options.listen_port = me->port;
  for (const GenesisNode& n : genesis->nodes) {
    if (n.id != self) options.peers.push_back({n.id, n.host, n.port});
  }
  auto network = net::PeerNetwork::start(options, *key, admission,
                                         [&inbox](const std::string& from, const Bytes& message) {
                                           if (NodeService* service = inbox.load())
                                             service->deliver(from, message);
                                         });
  if (!network) return die(network.error().message);
  net::NetTransport transport(**network);

  ServiceConfig config;
  config.consensus = {self, &*key, pool, {}, 120'000'000};
  config.consensus.buffers.data_window = 50'000;
  config.consensus.buffers.policy_window = 50'000;
  config.mining = {.data_diff = genesis->difficulty,
                   .policy_diff = genesis->difficulty,
                   .slice = {0, 0, UINT64_MAX}};
  config.miner_threads = 1;
  config.tick = 5'000;
  auto service = std::make_unique<NodeService>(config, view, transport);
  inbox = service.get();
  std::cout << "ready " << self << " " << (*network)->port() << std::endl;

  std::list<Pending> pending;
  auto next_report = std::chrono::steady_clock::now();
  while (!g_stop) {
    if (std::chrono::steady_clock::now() >= next_report) {
      // A heartbeat in the log, for reading a failed test.
      const net::NetMetrics m = (*network)->snapshot();
      std::cout << "net: peers " << m.connected.size() << ", frames in " << m.frames_in << " out "
                << m.frames_out << ", delivered " << m.delivered << ", confirmed "
                << view.confirmed().size() << ", pending " << pending.size() << std::endl;
      next_report += std::chrono::milliseconds(200);
    }
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(spool / "inbox", ec)) {
      if (entry.path().extension() != ".pkg") continue;
      const std::string name = entry.path().stem().string();
      auto bytes = read_small_file(entry.path(), 64 << 20, "package");
      fs::rename(entry.path(), entry.path().string() + ".taken", ec);
      auto package = bytes ? Package::decode(as_bytes(*bytes))
                           : Result<Package>(std::unexpected(bytes.error()));
      if (!package) {
        (void)write_file_atomically(spool / "done" / (name + ".err"), package.error().message, 0644,
                                    "result");
        continue;
      }
      pending.push_back({name, service->submit(std::move(*package))});
    }
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->confirmed.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        ++it;
        continue;
      }
      auto result = it->confirmed.get();
      (void)write_file_atomically(spool / "done" / (it->name + (result ? ".ok" : ".err")),
                                  result ? to_hex(*result) : result.error().message, 0644,
                                  "result");
      it = pending.erase(it);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // The network first, so that no message reaches a service that is stopping.
  (*network)->stop();
  inbox = nullptr;
  service.reset();
  std::cout << "stopped " << self << std::endl;
  return 0;
}
