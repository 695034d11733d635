// mchain-bench build: the paper's block-building workload (Fig. 8) on one host, through the
// real pipeline: data packages built and signed, submitted to a one-node ConsensusNode, data
// candidates closed by their byte cap and confirmed durably in a LevelDB store, then mined at
// difficulty D and appended. Reports the total time and where it goes.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "bench/bench.h"
#include "chain/crypto/aead.h"
#include "chain/crypto/hash.h"
#include "chain/crypto/sign.h"
#include "chain/node/consensus.h"
#include "chain/node/mining.h"
#include "chain/node/transport.h"
#include "chain/package/records.h"
#include "chain/pow/pow.h"
#include "chain/store/store.h"

namespace mchain::bench {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kUsage =
    "usage: mchain-bench build --blocks N --diff D [--package-bytes BYTES]\n"
    "                          [--block-bytes BYTES] [--threads T] [--no-sync] [--dir DIR]\n"
    "                          [--json]\n"
    "Builds N data blocks on one host, the paper's Fig. 8 workload: each package is built and\n"
    "signed, submitted to a one-node consensus (validated, buffered), the data candidate\n"
    "closes at its byte cap and is confirmed durably in a LevelDB store, then the block is\n"
    "mined at difficulty D and appended. Times the whole build (key generation and the setup\n"
    "of user, VM and policy excluded) and its parts: signing, consensus, mining, append.\n"
    "  --blocks N           data blocks to build (required)\n"
    "  --diff D             difficulty of every block, 1..64 (required)\n"
    "  --package-bytes B    encoded size of each data package (default: 2960, the paper's)\n"
    "  --block-bytes B      byte cap of a data candidate (default: 62464, about 61 KB: 21\n"
    "                       packages of 2,960 bytes; 2000 blocks hold ~124 MB of packages)\n"
    "  --threads T          mining threads (default: hardware concurrency)\n"
    "  --no-sync            do not fsync store writes (default: every batch is synced)\n"
    "  --dir DIR            store directory, new or empty, kept afterwards (default: a fresh\n"
    "                       temporary directory, removed at the end)\n"
    "  --json               print one JSON object instead of aligned lines\n";

// The paper's single-host figures (§VI.B.2, Fig. 8): 2000 blocks, 123 MB, Diff 16, Python
// 2.7. S4 is the single node C1 (Pentium G3250, 3.2 GHz), S5 the single node C2 (Xeon
// E5-2603 v4, 1.7 GHz).
constexpr double kPaperS4Seconds = 7411;
constexpr double kPaperS5Seconds = 9628;
constexpr unsigned kPaperBlocks = 2000;
constexpr unsigned kPaperDiff = 16;

constexpr std::string_view kNode = "node-1";
constexpr std::string_view kUser = "alice";
// Sizing converges in two or three probes; a few more cover the CBOR length-head steps.
constexpr int kMaxSizeProbes = 8;
// Long enough that only the caps close data candidates, whatever the machine's speed.
constexpr TimeUs kDataWindow = TimeUs{24} * 3600 * 1'000'000;

struct Options {
  std::uint64_t blocks = 0;
  unsigned diff = 0;
  std::uint64_t package_bytes = 2960;
  std::uint64_t block_bytes = 62464;
  unsigned threads = 0;
  bool sync = true;
  std::optional<fs::path> dir;
  bool json = false;
};

Options parse_options(std::span<const std::string_view> args) {
  Options o;
  o.threads = std::max(1u, std::thread::hardware_concurrency());
  ArgCursor cursor(args);
  while (auto flag = cursor.next_flag()) {
    if (*flag == "--blocks") {
      o.blocks = cursor.uint_value(1, 10'000'000);
    } else if (*flag == "--diff") {
      o.diff = static_cast<unsigned>(cursor.uint_value(1, 64));
    } else if (*flag == "--package-bytes") {
      o.package_bytes = cursor.uint_value(1, 1'000'000);
    } else if (*flag == "--block-bytes") {
      o.block_bytes = cursor.uint_value(1, 16'000'000);
    } else if (*flag == "--threads") {
      o.threads = static_cast<unsigned>(cursor.uint_value(1, 1024));
    } else if (*flag == "--no-sync") {
      cursor.no_value();
      o.sync = false;
    } else if (*flag == "--dir") {
      o.dir = fs::path(cursor.value());
    } else if (*flag == "--json") {
      cursor.no_value();
      o.json = true;
    } else {
      throw UsageError("unknown flag " + std::string(*flag));
    }
  }
  if (o.blocks == 0) throw UsageError("--blocks is required");
  if (o.diff == 0) throw UsageError("--diff is required");
  return o;
}

// Adds the time from construction to destruction to `total`.
class Stopwatch {
 public:
  explicit Stopwatch(double& total) : total_(total), start_(Clock::now()) {}
  ~Stopwatch() { total_ += seconds_since(start_); }
  Stopwatch(const Stopwatch&) = delete;
  Stopwatch& operator=(const Stopwatch&) = delete;

