// mchain-bench validate: package validation throughput against the raw cost of the three
// signature checks a package needs (SPEC goal: per core, at least 80% of raw P-256 / 3).
//
// With --store, the consensus round's path instead: decoded packages re-validated by
// ValidationPool::validate_all against a LevelDB Store, optionally with the signature cache
// warm (as after gossip), which leaves the view look-ups as the cost.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <thread>

#include "bench/bench.h"
#include "bench/verify_rate.h"
#include "chain/block/block.h"
#include "chain/crypto/aead.h"
#include "chain/crypto/hash.h"
#include "chain/crypto/sign.h"
#include "chain/package/records.h"
#include "chain/package/signature_cache.h"
#include "chain/package/validate.h"
#include "chain/package/validation_pool.h"
#include "chain/package/view.h"
#include "chain/store/store.h"

namespace mchain::bench {

namespace {

constexpr std::string_view kUsage =
    "usage: mchain-bench validate --packages N --size BYTES [--threads T] [--repeat R]\n"
    "                             [--alg ecdsa-p256-sha256|ed25519] [--json]\n"
    "                             [--store [--warm] [--history B] [--history-cache E]\n"
    "                                      [--dir DIR]]\n"
    "Builds N signed data packages of about BYTES encoded bytes each, then times\n"
    "validate_encoded() over all of them on T threads, and a one-thread P-256 verify loop.\n"
    "With --store, times ValidationPool::validate_all() of the decoded packages against a\n"
    "LevelDB store instead (a consensus round's re-validation), each pass after a store\n"
    "write as in a round, and reports ms per 200.\n"
    "  --packages N   data packages to validate per repeat (required)\n"
    "  --size BYTES   encoded package size to aim for; if smaller than an empty package,\n"
    "                 the report size instead (required)\n"
    "  --threads T    validating threads (default: hardware concurrency)\n"
    "  --repeat R     timed repeats; medians are reported (default: 5)\n"
    "  --alg ALG      key algorithm of the node, user and VM keys (default: ecdsa-p256-sha256)\n"
    "  --json         print one JSON object instead of aligned lines\n"
    "  --store        validate against a LevelDB store holding the node, user, VM and policy\n"
    "  --warm         with --store: a signature cache filled by one untimed pass, as after\n"
    "                 gossip (default: no cache, every signature verified)\n"
    "  --history B    with --store: first confirm B data blocks of N other packages each of\n"
    "                 the same VM, so the look-ups run in a grown store (default: 0)\n"
    "  --history-cache E  with --store: the store's history_cache_entries (default: the\n"
    "                 store's default; 0 turns the cache off)\n"
    "  --dir DIR      with --store: an empty directory for the store (default: a temporary\n"
    "                 one, removed at the end)\n";

constexpr double kRawLoopSeconds = 1.0;
// Sizing converges in two or three probes; a few more cover the CBOR length-head steps.
constexpr int kMaxSizeProbes = 8;

struct Options {
  std::uint64_t packages = 0;
  std::uint64_t size = 0;
  unsigned threads = 0;
  unsigned repeat = 5;
  crypto::SigAlg alg = crypto::SigAlg::ecdsa_p256_sha256;
  bool json = false;
  bool store = false;
  bool warm = false;
  std::uint64_t history = 0;
  std::size_t history_cache = StoreOptions{}.history_cache_entries;
  std::optional<std::filesystem::path> dir;
};

Options parse_options(std::span<const std::string_view> args) {
  Options o;
  o.threads = std::max(1u, std::thread::hardware_concurrency());
  bool history_cache_set = false;
  ArgCursor cursor(args);
  while (auto flag = cursor.next_flag()) {
    if (*flag == "--packages") {
      o.packages = cursor.uint_value(1, 100'000'000);
    } else if (*flag == "--size") {
      o.size = cursor.uint_value(1, 1'000'000);
    } else if (*flag == "--threads") {
      o.threads = static_cast<unsigned>(cursor.uint_value(1, 1024));
    } else if (*flag == "--repeat") {
      o.repeat = static_cast<unsigned>(cursor.uint_value(1, 1000));
    } else if (*flag == "--alg") {
      std::string_view name = cursor.value();
      auto alg = crypto::sig_alg_from_string(name);
      if (!alg) throw UsageError("--alg: unknown algorithm '" + std::string(name) + "'");
      o.alg = *alg;
    } else if (*flag == "--json") {
      cursor.no_value();
      o.json = true;
    } else if (*flag == "--store") {
      cursor.no_value();
      o.store = true;
    } else if (*flag == "--warm") {
      cursor.no_value();
      o.warm = true;
    } else if (*flag == "--history") {
      o.history = cursor.uint_value(0, 10'000);
    } else if (*flag == "--history-cache") {
      o.history_cache = cursor.uint_value(0, 1'000'000);
      history_cache_set = true;
    } else if (*flag == "--dir") {
      o.dir = std::filesystem::path(cursor.value());
    } else {
      throw UsageError("unknown flag " + std::string(*flag));
    }
  }
  if (o.packages == 0) throw UsageError("--packages is required");
  if (o.size == 0) throw UsageError("--size is required");
  if (!o.store && (o.warm || o.history != 0 || history_cache_set || o.dir)) {
    throw UsageError("--warm, --history, --history-cache and --dir need --store");
  }
  return o;
}

// A cluster of one node, one user and one running VM under policy v1, and N encoded data
// packages of that VM, each valid against the view.
struct Fixture {
  explicit Fixture(crypto::SigAlg alg)
      : node_key(need(crypto::PrivateKey::generate(alg), "generating the node key")),
        user_key(need(crypto::PrivateKey::generate(alg), "generating the user key")),
        vm_key(need(crypto::PrivateKey::generate(alg), "generating the VM key")) {}

  crypto::PrivateKey node_key;
  crypto::PrivateKey user_key;
  crypto::PrivateKey vm_key;
  MemoryView view;
  Uuid vm = Uuid::random();
  PolicyRef policy;
  crypto::AeadKey data_key = crypto::random_aead_key();
  TimeUs t0 = now_us();
  std::vector<Package> setup;  // membership, binding, policy: in the order admitted

  PackageSigners signers() const { return {&vm_key, &user_key, &node_key}; }
  PackageOrigin origin(TimeUs t) const { return {vm, "alice", "node-1", t}; }

  Package data_package(std::size_t index, ByteView report) const {
    return need(make_data_package(origin(t0 + 1 + index), policy, data_key, report, signers()),
                "building a data package");
  }
};

// Validates a setup package as a fresh arrival, then records it in the view.
void admit(Fixture& f, Result<Package> built, std::string_view what) {
  MemoryView& view = f.view;
  Package package = need(std::move(built), "building the " + std::string(what) + " package");
  ValidationResult result = validate(package, view);
  if (!result.ok()) {
    throw std::runtime_error("setup " + std::string(what) + " package rejected: " +
                             std::string(to_string(result.verdict)) + ": " + result.detail);
  }
  if (Status applied = view.apply(package); !applied) {
    throw std::runtime_error("applying the " + std::string(what) +
                             " package: " + applied.error().message);
  }
  f.setup.push_back(std::move(package));
}

Fixture make_fixture(crypto::SigAlg alg) {
  Fixture f(alg);
  // Genesis node, then user, VM and policy, each a microsecond apart; the policy takes effect
  // at t0 and the data packages follow from t0 + 1.
  f.view.add_node("node-1", f.node_key.public_key(), f.t0 - 3);
  admit(f,
        make_membership_package(
            {Uuid{}, "alice", "node-1", f.t0 - 2},
            MembershipRecord{MembershipAction::register_user, "alice", f.user_key.public_key()},
            {nullptr, &f.user_key, &f.node_key}),
        "membership");
  admit(f,
        make_binding_package(f.origin(f.t0 - 1), PolicyRef{}, BindingEvent::started,
                             f.vm_key.public_key(), f.signers()),
        "binding");
  PolicyRecord policy{
      f.vm, 1, AbeScheme::kp_abe_gpsw, {"tenant:alice", "tier:gold"}, "tenant:alice and tier:gold"};
  f.policy = policy.ref();
  admit(f, make_policy_package(f.origin(f.t0), policy, f.signers()), "policy");
  return f;
}

struct Sizing {
  std::size_t report_bytes = 0;
  bool whole_package = true;  // false: --size was below an empty package's size
};

// The report size that makes the encoded package `target` bytes. Timestamps all take the
// same CBOR width, so every package of one report size has one encoded size.
Sizing plan_size(const Fixture& f, std::size_t target) {
  auto encoded_size = [&](std::size_t report) {
    return f.data_package(0, Bytes(report)).encode().size();
  };
  const std::size_t empty = encoded_size(0);
  if (target < empty) return {target, false};
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
  return {best, true};
}

// Packages first, first + 1, ...: the index sets the timestamp; the report is random, so
// every package has its own id.
std::vector<Bytes> make_packages(const Fixture& f, std::size_t count, std::size_t report_bytes,
                                 std::size_t first = 0) {
  std::vector<Bytes> packages;
  packages.reserve(count);
  Bytes report(report_bytes);
  for (std::size_t i = first; i < first + count; ++i) {
    crypto::random_bytes(report);
    packages.push_back(f.data_package(i, report).encode());
  }
  return packages;
}

std::vector<Package> decode_all(const std::vector<Bytes>& encoded) {
  std::vector<Package> out;
  out.reserve(encoded.size());
  for (const Bytes& bytes : encoded) out.push_back(need(Package::decode(bytes), "decoding"));
  return out;
}

// Confirms `packages` as one semi-finished block led and marked by the fixture's only node.
void confirm_block(Store& store, const Fixture& f, std::vector<Package> packages,
                   std::uint64_t round, Hash256& previous) {
  const BlockType type = block_type_for(packages.front().header().type);
  const TimeUs t = packages.back().header().timestamp;
  Candidate candidate{type, "node-1", round, t, previous, std::move(packages)};
  SemiFinishedBlock semi =
      need(SemiFinishedBlock::propose(std::move(candidate), f.node_key), "proposing a block");
  need(semi.add_mark("node-1", f.node_key), "marking a block");
  need(store.confirm(semi), "confirming a block");
  previous = semi.hash();
}

struct Chain {
  std::unique_ptr<Store> store;
  Hash256 previous{};  // the last confirmed block
  std::uint64_t round = 0;
};

// A store whose view answers as the fixture's: the genesis node, then each setup package in
// a block of its own (validated against the store first), then `history` data blocks of
// `per_block` packages that are not among those validated.
Chain make_store(const Fixture& f, const std::filesystem::path& dir, std::size_t history_cache,
                 std::uint64_t history, std::size_t per_block, std::size_t report_bytes) {
  StoreOptions options;
  options.sync = false;  // setup speed only: reads are what is timed
  options.history_cache_entries = history_cache;
  Chain chain{need(Store::open(dir, options), "opening the store")};
  Store& store = *chain.store;
  need(store.add_genesis_node("node-1", f.node_key.public_key(), f.t0 - 3),
       "adding the genesis node");
  for (const Package& package : f.setup) {
    ValidationResult result = validate(package, store, {.check_timestamp = false});
    if (!result.ok()) {
      throw std::runtime_error("setup package rejected by the store: " +
                               std::string(to_string(result.verdict)) + ": " + result.detail);
    }
    confirm_block(store, f, {package}, chain.round++, chain.previous);
  }
  for (std::uint64_t b = 0; b < history; ++b) {
    const std::size_t first = per_block * static_cast<std::size_t>(b + 1);
    confirm_block(store, f, decode_all(make_packages(f, per_block, report_bytes, first)),
                  chain.round++, chain.previous);
  }
  return chain;
}

// The consensus round's re-validation: validate_all on the pool, as in ConsensusNode, with
// the candidate's time as "now".
// Prints the report (failures and setup time included) and returns the exit status: a run
// in which any package failed validation measured nothing worth reporting as a rate.
int finish(nlohmann::ordered_json& report, std::size_t failures, const std::string& first_failure,
           double setup_seconds, bool json) {
  report["failures"] = failures;
  report["setup_seconds"] = setup_seconds;
  print_report(report, json);
  if (failures != 0) {
    std::cerr << "mchain-bench validate: " << failures
              << " validation failures; first: " << first_failure << '\n';
    return 1;
  }
  return 0;
}

int run_store(const Options& o, const Fixture& f, const Sizing& sizing,
              const std::vector<Bytes>& encoded, double setup_seconds) {
  const Clock::time_point store_start = Clock::now();
  WorkDir dir(o.dir, "mchain-validate-bench");
  Chain chain = make_store(f, dir.path() / "store", o.history_cache, o.history, encoded.size(),
                           sizing.report_bytes);
  const std::vector<Package> packages = decode_all(encoded);
  // Rounds follow confirmations: before each pass a one-package block of the same VM is
  // confirmed, so each pass starts with the store's history cache empty, as a round does.
  const std::vector<Package> between = decode_all(
      make_packages(f, o.repeat + 1, sizing.report_bytes, encoded.size() * (o.history + 1)));
  setup_seconds += seconds_since(store_start);

  ValidationPool pool(o.threads);
  SignatureCache cache;
  ValidationOptions options;
  options.now = packages.back().header().timestamp;
  options.signature_cache = o.warm ? &cache : nullptr;
  std::size_t failures = 0;
  std::string first_failure;
  auto pass = [&] {
    const Clock::time_point start = Clock::now();
    std::vector<ValidationResult> results = pool.validate_all(packages, *chain.store, options);
    const double seconds = seconds_since(start);
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!results[i].ok() && failures++ == 0) {
        first_failure = "package " + std::to_string(i) + ": " +
                        std::string(to_string(results[i].verdict)) + ": " + results[i].detail;
      }
    }
    return seconds;
  };
  confirm_block(*chain.store, f, {between[o.repeat]}, chain.round++, chain.previous);
  pass();  // untimed: fills the signature cache (--warm), LevelDB's caches, the pool
  const SignatureCache::Stats filled = cache.stats();
  std::vector<double> seconds;
  for (unsigned r = 0; r < o.repeat; ++r) {
    confirm_block(*chain.store, f, {between[r]}, chain.round++, chain.previous);
    seconds.push_back(pass());
  }
  const SignatureCache::Stats stats = cache.stats();

