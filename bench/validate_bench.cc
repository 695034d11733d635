// mchain-bench validate: package validation throughput against the raw cost of the three
// signature checks a package needs (SPEC goal: per core, at least 80% of raw P-256 / 3).
#include <algorithm>
#include <chrono>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "bench/bench.h"
#include "bench/verify_rate.h"
#include "chain/crypto/aead.h"
#include "chain/crypto/hash.h"
#include "chain/crypto/sign.h"
#include "chain/package/records.h"
#include "chain/package/validate.h"
#include "chain/package/view.h"

namespace mchain::bench {

namespace {

constexpr std::string_view kUsage =
    "usage: mchain-bench validate --packages N --size BYTES [--threads T] [--repeat R]\n"
    "                             [--alg ecdsa-p256-sha256|ed25519] [--json]\n"
    "Builds N signed data packages of about BYTES encoded bytes each, then times\n"
    "validate_encoded() over all of them on T threads, and a one-thread P-256 verify loop.\n"
    "  --packages N   data packages to validate per repeat (required)\n"
    "  --size BYTES   encoded package size to aim for; if smaller than an empty package,\n"
    "                 the report size instead (required)\n"
    "  --threads T    validating threads (default: hardware concurrency)\n"
    "  --repeat R     timed repeats; medians are reported (default: 5)\n"
    "  --alg ALG      key algorithm of the node, user and VM keys (default: ecdsa-p256-sha256)\n"
    "  --json         print one JSON object instead of aligned lines\n";

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
};

Options parse_options(std::span<const std::string_view> args) {
  Options o;
  o.threads = std::max(1u, std::thread::hardware_concurrency());
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
    } else {
      throw UsageError("unknown flag " + std::string(*flag));
    }
  }
  if (o.packages == 0) throw UsageError("--packages is required");
  if (o.size == 0) throw UsageError("--size is required");
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

  PackageSigners signers() const { return {&vm_key, &user_key, &node_key}; }
  PackageOrigin origin(TimeUs t) const { return {vm, "alice", "node-1", t}; }

  Package data_package(std::size_t index, ByteView report) const {
    return need(make_data_package(origin(t0 + 1 + index), policy, data_key, report, signers()),
                "building a data package");
  }
};

// Validates a setup package as a fresh arrival, then records it in the view.
void admit(MemoryView& view, Result<Package> built, std::string_view what) {
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
}

Fixture make_fixture(crypto::SigAlg alg) {
  Fixture f(alg);
  // Genesis node, then user, VM and policy, each a microsecond apart; the policy takes effect
  // at t0 and the data packages follow from t0 + 1.
  f.view.add_node("node-1", f.node_key.public_key(), f.t0 - 3);
  admit(f.view,
        make_membership_package(
            {Uuid{}, "alice", "node-1", f.t0 - 2},
            MembershipRecord{MembershipAction::register_user, "alice", f.user_key.public_key()},
            {nullptr, &f.user_key, &f.node_key}),
        "membership");
  admit(f.view,
        make_binding_package(f.origin(f.t0 - 1), PolicyRef{}, BindingEvent::started,
                             f.vm_key.public_key(), f.signers()),
        "binding");
  PolicyRecord policy{
      f.vm, 1, AbeScheme::kp_abe_gpsw, {"tenant:alice", "tier:gold"}, "tenant:alice and tier:gold"};
  f.policy = policy.ref();
  admit(f.view, make_policy_package(f.origin(f.t0), policy, f.signers()), "policy");
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

std::vector<Bytes> make_packages(const Fixture& f, std::size_t count, std::size_t report_bytes) {
  std::vector<Bytes> packages;
  packages.reserve(count);
  Bytes report(report_bytes);
  for (std::size_t i = 0; i < count; ++i) {
    crypto::random_bytes(report);
    packages.push_back(f.data_package(i, report).encode());
  }
  return packages;
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
  report["failures"] = failures;
  report["setup_seconds"] = setup_seconds;
  print_report(report, o.json);

  if (failures != 0) {
    std::cerr << "mchain-bench validate: " << failures
              << " validation failures; first: " << first_failure << '\n';
    return 1;
  }
  return 0;
}

}  // namespace

const Subcommand kValidateCommand{
    "validate", "time validate_encoded() over N data packages on T threads", kUsage, run_validate};

}  // namespace mchain::bench
