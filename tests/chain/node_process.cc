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
//       [--round-timeout-ms N] [--silence-ms N] [--window-ms N] [--max-data-packages N]
//       [--mode concurrent|inorder] [--signature-cache on|off] [--verify-threads N]
//       [--trace FILE] [--misbehave invalid-package|forge-mark|bad-pow [--misbehave-after N]]
//       [--join HOST:PORT] [--alarm-command PATH]
//
// --alarm-command runs PATH for every accusation (chain/node/alarm.h).
// --join starts a node that is not in the genesis file: it listens on HOST:PORT and dials
// every genesis node; the members let it in once an add-node package for its key is
// confirmed.
// --trace appends "proposed ROUND T" and "confirmed ROUND T PACKAGES" lines for the
// confirmation benchmark: ROUND names the proposal by its round, "PREVIOUS-ATTEMPT" (the hash
// of L in hex; one proposal per round), which costs no hashing of the block; T in µs since the
// epoch, durable when written.
// --misbehave makes the node a faulty member for the fault tests: it proposes a package with
// a broken signature when it leads, sends marks in other nodes' names for every proposal, or
// floods mature blocks whose proof of work is wrong; with --misbehave-after, only once it has
// confirmed N blocks (so that a test can set its world up first).
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <list>
#include <mutex>
#include <thread>

#include "chain/file_io.h"
#include "chain/net/peer_network.h"
#include "chain/node/runtime.h"
#include "chain/pow/pow.h"
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

std::uint64_t number(const std::map<std::string, std::string>& args, const std::string& name,
                     std::uint64_t fallback) {
  auto it = args.find(name);
  if (it == args.end()) return fallback;
  auto value = parse_u64(it->second);
  if (!value) {
    std::cerr << "mchain_test_node: " << name << " wants a number\n";
    std::exit(2);
  }
  return *value;
}

// A copy of `package` with one bit of its last signature flipped: it decodes, and fails
// validation with a bad signature.
Package with_broken_signature(const Package& package) {
  Bytes bytes = package.encode();
  bytes[bytes.size() - 3] ^= 0x01;
  auto broken = Package::decode(bytes);
  return broken ? *std::move(broken) : package;
}

