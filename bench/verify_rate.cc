// mchain-bench verify-rate: raw P-256 verifications per second on one core, and that rate
// times the hardware threads (what a node could verify if every core did nothing else).
#include "bench/verify_rate.h"

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <thread>

#include "bench/bench.h"
#include "chain/crypto/hash.h"
#include "chain/crypto/sign.h"

namespace mchain::bench {

double p256_verify_rate_per_core(double seconds) {
  auto key = need(crypto::PrivateKey::generate(crypto::SigAlg::ecdsa_p256_sha256),
                  "generating the P-256 key");
  Bytes message(32);
  crypto::random_bytes(message);
  const crypto::Signature signature = need(key.sign(message), "signing with P-256");
  const crypto::PublicKey& public_key = key.public_key();
  std::size_t count = 0;
  bool all_ok = true;
  const Clock::time_point start = Clock::now();
  double elapsed = 0;
  do {
    // Batches keep clock reads out of the measured cost.
    for (int k = 0; k < 64; ++k) all_ok &= public_key.verify(message, signature);
    count += 64;
    elapsed = seconds_since(start);
  } while (elapsed < seconds);
  if (!all_ok) throw std::runtime_error("the P-256 signature did not verify");
  return static_cast<double>(count) / elapsed;
}

namespace {

constexpr std::string_view kUsage =
    "usage: mchain-bench verify-rate [--seconds S] [--json]\n"
    "Verifies one P-256 signature over 32 bytes through PublicKey::verify on one thread for\n"
    "about S seconds; reports verifications per second on that core and the same rate times\n"
    "the hardware threads (an upper bound for all cores, not a measurement).\n"
    "  --seconds S  time to verify for, may be fractional (default: 2)\n"
    "  --json       print one JSON object instead of aligned lines\n";

constexpr double kMaxSeconds = 3600;

double seconds_value(std::string_view text) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(v) || v <= 0 ||
      v > kMaxSeconds) {
    throw UsageError("--seconds: '" + std::string(text) + "' is not a number in (0, 3600]");
  }
  return v;
}

int run_verify_rate(std::span<const std::string_view> args) {
  double seconds = 2;
  bool json = false;
  ArgCursor cursor(args);
  while (auto flag = cursor.next_flag()) {
    if (*flag == "--seconds") {
      seconds = seconds_value(cursor.value());
    } else if (*flag == "--json") {
      cursor.no_value();
      json = true;
    } else {
      throw UsageError("unknown flag " + std::string(*flag));
    }
  }
  const double per_core = p256_verify_rate_per_core(seconds);
  const unsigned hardware = std::thread::hardware_concurrency();
  nlohmann::ordered_json report;
  report["benchmark"] = "verify-rate";
  report["alg"] = std::string(crypto::to_string(crypto::SigAlg::ecdsa_p256_sha256));
  report["seconds"] = seconds;
  report["verifies_per_second_per_core"] = per_core;
  report["hardware_threads"] = hardware;
  report["verifies_per_second_all_cores"] = per_core * hardware;
  print_report(report, json);
  return 0;
}

}  // namespace

const Subcommand kVerifyRateCommand{"verify-rate",
                                    "raw P-256 verifications per second, per core and x cores",
                                    kUsage, run_verify_rate};

}  // namespace mchain::bench