  double total_bytes = 0;
  for (const Bytes& package : encoded) total_bytes += static_cast<double>(package.size());
  const double n = static_cast<double>(packages.size());
  nlohmann::ordered_json report;
  report["benchmark"] = "validate-store";
  report["alg"] = std::string(crypto::to_string(o.alg));
  report["packages"] = o.packages;
  report["package_bytes"] = total_bytes / n;
  report["threads"] = o.threads;
  report["hardware_threads"] = std::thread::hardware_concurrency();
  report["signature_cache"] = o.warm ? "warm" : "none";
  report["history_blocks"] = o.history;
  report["history_cache_entries"] = o.history_cache;
  report["repeat"] = o.repeat;
  report["seconds_median"] = median(seconds);
  report["seconds_min"] = *std::min_element(seconds.begin(), seconds.end());
  report["ms_per_200_median"] = median(seconds) * 1000 * 200 / n;
  report["us_per_package_median"] = median(seconds) * 1e6 / n;
  report["packages_per_second"] = n / median(seconds);
  report["signature_cache_hits_timed"] = stats.hits - filled.hits;
  report["signature_cache_misses_timed"] = stats.misses - filled.misses;
  return finish(report, failures, first_failure, setup_seconds, o.json);
}

struct Phase {
  double seconds = 0;
  std::size_t failures = 0;
  std::string first_failure;
};

// One timed pass: every package validated once, the array split in contiguous slices.
Phase validate_all(const std::vector<Bytes>& packages, const View& view, unsigned threads) {
  std::vector<std::size_t> failures(threads, 0);
  std::vector<std::string> first_failure(threads);
  const std::size_t n = packages.size();
  const Clock::time_point start = Clock::now();
  {
    std::vector<std::jthread> workers;
    workers.reserve(threads);
    for (unsigned k = 0; k < threads; ++k) {
      workers.emplace_back([&, k, begin = n * k / threads, end = n * (k + 1) / threads] {
        // Packages were made "in the past": this is history re-validation, not arrival.
        ValidationOptions options;
        options.check_timestamp = false;
        for (std::size_t i = begin; i < end; ++i) {
          ValidationResult result = validate_encoded(packages[i], view, options);
          if (!result.ok() && failures[k]++ == 0) {
            first_failure[k] = "package " + std::to_string(i) + ": " +
                               std::string(to_string(result.verdict)) + ": " + result.detail;
          }
        }
      });
    }
  }  // the jthreads join here
  Phase phase{seconds_since(start), 0, {}};
  for (unsigned k = 0; k < threads; ++k) {
    phase.failures += failures[k];
    if (phase.first_failure.empty()) phase.first_failure = first_failure[k];
  }
  return phase;
}

int run_validate(std::span<const std::string_view> args) {
  const Options o = parse_options(args);

  const Clock::time_point setup_start = Clock::now();
  const Fixture fixture = make_fixture(o.alg);
  const Sizing sizing = plan_size(fixture, o.size);
  const std::vector<Bytes> packages = make_packages(fixture, o.packages, sizing.report_bytes);
  double total_bytes = 0;
  for (const Bytes& package : packages) total_bytes += static_cast<double>(package.size());
  const double setup_seconds = seconds_since(setup_start);
  if (o.store) return run_store(o, fixture, sizing, packages, setup_seconds);

  std::vector<double> seconds, rates;
  std::size_t failures = 0;
  std::string first_failure;
  for (unsigned r = 0; r < o.repeat; ++r) {
    Phase phase = validate_all(packages, fixture.view, o.threads);
    seconds.push_back(phase.seconds);
    rates.push_back(static_cast<double>(packages.size()) / phase.seconds);
    failures += phase.failures;
    if (first_failure.empty()) first_failure = std::move(phase.first_failure);
  }
  std::vector<double> raw_rates;
  for (unsigned r = 0; r < o.repeat; ++r) {
    raw_rates.push_back(p256_verify_rate_per_core(kRawLoopSeconds));
  }

  const double rate = median(rates);
  const double per_core = rate / o.threads;
  const double raw = median(raw_rates);
  // Three verifications per package; 20% is the budget for everything else.
  const double goal = 0.8 * raw / 3;

  nlohmann::ordered_json report;
  report["benchmark"] = "validate";
  report["alg"] = std::string(crypto::to_string(o.alg));
  report["packages"] = o.packages;
  report["package_bytes"] = total_bytes / static_cast<double>(packages.size());
  report["size_target"] = o.size;
  report["size_applies_to"] = sizing.whole_package ? "package" : "report";
  report["report_bytes"] = sizing.report_bytes;
  report["threads"] = o.threads;
  report["hardware_threads"] = std::thread::hardware_concurrency();
  report["repeat"] = o.repeat;
  report["seconds_median"] = median(seconds);
  report["seconds_min"] = *std::min_element(seconds.begin(), seconds.end());
  report["packages_per_second"] = rate;
  report["per_core_packages_per_second"] = per_core;
  report["raw_p256_verifies_per_second"] = raw;
  report["goal_per_core_packages_per_second"] = goal;
  report["per_core_vs_goal"] = per_core / goal;
  // A rejected package was not validated in full, so its rate proves nothing.
  report["meets_goal"] = failures == 0 && per_core >= goal;
  return finish(report, failures, first_failure, setup_seconds, o.json);
}

}  // namespace

const Subcommand kValidateCommand{
    "validate", "time validate_encoded() over N data packages on T threads", kUsage, run_validate};

}  // namespace mchain::bench