 private:
  double& total_;
  Clock::time_point start_;
};


// Package timestamps from the real clock, strictly increasing: every package is fresh when
// submitted, and two packages of the VM never share a microsecond.
class PackageClock {
 public:
  TimeUs next() { return last_ = std::max(now_us(), last_ + 1); }

 private:
  TimeUs last_ = 0;
};

// One node, one registered user, one VM started on the node under policy v1: the validate
// benchmark's cluster, here confirmed through consensus.
struct Keys {
  crypto::PrivateKey node = need(crypto::PrivateKey::generate(crypto::SigAlg::ecdsa_p256_sha256),
                                 "generating the node key");
  crypto::PrivateKey user = need(crypto::PrivateKey::generate(crypto::SigAlg::ecdsa_p256_sha256),
                                 "generating the user key");
  crypto::PrivateKey vm = need(crypto::PrivateKey::generate(crypto::SigAlg::ecdsa_p256_sha256),
                               "generating the VM key");
  PackageSigners signers() const { return {&vm, &user, &node}; }
};

struct Host {
  std::unique_ptr<Store> store;
  LocalTransport transport;
  std::unique_ptr<ConsensusNode> node;
  std::vector<Hash256> confirmed;  // semi-finished blocks, in confirmation order
  std::size_t packages_confirmed = 0;
  std::size_t dropped = 0;  // buffered packages that turned invalid
  std::size_t accusations = 0;
};

void open_host(Host& host, const Keys& keys, const fs::path& dir, const Options& o, TimeUs t0) {
  StoreOptions store_options;
  store_options.sync = o.sync;
  host.store = need(Store::open(dir, store_options), "opening the store");
  need(host.store->add_genesis_node(std::string(kNode), keys.node.public_key(), t0),
       "adding the genesis node");
  BufferOptions buffers{
      .max_data_packages = 1'000'000,  // the byte cap closes data candidates
      .max_data_bytes = o.block_bytes,
      .max_policy_packages = 10'000,
      .data_window = kDataWindow,
      // Only the setup uses policy blocks, one package each: propose them at once.
      .policy_window = 0,
  };
  ConsensusConfig config{
      std::string(kNode), &keys.node, {std::string(kNode)}, buffers, 120'000'000};
  host.node = std::make_unique<ConsensusNode>(config, *host.store, host.transport);
  host.node->on_confirmed = [&host](const SemiFinishedBlock& block) {
    host.confirmed.push_back(block.hash());
    host.packages_confirmed += block.candidate.packages.size();
  };
  host.node->on_dropped = [&host](const Package&, const ValidationResult&) { ++host.dropped; };
  host.node->on_accusation = [&host](const Accusation&) { ++host.accusations; };
  // With one node nothing is ever delivered; attached so the host is wired as in a cluster.
  host.transport.attach(std::string(kNode), [&host](const std::string& from, const Bytes& m) {
    host.node->receive(from, m, now_us());
  });
}

void submit(Host& host, const Package& package, std::string_view what) {
  ValidationResult result = host.node->submit(package, now_us());
  if (!result.ok()) {
    throw std::runtime_error(std::string(what) + " package rejected: " +
                             std::string(to_string(result.verdict)) + ": " + result.detail);
  }
}

// Confirms one setup package in its own policy block: each depends on the one before, and
// packages are validated against the confirmed view only.
void confirm_setup(Host& host, Result<Package> built, std::string_view what) {
  const Package package = need(std::move(built), "building the " + std::string(what) + " package");
  const std::size_t before = host.confirmed.size();
  submit(host, package, what);
  host.node->tick(now_us());
  host.transport.pump();
  if (host.confirmed.size() != before + 1) {
    throw std::runtime_error("the " + std::string(what) + " package was not confirmed");
  }
}

// Mines the head of the mining queue and appends it; returns the nonces hashed. mine_next
// returns early on an empty queue, leaving the miner's last_hashes_tried() stale: call it
// only when a block is waiting.
std::uint64_t mine_one(Store& store, pow::Miner& miner, const MiningConfig& config, double& mining,
                       double& append) {
  const std::atomic<bool> stop{false};
  std::optional<Block> block;
  {
    Stopwatch timer(mining);
    block = need(mine_next(store, miner, config, now_us(), stop), "mining");
  }
  if (!block) throw std::runtime_error("a confirmed block was not mined");
  Stopwatch timer(append);
  const AppendResult appended = need(store.append(*block), "appending a mined block");
  if (!appended.new_tip) throw std::runtime_error("a mined block did not become the tip");
  return miner.last_hashes_tried();
}

// The report size that makes the encoded package `target` bytes. Timestamps of this era all
// take the same CBOR width, so every package of one report size has one encoded size.
std::size_t plan_report_bytes(const Keys& keys, const Uuid& vm, const PolicyRef& policy,
                              const crypto::AeadKey& data_key, std::size_t target) {
  auto encoded_size = [&](std::size_t report) {
    return need(make_data_package({vm, std::string(kUser), std::string(kNode), now_us()}, policy,
                                  data_key, Bytes(report), keys.signers()),
                "building a data package")
        .encode()
        .size();
  };
  const std::size_t empty = encoded_size(0);
  if (target < empty) {
    throw UsageError("--package-bytes: the smallest data package is " + std::to_string(empty) +
                     " bytes");
  }
  // Near a CBOR length-head boundary the exact size may be unreachable: keep the largest
  // report that does not overshoot.
  std::size_t report = target - empty;
  std::size_t best = 0;
  for (int probe = 0; probe < kMaxSizeProbes; ++probe) {
    const std::size_t got = encoded_size(report);
    if (got <= target) best = std::max(best, report);
    if (got == target) break;
    report = got > target ? report - std::min(report, got - target) : report + (target - got);
  }
  return best;
}

struct Check {
  std::size_t data_blocks = 0;  // data blocks in the main chain
  double block_bytes = 0;       // encoded semi-finished blocks, summed
  double package_bytes = 0;     // their encoded packages, summed
  std::size_t failures = 0;
  std::string first_failure;
};

// After the timed build: the main chain holds every confirmed block, in order, each meeting
// its difficulty, and nothing is left to mine.
Check check_chain(const Store& store, const std::vector<Hash256>& confirmed, unsigned diff) {
  Check c;
  auto fail = [&](std::string what) {
    if (c.failures++ == 0) c.first_failure = std::move(what);
  };
  const auto tip = store.tip();
  if (!tip || tip->height + 1 != confirmed.size()) fail("the tip is not at the expected height");
  if (!store.mining_queue().empty()) fail("blocks are left in the mining queue");
  for (std::uint64_t height = 0; height < confirmed.size(); ++height) {
    const auto hash = store.main_chain_at(height);
    if (!hash) {
      fail("no main-chain block at height " + std::to_string(height));
      continue;
    }
    const Block block = need(store.block(*hash), "reading a mined block");
    const auto type = static_cast<std::uint8_t>(block.header.type);
    if (block.body.hash() != confirmed[height] || block.header.diff != diff ||
        !pow::meets_difficulty(block.hash(), type, diff)) {
      fail("the block at height " + std::to_string(height) + " is not the one expected");
    }
    if (block.header.type == BlockType::data) {
      ++c.data_blocks;
      c.block_bytes += static_cast<double>(block.body.encode().size());
      for (const Package& p : block.body.candidate.packages) {
        c.package_bytes += static_cast<double>(p.encode().size());
      }
    }
  }
  return c;
}

int run_build(std::span<const std::string_view> args) {
  const Options o = parse_options(args);
  WorkDir dir(o.dir, "mchain-build");

  // ---- setup, not timed: keys, the store, user, VM and policy confirmed and mined.
  const Keys keys;
  const Uuid vm = Uuid::random();
  const crypto::AeadKey data_key = crypto::random_aead_key();
  PackageClock clock;
  const TimeUs t0 = clock.next();
  Host host;
  open_host(host, keys, dir.path(), o, t0);
  confirm_setup(
      host,
      make_membership_package({Uuid{}, std::string(kUser), std::string(kNode), clock.next()},
                              MembershipRecord{MembershipAction::register_user, std::string(kUser),
                                               keys.user.public_key()},
                              {nullptr, &keys.user, &keys.node}),
      "membership");
  auto origin = [&](TimeUs t) {
    return PackageOrigin{vm, std::string(kUser), std::string(kNode), t};
  };
  confirm_setup(host,
                make_binding_package(origin(clock.next()), PolicyRef{}, BindingEvent::started,
                                     keys.vm.public_key(), keys.signers()),
                "binding");
  const PolicyRecord policy{
      vm, 1, AbeScheme::kp_abe_gpsw, {"tenant:alice", "tier:gold"}, "tenant:alice and tier:gold"};
  confirm_setup(host, make_policy_package(origin(clock.next()), policy, keys.signers()), "policy");
  const std::size_t setup_blocks = host.confirmed.size();
  const std::size_t setup_packages = host.packages_confirmed;

  pow::Miner miner(o.threads);
  const auto diff = static_cast<std::uint8_t>(o.diff);
  // One node: its slice is the whole nonce space.
  const MiningConfig config{.data_diff = diff, .policy_diff = diff, .slice = {0, 0, UINT64_MAX}};
  double ignored_mining = 0, ignored_append = 0;
  for (std::size_t i = 0; i < setup_blocks; ++i) {
    mine_one(*host.store, miner, config, ignored_mining, ignored_append);
  }

  const std::size_t report_bytes =
      plan_report_bytes(keys, vm, policy.ref(), data_key, o.package_bytes);

  // ---- timed: N data blocks through the whole pipeline, one after another.
  double signing = 0, submitting = 0, rounds = 0, mining = 0, append = 0;
  std::uint64_t hashes = 0;
  std::size_t signed_packages = 0;
  Bytes report(report_bytes);
  const Clock::time_point start = Clock::now();
  while (host.confirmed.size() - setup_blocks < o.blocks) {
    crypto::random_bytes(report);  // stands in for a measurement report
    std::optional<Package> package;
    {
      Stopwatch timer(signing);
      package = need(
          make_data_package(origin(clock.next()), policy.ref(), data_key, report, keys.signers()),
          "building a data package");
    }
    ++signed_packages;
    const std::size_t confirmed_before = host.confirmed.size();
    {
      Stopwatch timer(submitting);
      submit(host, *package, "a data");
    }
    {
      Stopwatch timer(rounds);
      // One node leads every round: the tick proposes, marks and confirms a due candidate.
      host.node->tick(now_us());
      host.transport.pump();
    }
    if (host.dropped != 0 || host.accusations != 0) {
      throw std::runtime_error("consensus dropped a package or accused the leader");
    }
    // A tick confirms at most one block; mine each one before the next package.
    for (std::size_t i = confirmed_before; i < host.confirmed.size(); ++i) {
      hashes += mine_one(*host.store, miner, config, mining, append);
    }
  }
  const double total = seconds_since(start);

  // ---- checked afterwards, not timed.
  const Check check = check_chain(*host.store, host.confirmed, o.diff);
  const std::size_t packages = host.packages_confirmed - setup_packages;
  const double blocks = static_cast<double>(o.blocks);

  nlohmann::ordered_json out;
  out["benchmark"] = "build";
  out["blocks"] = o.blocks;
  out["diff"] = o.diff;
  out["total_seconds"] = total;
  out["seconds_per_block"] = total / blocks;
  out["threads"] = o.threads;
  out["hardware_threads"] = std::thread::hardware_concurrency();
  out["package_bytes"] = packages == 0 ? 0.0 : check.package_bytes / static_cast<double>(packages);
  out["packages"] = packages;
  out["packages_per_block"] = static_cast<double>(packages) / blocks;
  out["block_bytes_cap"] = o.block_bytes;
  out["block_bytes_avg"] = check.data_blocks == 0 ? 0.0 : check.block_bytes / check.data_blocks;
  out["mb_of_packages"] = check.package_bytes / 1e6;
  out["signing_seconds"] = signing;
  out["consensus_seconds"] = submitting + rounds;
  // Submit validates and buffers; a round re-validates in the leader's check and again in
  // its own marking, then confirms durably (one synced batch).
  out["consensus_submit_seconds"] = submitting;
  out["consensus_round_seconds"] = rounds;
  out["mining_seconds"] = mining;
  out["append_seconds"] = append;
  out["other_seconds"] = total - signing - submitting - rounds - mining - append;
  out["hashes"] = hashes;
  out["hashes_per_second"] = mining > 0 ? static_cast<double>(hashes) / mining : 0.0;
  out["sync"] = o.sync;
  // A few more than `packages`: the last ones wait for a block N + 1 that is not built.
  out["packages_signed"] = signed_packages;
  out["mined_data_blocks"] = check.data_blocks;
  out["paper_blocks"] = kPaperBlocks;
  out["paper_diff"] = kPaperDiff;
  out["paper_s4_total_seconds"] = kPaperS4Seconds;
  out["paper_s5_total_seconds"] = kPaperS5Seconds;
  out["failures"] = check.failures;
  print_report(out, o.json);

  if (check.failures != 0) {
    std::cerr << "mchain-bench build: " << check.failures
              << " chain check failures; first: " << check.first_failure << '\n';
    return 1;
  }
  return 0;
}

}  // namespace

const Subcommand kBuildCommand{
    "build", "build N data blocks through consensus, store and mining (paper Fig. 8)", kUsage,
    run_build};

}  // namespace mchain::bench
