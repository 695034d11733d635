// mchain-bench pow: proof-of-work hash rate against the raw SHA-256 compression rate of one
// core (goal: per core, at least 70% of it), and optionally real blocks mined at a difficulty.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <thread>

#include "bench/bench.h"
#include "chain/crypto/hash.h"
#include "chain/pow/pow.h"
#include "chain/pow/sha256_compress.h"

namespace mchain::bench {

namespace {

constexpr std::string_view kUsage =
    "usage: mchain-bench pow --seconds S [--threads T] [--diff D] [--portable] [--json]\n"
    "Mines a fixed header for S seconds on T threads. Without --diff the difficulty is\n"
    "unreachable (255 bits) and only the hash rate counts; with --diff D, blocks of difficulty\n"
    "D are mined one after another, each with a fresh timestamp. Also times OpenSSL SHA-256\n"
    "over a 64 MiB buffer on one thread for about 1 s: the per-core compression limit.\n"
    "  --seconds S  mining time (required)\n"
    "  --threads T  mining threads (default: hardware concurrency)\n"
    "  --diff D     mine real data blocks at difficulty D (1..64)\n"
    "  --portable   use the portable SHA-256 compression even if the CPU has SHA-NI\n"
    "  --json       print one JSON object instead of aligned lines\n";

constexpr unsigned kUnreachableDiff = 255;
constexpr std::size_t kLimitBufferBytes = std::size_t{64} << 20;
constexpr double kLimitSeconds = 1.0;
constexpr double kGoal = 0.7;
// Header fields this benchmark fills in (layout in chain/pow/pow.h).
constexpr std::size_t kTypeOffset = 4;
constexpr std::size_t kDiffOffset = 5;
constexpr std::size_t kHeightOffset = 8;
constexpr std::size_t kTimestampOffset = 16;
constexpr std::size_t kHashesOffset = 24;  // prev, merkle root, semi-finished: 96 bytes

struct Options {
  std::uint64_t seconds = 0;
  unsigned threads = 0;
  unsigned diff = 0;  // 0: hash rate only
  bool portable = false;
  bool json = false;
};

Options parse_options(std::span<const std::string_view> args) {
  Options o;
  o.threads = std::max(1u, std::thread::hardware_concurrency());
  ArgCursor cursor(args);
  while (auto flag = cursor.next_flag()) {
    if (*flag == "--seconds") {
      o.seconds = cursor.uint_value(1, 86'400);
    } else if (*flag == "--threads") {
      o.threads = static_cast<unsigned>(cursor.uint_value(1, 1024));
    } else if (*flag == "--diff") {
      o.diff = static_cast<unsigned>(cursor.uint_value(1, 64));
    } else if (*flag == "--portable") {
      cursor.no_value();
      o.portable = true;
    } else if (*flag == "--json") {
      cursor.no_value();
      o.json = true;
    } else {
      throw UsageError("unknown flag " + std::string(*flag));
    }
  }
  if (o.seconds == 0) throw UsageError("--seconds is required");
  return o;
}

void put_be64(pow::HeaderBytes& h, std::size_t offset, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) {
    h[offset + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
  }
}

pow::HeaderBytes make_header(unsigned diff, std::uint64_t height, TimeUs timestamp) {
  pow::HeaderBytes h{};
  h[3] = 1;  // version
  h[kTypeOffset] = pow::kDataType;
  h[kDiffOffset] = static_cast<std::uint8_t>(diff);
  put_be64(h, kHeightOffset, height);
  put_be64(h, kTimestampOffset, timestamp);
  crypto::random_bytes(std::span(h).subspan(kHashesOffset, 96));
  return h;
}

// SHA-256 compressions per second on this thread through OpenSSL: a large buffer hashed
// repeatedly, so padding and per-call costs vanish. The mining goal is relative to this.
double raw_compression_rate() {
  Bytes buffer(kLimitBufferBytes);
  crypto::random_bytes(buffer);
  double bytes = 0;
  std::uint8_t sink = 0;
  const Clock::time_point start = Clock::now();
  double elapsed = 0;
  do {
    sink ^= crypto::sha256(buffer)[0];
    bytes += static_cast<double>(buffer.size());
    elapsed = seconds_since(start);
  } while (elapsed < kLimitSeconds);
  buffer[0] = sink;  // keeps the digests observable
  return bytes / 64 / elapsed;
}

// Sets `flag` at `deadline`; joins on destruction.
class Deadline {
 public:
  Deadline(std::atomic<bool>& flag, Clock::time_point deadline)
      : thread_([&flag, deadline] {
          std::this_thread::sleep_until(deadline);
          flag.store(true);
        }) {}

 private:
  std::jthread thread_;
};

struct Mined {
  double elapsed = 0;
  std::uint64_t hashes = 0;
  std::vector<double> block_seconds;
  std::size_t failures = 0;
};

Mined mine_for(const Options& o) {
  pow::Miner miner(o.threads);
  std::atomic<bool> stop{false};
  Mined m;
  const Clock::time_point start = Clock::now();
  const Deadline deadline(stop, start + std::chrono::seconds(o.seconds));
  const pow::NonceRange range{0, 0, std::numeric_limits<std::uint64_t>::max()};
  if (o.diff == 0) {
    const pow::HeaderBytes header = make_header(kUnreachableDiff, 1, now_us());
    // An answer at 255 bits would point at a broken check, not at luck.
    if (miner.mine(header, kUnreachableDiff, pow::kDataType, range, stop)) ++m.failures;
    m.hashes = miner.last_hashes_tried();
  } else {
    const TimeUs t0 = now_us();
    for (std::uint64_t height = 1; !stop.load(); ++height) {
      const pow::HeaderBytes header = make_header(o.diff, height, t0 + height);
      const Clock::time_point block_start = Clock::now();
      const auto found = miner.mine(header, o.diff, pow::kDataType, range, stop);
      m.hashes += miner.last_hashes_tried();
      if (!found) break;  // stopped mid-block: that block does not count
      m.block_seconds.push_back(seconds_since(block_start));
      const Hash256 check = pow::header_hash(pow::with_nonce(header, 0, found->nonce_lo));
      if (check != found->hash || !pow::meets_difficulty(check, pow::kDataType, o.diff)) {
        ++m.failures;
      }
    }
  }
  m.elapsed = seconds_since(start);
  return m;
}

int run_pow(std::span<const std::string_view> args) {
  const Options o = parse_options(args);
  pow::sha256_force_portable(o.portable);

  // The limit first, while no mining thread competes for the core.
  const double limit = raw_compression_rate();
  const Mined m = mine_for(o);

  const double rate = static_cast<double>(m.hashes) / m.elapsed;
  const double per_core = rate / o.threads;

  nlohmann::ordered_json report;
  report["benchmark"] = "pow";
  report["mode"] = o.diff == 0 ? "hashrate" : "blocks";
  report["impl"] = std::string(pow::sha256_compress_impl());
  report["seconds"] = o.seconds;
  report["elapsed_seconds"] = m.elapsed;
  report["threads"] = o.threads;
  report["hardware_threads"] = std::thread::hardware_concurrency();
  report["hashes"] = m.hashes;
  report["hashes_per_second_total"] = rate;
  report["hashes_per_second_per_core"] = per_core;
  report["limit_compressions_per_second"] = limit;
  report["per_core_vs_limit"] = per_core / limit;
  report["meets_goal"] = m.failures == 0 && per_core >= kGoal * limit;
  if (o.diff != 0) {
    report["diff"] = o.diff;
    report["blocks"] = m.block_seconds.size();
    report["blocks_per_second"] = static_cast<double>(m.block_seconds.size()) / m.elapsed;
    if (!m.block_seconds.empty()) {
      report["seconds_per_block_median"] = median(m.block_seconds);
    }
    // A data block needs `diff` leading zero bits: 2^diff hashes on average.
    report["seconds_per_block_expected"] = std::ldexp(1.0, static_cast<int>(o.diff)) / rate;
  }
  report["failures"] = m.failures;
  print_report(report, o.json);
  pow::sha256_force_portable(false);

  if (m.failures != 0) {
    std::cerr << "mchain-bench pow: " << m.failures << " mined blocks failed the check\n";
    return 1;
  }
  return 0;
}

}  // namespace

const Subcommand kPowCommand{"pow", "proof-of-work hash rate against raw SHA-256 per core", kUsage,
                             run_pow};

}  // namespace mchain::bench
