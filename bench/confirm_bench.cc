// mchain-bench confirm: layer-1 confirmation time against block size (the paper's Fig. 7),
// with every node a separate mchain_test_node process on this host.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <ranges>
#include <stdexcept>
#include <thread>

#include "bench/bench.h"
#include "bench/process_cluster.h"
#include "bench/verify_rate.h"
#include "chain/crypto/hash.h"
#include "chain/package/records.h"

namespace mchain::bench {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::string_view kUsage =
    "usage: mchain-bench confirm [--nodes N] --packages A[-B] [--step S]\n"
    "                            --mode inorder|concurrent [--runs R] [--cache cold|warm|both]\n"
    "                            [--burst] [--json] [--node-binary PATH] [--dir DIR]\n"
    "Starts N mchain_test_node processes on this host and times layer-1 confirmation: for\n"
    "each block size and cache case, R blocks of that many 2,960-byte data packages, from the\n"
    "leader's proposal to the last node's durable confirmation (median and p90).\n"
    "  --nodes N           node processes (default: 3)\n"
    "  --packages A[-B]    block sizes A, A+S, ... up to B packages (required)\n"
    "  --step S            block size step (default: 20)\n"
    "  --mode M            the round's validation order: concurrent or inorder (required)\n"
    "  --runs R            blocks per size and cache case (default: 5)\n"
    "  --cache C           cold (nodes verify every signature in the round), warm (they\n"
    "                      verified them on gossip) or both (default: both)\n"
    "  --burst             hand a block's packages all at once, instead of letting the nodes\n"
    "                      validate all but the last before the last one closes the block\n"
    "  --json              print one JSON array instead of a table\n"
    "  --node-binary PATH  the node program (default: the build's tests/mchain_test_node)\n"
    "  --dir DIR           keep the nodes' stores, logs and traces in DIR (empty or new)\n";

constexpr std::size_t kPackageBytes = 2960;  // the paper's package
constexpr int kDifficulty = 8;               // mining stays in the background
constexpr auto kStartTimeout = 60s;
constexpr auto kTraceTimeout = 60s;  // without a new trace line, the run has failed
// The raw rate is the best of a few short samples, taken before each cold case: on this
// kind of virtual machine it drifts by 20% over seconds, and anything else only lowers it.
constexpr double kRateSeconds = 0.3;
constexpr int kRateSamples = 3;
// Idle nodes still tick, report status and write heartbeats: "idle" is at most 3 clock
// ticks (10 ms each) of CPU among all nodes in 100 ms.
constexpr auto kIdlePeriod = 100ms;
constexpr std::uint64_t kIdleTicks = 3;

struct Options {
  std::size_t nodes = 3;
  std::size_t first = 0, last = 0, step = 20;
  std::string mode;
  std::size_t runs = 5;
  std::vector<bool> cold_cases = {true, false};  // true: signature cache off
  bool burst = false;
  bool json = false;
  fs::path node_binary;
  std::optional<fs::path> dir;
};

fs::path default_node_binary() {
#ifdef MCHAIN_TEST_NODE
  if (fs::exists(MCHAIN_TEST_NODE)) return MCHAIN_TEST_NODE;
#endif
  // Built without the tests' target in view: the build tree's layout.
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path("mchain_test_node")
            : self.parent_path().parent_path() / "tests" / "mchain_test_node";
}

Options parse_options(std::span<const std::string_view> args) {
  Options o;
  ArgCursor cursor(args);
  while (auto flag = cursor.next_flag()) {
    if (*flag == "--nodes") {
      o.nodes = cursor.uint_value(1, 16);
    } else if (*flag == "--packages") {
      const std::string text(cursor.value());
      const std::size_t dash = text.find('-');
      auto bound = [&](const std::string& part) {
        auto v = parse_u64(part);
        if (!v || *v < 1 || *v > 10'000) {
          throw UsageError("--packages: '" + text + "' is not A or A-B with 1 <= A <= B <= 10000");
        }
        return static_cast<std::size_t>(*v);
      };
      o.first = bound(text.substr(0, dash));
      o.last = dash == std::string::npos ? o.first : bound(text.substr(dash + 1));
      if (o.last < o.first) throw UsageError("--packages: " + text + " is an empty range");
    } else if (*flag == "--step") {
      o.step = cursor.uint_value(1, 10'000);
    } else if (*flag == "--mode") {
      o.mode = cursor.value();
      if (o.mode != "inorder" && o.mode != "concurrent") {
        throw UsageError("--mode: '" + o.mode + "' is neither inorder nor concurrent");
      }
    } else if (*flag == "--runs") {
      o.runs = cursor.uint_value(1, 1000);
    } else if (*flag == "--cache") {
      const std::string_view c = cursor.value();
      if (c == "cold") {
        o.cold_cases = {true};
      } else if (c == "warm") {
        o.cold_cases = {false};
      } else if (c == "both") {
        o.cold_cases = {true, false};
      } else {
        throw UsageError("--cache: '" + std::string(c) + "' is not cold, warm or both");
      }
    } else if (*flag == "--burst") {
      cursor.no_value();
      o.burst = true;
    } else if (*flag == "--json") {
      cursor.no_value();
      o.json = true;
    } else if (*flag == "--node-binary") {
      o.node_binary = cursor.value();
    } else if (*flag == "--dir") {
      o.dir = fs::path(cursor.value());
    } else {
      throw UsageError("unknown flag " + std::string(*flag));
    }
  }
  if (o.first == 0) throw UsageError("--packages is required");
  if (o.mode.empty()) throw UsageError("--mode is required");
  if (o.node_binary.empty()) o.node_binary = default_node_binary();
  return o;
}

// Who the data packages come from: user alice, one VM running on node-1 under policy v1, all
// keys P-256 (node-1's is the cluster's), so that every package carries three P-256
// signatures.
struct World {
  explicit World(const crypto::Signer& node)
      : user(need(crypto::PrivateKey::generate(crypto::SigAlg::ecdsa_p256_sha256), "user key")),
        vm_key(need(crypto::PrivateKey::generate(crypto::SigAlg::ecdsa_p256_sha256), "VM key")),
        node(&node) {}

  crypto::PrivateKey user;
  crypto::PrivateKey vm_key;
  const crypto::Signer* node;
  Uuid vm = Uuid::random();
  PolicyRecord policy{vm, 1, AbeScheme::kp_abe_gpsw, {"tenant:alice"}, "tenant:alice"};
  crypto::AeadKey data_key = crypto::random_aead_key();
  std::size_t report_bytes = 0;

  PackageSigners signers() const { return {&vm_key, &user, node}; }
  PackageOrigin origin() const { return {vm, "alice", "node-1", now_us()}; }

  Package data(ByteView report) const {
    return need(make_data_package(origin(), policy.ref(), data_key, report, signers()),
                "building a data package");
  }
  // A data package with a fresh random report of report_bytes.
  Package data() const {
    Bytes report(report_bytes);
    crypto::random_bytes(report);
    return data(report);
  }
  // The report size whose package encodes to about `target` bytes (CBOR length heads may
  // make the exact size unreachable; a few bytes over or under are fine).
  void size_reports(std::size_t target) {
    auto size_for = [&](std::size_t report) { return data(Bytes(report)).encode().size(); };
    std::size_t report = 0;
    for (int probe = 0; probe < 6; ++probe) {
      const std::size_t got = size_for(report);
      if (got == target) break;
      report = got < target ? report + (target - got) : report - std::min(report, got - target);
    }
    report_bytes = report;
  }
};

struct Sample {
  double last_ms = 0;   // the leader's proposal to the last node's confirmation
  double first_ms = 0;  // ... to the first node's
};

// Waits until every node traced the confirmation of one block, which must hold `packages`
// packages, and times it from its proposal. `handed` went to node 0: a refusal there fails.
Sample wait_block(ProcessCluster& cluster, std::size_t packages,
                  const std::vector<std::string>& handed) {
  std::map<std::string, TimeUs> proposed;
  std::map<std::string, std::map<std::size_t, TimeUs>> confirmed;
  auto progress = Clock::now();
  auto next_refusal_check = Clock::now() + 1s;
  for (;;) {
    for (const TraceEvent& e : cluster.poll()) {
      progress = Clock::now();
      if (!e.confirmed) {
        proposed.emplace(e.candidate, e.at);
        continue;
      }
      if (e.packages != packages) {
        throw std::runtime_error(ProcessCluster::id(e.node) + " confirmed a block of " +
                                 std::to_string(e.packages) + " packages; expected " +
                                 std::to_string(packages));
      }
      auto& at = confirmed[e.candidate];
      at[e.node] = e.at;
      if (at.size() < cluster.size()) continue;
      auto t0 = proposed.find(e.candidate);
      if (t0 == proposed.end()) {
        throw std::runtime_error("block " + e.candidate +
                                 " was confirmed, but no node proposed it");
      }
      auto [first, last] = std::ranges::minmax(at | std::views::values);
      return {static_cast<double>(last - t0->second) / 1000,
              static_cast<double>(first - t0->second) / 1000};
    }
    if (Clock::now() >= next_refusal_check) {
      for (const std::string& name : handed) {
        if (auto why = cluster.refusal(0, name)) {
          throw std::runtime_error("node-1 refused package " + name + ": " + *why);
        }
      }
      next_refusal_check = Clock::now() + 1s;
    }
    if (Clock::now() - progress > kTraceTimeout) {
      throw std::runtime_error("no trace line for 60 s while waiting for a block of " +
                               std::to_string(packages) +
                               (packages == 1 ? " package" : " packages") + " to be " +
                               (proposed.empty() ? "proposed" : "confirmed by every node"));
    }
    std::this_thread::sleep_for(5ms);
  }
}

// Waits until node 0 has taken every package from its inbox and the nodes have gone quiet:
// at most kIdleTicks of CPU among them over kIdlePeriod, so that every package handed so far
// has been validated and passed on everywhere.
void wait_idle(ProcessCluster& cluster) {
  const auto deadline = Clock::now() + kTraceTimeout;
  std::uint64_t before = cluster.cpu_ticks();
  for (;;) {
    std::this_thread::sleep_for(kIdlePeriod);
    const std::uint64_t now = cluster.cpu_ticks();
    if (now - before <= kIdleTicks && cluster.inbox_size(0) == 0) return;
    if (Clock::now() >= deadline) {
      throw std::runtime_error("the nodes did not go idle within 60 s of receiving packages");
    }
    before = now;
  }
}

// Alice's registration, the VM's binding to node-1 and policy v1, one block each: a package
// may only go in once what it depends on is confirmed.
void setup_world(ProcessCluster& cluster, const World& w) {
  const std::pair<std::string, Package> steps[] = {
      {"user",
       need(make_membership_package({Uuid{}, "alice", "node-1", now_us()},
                                    {MembershipAction::register_user, "alice", w.user.public_key()},
                                    {nullptr, &w.user, w.node}),
            "building the registration")},
      {"binding", need(make_binding_package(w.origin(), PolicyRef{}, BindingEvent::started,
                                            w.vm_key.public_key(), w.signers()),
                       "building the binding")},
      {"policy",
       need(make_policy_package(w.origin(), w.policy, w.signers()), "building the policy")},
  };
  for (const auto& [name, package] : steps) {
    cluster.hand(0, name, package);
    wait_block(cluster, 1, {name});
  }
}

// Linear interpolation between the closest ranks (q = 0.9: p90).
double quantile(std::vector<double> sample, double q) {
  std::ranges::sort(sample);
  const double at = q * static_cast<double>(sample.size() - 1);
  const auto below = static_cast<std::size_t>(at);
  const std::size_t above = std::min(below + 1, sample.size() - 1);
  return sample[below] + (sample[above] - sample[below]) * (at - static_cast<double>(below));
}

double round3(double x) { return std::round(x * 1000) / 1000; }

void print_table(const nlohmann::ordered_json& rows, unsigned cores, const Options& o,
                 std::size_t package_bytes) {
  std::printf("%zu nodes, %s; %zu-byte packages; limit: P-256 verifies/s per core x %u\n", o.nodes,
              o.mode.c_str(), package_bytes, cores);
  std::printf("%8s  %5s  %10s  %10s  %10s  %12s  %13s  %4s  %9s\n", "packages", "cache",
              "median_ms", "p90_ms", "limit_ms", "median/limit", "first_node_ms", "runs",
              "verify/s");
  for (const auto& row : rows) {
    const bool cold = row.contains("limit_ms");
    char limit[32] = "-", ratio[32] = "-", rate[32] = "-";
    if (cold) {
      std::snprintf(rate, sizeof rate, "%.0f", row["verifies_per_second_per_core"].get<double>());
      std::snprintf(limit, sizeof limit, "%.2f", row["limit_ms"].get<double>());
      std::snprintf(ratio, sizeof ratio, "%.2f",
                    row["median_ms"].get<double>() / row["limit_ms"].get<double>());
    }
    std::printf("%8zu  %5s  %10.2f  %10.2f  %10s  %12s  %13.2f  %4zu  %9s\n",
                row["packages"].get<std::size_t>(), row["cache"].get<std::string>().c_str(),
                row["median_ms"].get<double>(), row["p90_ms"].get<double>(), limit, ratio,
                row["first_node_ms"].get<double>(), row["runs"].get<std::size_t>(), rate);
  }
}

struct CaseResult {
  std::vector<double> last_ms, first_ms;  // per block, from its proposal
  std::size_t package_bytes = 0;
};

// One block size and cache case on a fresh cluster in `dir`: the setup blocks, then `runs`
// blocks of n packages.
CaseResult measure_case(const Options& o, const fs::path& dir, std::size_t n, bool cold) {
  // A fresh store per case: a store that has grown by many large blocks slows the round's
  // look-ups down (docs/benchmarks.md), which is not what this case measures.
  fs::create_directories(dir);
  ProcessCluster cluster(dir, o.nodes, o.node_binary, kDifficulty);
  World world(cluster.key(0));
  world.size_reports(kPackageBytes);
  CaseResult result;
  result.package_bytes = world.data().encode().size();

  // Setup with the default windows (50 ms), so that its policy blocks close at once.
  const std::vector<std::string> quiet = {"--round-timeout-ms", "30000", "--silence-ms", "60000"};
  cluster.start(quiet, kStartTimeout);
  setup_world(cluster, world);
  cluster.stop();

  // A data candidate closes exactly when n packages wait: the windows never expire.
  std::vector<std::string> flags = quiet;
  flags.insert(flags.end(), {"--max-data-packages", std::to_string(n), "--window-ms", "600000",
                             "--verify-threads", "0", "--mode", o.mode, "--signature-cache",
                             cold ? "off" : "on"});
  cluster.start(flags, kStartTimeout);
  for (std::size_t run = 0; run < o.runs; ++run) {
    std::vector<std::string> names;
    std::vector<Package> packages;
    for (std::size_t i = 0; i < n; ++i) {
      names.push_back("run" + std::to_string(run) + "-" + std::to_string(i));
      packages.push_back(world.data());
    }
    (void)cluster.poll();  // nothing should be pending; what is would not be this block
    // All but the last, validated everywhere before the last one closes the block (see
    // docs/benchmarks.md), unless --burst.
    const std::size_t early = o.burst ? n : n - 1;
    for (std::size_t i = 0; i < early; ++i) cluster.hand(0, names[i], packages[i]);
    if (!o.burst) {
      wait_idle(cluster);
      cluster.hand(0, names.back(), packages.back());
    }
    const Sample s = wait_block(cluster, n, names);
    result.last_ms.push_back(s.last_ms);
    result.first_ms.push_back(s.first_ms);
    cluster.remove_taken(0);
  }
  return result;
}

int run_confirm(std::span<const std::string_view> args) {
  const Options o = parse_options(args);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  // The limit's unit, measured while no node runs, so that nothing competes with it.
  auto raw_rate = [] {
    double best = 0;
    for (int i = 0; i < kRateSamples; ++i) {
      best = std::max(best, p256_verify_rate_per_core(kRateSeconds));
    }
    return best;
  };

  WorkDir work(o.dir, "mchain-bench-confirm");
  std::size_t package_bytes = 0;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (std::size_t n = o.first; n <= o.last; n += o.step) {
    for (const bool cold : o.cold_cases) {
      const std::string cache = cold ? "cold" : "warm";
      const double rate = cold ? raw_rate() : 0;
      const CaseResult r =
          measure_case(o, work.path() / (std::to_string(n) + "-" + cache), n, cold);
      const std::vector<double>& last_ms = r.last_ms;
      package_bytes = r.package_bytes;
      nlohmann::ordered_json row;
      row["packages"] = n;
      row["mode"] = o.mode;
      row["cache"] = cache;
      row["median_ms"] = round3(median(last_ms));
      row["p90_ms"] = round3(quantile(last_ms, 0.9));
      if (cold) {
        // Every node verifies all three signatures of every package of the block.
        const double verifications = 3.0 * static_cast<double>(n * o.nodes);
        row["limit_ms"] = round3(verifications / (rate * cores) * 1000);
        row["verifies_per_second_per_core"] = std::round(rate);
      }
      row["runs"] = o.runs;
      row["min_ms"] = round3(*std::ranges::min_element(last_ms));
      row["first_node_ms"] = round3(median(r.first_ms));
      row["package_bytes"] = r.package_bytes;
      std::cerr << "confirm: " << n << " packages, " << cache << ": median " << median(last_ms)
                << " ms\n";
      rows.push_back(std::move(row));
    }
  }

  if (o.json) {
    std::cout << rows.dump() << '\n';
  } else {
    print_table(rows, cores, o, package_bytes);
  }
  return 0;
}

}  // namespace

const Subcommand kConfirmCommand{
    "confirm", "layer-1 confirmation time vs block size, nodes as processes (paper Fig. 7)", kUsage,
    run_confirm};

}  // namespace mchain::bench