// A mature block over a confirmed semi-finished block whose hash does not meet the
// difficulty the header claims (or meets only a lower one than the chain requires).
std::optional<Block> bad_pow_block(const Store& store, std::uint8_t diff, bool low_diff) {
  auto confirmed = store.confirmed();
  if (confirmed.empty()) return std::nullopt;
  auto body = store.semi_finished(confirmed.back());
  if (!body) return std::nullopt;
  Block block{{}, *std::move(body)};
  BlockHeader& h = block.header;
  h.type = block.body.candidate.type;
  h.diff = low_diff ? 1 : diff;
  if (auto tip = store.tip()) {
    h.previous = tip->hash;
    h.height = tip->height + 1;
  }
  h.timestamp = now_us();
  h.merkle_root = block.body.candidate.merkle_root();
  h.semi_finished = block.body.hash();
  for (h.nonce_lo = 0;; ++h.nonce_lo) {
    const bool meets = pow::meets_difficulty(h.hash(), static_cast<std::uint8_t>(h.type), h.diff);
    if (meets == low_diff) break;  // low: the first that meets diff 1; else one that fails
  }
  return block;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  const std::string misbehave = args.contains("--misbehave") ? args["--misbehave"] : "";
  if (!misbehave.empty() && misbehave != "invalid-package" && misbehave != "forge-mark" &&
      misbehave != "bad-pow") {
    return die("unknown --misbehave " + misbehave);
  }
  const std::uint64_t misbehave_after = number(args, "--misbehave-after", 0);
  std::atomic<bool> misbehaving{!misbehave.empty() && misbehave_after == 0};
  for (const char* required : {"--genesis", "--id", "--key", "--store", "--spool"}) {
    if (!args.contains(required)) return die(std::string("missing ") + required);
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  const std::string self = args["--id"];

  NodeRuntimeOptions o;
  o.genesis_file = args["--genesis"];
  o.node_id = self;
  o.key_file = args["--key"];
  o.store_dir = args["--store"];
  if (args.contains("--join")) {
    const std::string& at = args["--join"];
    const auto colon = at.rfind(':');
    auto port = colon == std::string::npos ? std::nullopt : parse_u64(at.substr(colon + 1));
    if (!port || *port == 0 || *port > 65535) return die("--join wants HOST:PORT");
    o.join_at.emplace(at.substr(0, colon), static_cast<std::uint16_t>(*port));
  }
  o.round_timeout = static_cast<TimeUs>(number(args, "--round-timeout-ms", 2000)) * 1000;
  o.silence = static_cast<TimeUs>(number(args, "--silence-ms", 3000)) * 1000;
  o.window = static_cast<TimeUs>(number(args, "--window-ms", 50)) * 1000;
  o.max_data_packages = number(args, "--max-data-packages", 1000);
  const std::string mode = args.contains("--mode") ? args["--mode"] : "concurrent";
  if (mode != "concurrent" && mode != "inorder") return die("unknown --mode " + mode);
  o.mode = mode == "inorder" ? ValidationMode::in_order : ValidationMode::concurrent;
  o.signature_cache = !args.contains("--signature-cache") || args["--signature-cache"] == "on";
  o.verify_threads = static_cast<unsigned>(number(args, "--verify-threads", 0));
  if (args.contains("--alarm-command")) o.alarm_command = {args["--alarm-command"]};
  o.log = [&self](const std::string& line) {
    std::cout << "consensus[" << self << "]: " << line << std::endl;
  };
  o.on_accusation = [&self](const Accusation& a) {
    std::cout << "ALARM[" << self << "]: " << a.proposal.candidate.leader << " accused by "
              << a.accuser << " (" << to_string(a.verdict) << ")" << std::endl;
  };
  o.on_misbehaviour = [&self](const Misbehaviour& m) {
    std::cout << "ALARM[" << self << "]: " << m.node << " misbehaved (" << to_string(m.offence)
              << ": " << m.detail << ")" << std::endl;
  };

  std::ofstream trace;
  if (args.contains("--trace")) {
    trace.open(args["--trace"], std::ios::app);
    if (!trace) return die("cannot open " + args["--trace"]);
  }
  std::mutex trace_mutex;
  auto trace_line = [&](const std::string& what, const SemiFinishedBlock& block) {
    if (!trace.is_open()) return;
    const TimeUs at = now_us();
    std::lock_guard lock(trace_mutex);
    trace << what << ' ' << to_hex(block.candidate.previous) << '-' << block.candidate.round << ' '
          << at;
    if (what == "confirmed") trace << ' ' << block.candidate.packages.size();
    trace << std::endl;
  };
  o.on_proposed = [&](const SemiFinishedBlock& b) { trace_line("proposed", b); };
  o.on_confirmed = [&](const SemiFinishedBlock& b) { trace_line("confirmed", b); };

  // Misbehaving: marks in every other member's name, signed with our own key, for every
  // proposal as it arrives (before this node's own checks could delay them).
  std::atomic<NodeRuntime*> forger{nullptr};
  if (misbehave == "forge-mark") {
    o.on_message = [&](const std::string&, const Bytes& message) {
      NodeRuntime* rt = forger.load();
      if (rt == nullptr || !misbehaving) return;
      auto decoded = decode_message(message);
      if (!decoded || !std::holds_alternative<Proposal>(*decoded)) return;
      const Hash256 hash = std::get<Proposal>(*decoded).block.candidate.hash();
      for (const GenesisNode& other : rt->genesis().nodes) {
        if (other.id == self) continue;
        auto signature = rt->key().sign(valid_mark_signing_message(hash));
        if (signature) {
          (void)rt->network().broadcast(
              encode_message(Mark{hash, ValidMark{other.id, *signature}}));
        }
      }
    };
  }
  if (misbehave == "invalid-package") {
    o.tamper_candidate = [&misbehaving](Candidate& c) {
      if (misbehaving && !c.packages.empty() && c.type == BlockType::data) {
        c.packages[0] = with_broken_signature(c.packages[0]);
      }
    };
  }

  auto runtime = NodeRuntime::start(std::move(o));
  if (!runtime) return die(runtime.error().message);
  NodeRuntime& rt = **runtime;
  forger = &rt;
  NodeService* service = &rt.service();
  const Genesis& genesis = rt.genesis();

  const fs::path spool = args["--spool"];
  fs::create_directories(spool / "inbox");
  fs::create_directories(spool / "done");
  std::cout << "ready " << self << " " << rt.port() << std::endl;

  std::list<Pending> pending;
  auto next_report = std::chrono::steady_clock::now();
  while (!g_stop) {
    if (std::chrono::steady_clock::now() >= next_report) {
      // A heartbeat in the log, for reading a failed test.
      const net::NetMetrics m = rt.network().snapshot();
      const NodeSnapshot s = service->snapshot();
      std::cout << "net: peers " << m.connected.size() << ", frames in " << m.frames_in << " out "
                << m.frames_out << ", delivered " << m.delivered << ", confirmed " << s.confirmed
                << ", pending " << pending.size() << ", height " << s.height << ", pool "
                << s.pool.size() << (s.suspended ? " (suspended)" : "") << ", attempt " << s.attempt
                << ", timeouts " << s.counters.timeouts << ", accusations "
                << s.counters.accusations << ", bad marks " << s.counters.bad_marks
                << ", bad blocks " << s.counters.bad_blocks << ", offences " << s.counters.offences
                << ", synced " << s.counters.synced << std::endl;
      next_report += std::chrono::milliseconds(200);
      if (!misbehave.empty() && s.confirmed >= misbehave_after) misbehaving = true;
      if (misbehave == "bad-pow" && misbehaving) {
        static bool low = false;
        low = !low;
        if (auto block = bad_pow_block(rt.store(), genesis.difficulty, low)) {
          (void)rt.network().broadcast(encode_message(MinedBlock{*block}));
        }
      }
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
  forger = nullptr;
  rt.stop();  // the network first, so that no message reaches a service that is stopping
  std::cout << "stopped " << self << std::endl;
  return 0;
}
