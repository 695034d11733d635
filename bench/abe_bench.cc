// mchain-bench abe: setup, key generation, encapsulation and decapsulation of both ABE schemes
// for policies over n attributes, one thread, medians of several runs (docs/benchmarks.md).
#include <charconv>
#include <iostream>
#include <string>
#include <vector>

#include "abe/cpabe/cpabe.h"
#include "abe/kpabe/kpabe.h"
#include "bench/bench.h"

namespace mchain::bench {

namespace {

constexpr std::string_view kUsage =
    "usage: mchain-bench abe [--attrs N,N,...] [--runs R] [--json]\n"
    "For each n, on the calling thread, the median of R runs of each operation:\n"
    "  kp-gpsw       KP-ABE (GPSW): the key policy is the AND of n attributes and the\n"
    "                ciphertext carries the same n (OpenABE's benchmark case)\n"
    "  cp-versioned  the versioned CP-ABE (docs/cpabe.md) with w = 128 signature bits: a\n"
    "                universe of n attributes, the ciphertext policy the AND of all n, a key\n"
    "                holding all n\n"
    "Reports setup_ms, keygen_ms, encaps_ms, decaps_ms per scheme and n.\n"
    "  --attrs LIST  attribute counts (default 1,5,10,20; each 1..200)\n"
    "  --runs R      runs per operation (default 10)\n"
    "  --json        print one JSON array instead of aligned lines\n";

struct Options {
  std::vector<std::size_t> attrs = {1, 5, 10, 20};
  std::uint64_t runs = 10;
  bool json = false;
};

std::vector<std::size_t> parse_counts(std::string_view list) {
  std::vector<std::size_t> out;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
    if (ec != std::errc{} || end != item.data() + item.size() || n < 1 || n > 200) {
      throw UsageError("--attrs: '" + std::string(item) + "' is not a count in 1..200");
    }
    out.push_back(n);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  if (out.empty()) throw UsageError("--attrs: empty list");
  return out;
}

Options parse_options(std::span<const std::string_view> args) {
  Options o;
  ArgCursor cursor(args);
  while (auto flag = cursor.next_flag()) {
    if (*flag == "--attrs") {
      o.attrs = parse_counts(cursor.value());
    } else if (*flag == "--runs") {
      o.runs = cursor.uint_value(1, 100'000);
    } else if (*flag == "--json") {
      cursor.no_value();
      o.json = true;
    } else {
      throw UsageError("unknown flag " + std::string(*flag));
    }
  }
  return o;
}

std::vector<std::string> attribute_names(std::size_t n) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n; ++i) names.push_back("attr" + std::to_string(i));
  return names;
}

nlohmann::ordered_json bench_kp(std::size_t n, std::uint64_t runs) {
  using namespace abe;
  const std::vector<std::string> names = attribute_names(n);
  std::string policy_text;
  AttributeSet set;
  for (const std::string& name : names) {
    policy_text += (policy_text.empty() ? "" : " and ") + name;
    need(set.add(name), "attribute");
  }
  const AccessTree tree = need(parse_policy(policy_text), "policy");

  kp::Authority authority = kp::setup();
  const kp::UserKey key =
      need(kp::keygen(authority.public_key, authority.secret_key, tree), "keygen");
  const kp::Encapsulation kem = need(kp::encapsulate(authority.public_key, set), "encapsulate");

  nlohmann::ordered_json row;
  row["scheme"] = "kp-gpsw";
  row["attrs"] = n;
  row["setup_ms"] = median_ms(runs, [](std::uint64_t) { (void)kp::setup(); });
  row["keygen_ms"] = median_ms(runs, [&](std::uint64_t) {
    (void)need(kp::keygen(authority.public_key, authority.secret_key, tree), "keygen");
  });
  row["encaps_ms"] = median_ms(runs, [&](std::uint64_t) {
    (void)need(kp::encapsulate(authority.public_key, set), "encaps");
  });
  row["decaps_ms"] = median_ms(runs, [&](std::uint64_t) {
    if (need(kp::decapsulate(key, kem.ciphertext), "decaps") != kem.key) {
      throw std::runtime_error("kp-gpsw: decapsulation recovered the wrong key");
    }
  });
  row["ciphertext_bytes"] = kem.ciphertext.encode().size();
  row["key_bytes"] = key.encode().size();
  return row;
}

// A CP-ABE failure in a benchmark is a bug: stop loudly, as need() does for Result.
template <class T>
T need_cp(std::expected<T, abe::cpabe::CpAbeError> result, std::string_view what) {
  if (!result) throw std::runtime_error(std::string(what) + ": " + describe(result.error()));
  return *std::move(result);
}

nlohmann::ordered_json bench_cp(std::size_t n, std::uint64_t runs) {
  namespace cp = abe::cpabe;
  const std::vector<std::string> names = attribute_names(n);
  std::string policy_text;
  for (const std::string& name : names) policy_text += (policy_text.empty() ? "" : " and ") + name;

  const cp::SystemKeys system = need_cp(cp::setup(names), "setup");
  const cp::Policy policy = need(cp::parse_policy(system.pk, policy_text), "policy");
  const cp::AttributeFlags all(n, true);
  const cp::UserKey key = need_cp(cp::keygen(system.mk, all), "keygen");
  const cp::Encapsulation kem = need_cp(cp::encapsulate(system.pk, policy), "encapsulate");

  nlohmann::ordered_json row;
  row["scheme"] = "cp-versioned";
  row["attrs"] = n;
  row["setup_ms"] =
      median_ms(runs, [&](std::uint64_t) { (void)need_cp(cp::setup(names), "setup"); });
  row["keygen_ms"] =
      median_ms(runs, [&](std::uint64_t) { (void)need_cp(cp::keygen(system.mk, all), "keygen"); });
  row["encaps_ms"] = median_ms(
      runs, [&](std::uint64_t) { (void)need_cp(cp::encapsulate(system.pk, policy), "encaps"); });
  row["decaps_ms"] = median_ms(runs, [&](std::uint64_t) {
    if (need_cp(cp::decapsulate(key, kem.ct), "decaps") != kem.key) {
      throw std::runtime_error("cp-versioned: decapsulation recovered the wrong key");
    }
  });
  row["ciphertext_bytes"] = kem.ct.to_bytes().size();
  row["key_bytes"] = key.to_bytes().size();
  return row;
}

int run_abe(std::span<const std::string_view> args) {
  const Options o = parse_options(args);
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (std::size_t n : o.attrs) rows.push_back(bench_kp(n, o.runs));
  for (std::size_t n : o.attrs) rows.push_back(bench_cp(n, o.runs));
  if (o.json) {
    std::cout << rows.dump() << '\n';
  } else {
    for (const auto& row : rows) {
      print_report(row, false);
      std::cout << "\n";
    }
  }
  return 0;
}

}  // namespace

const Subcommand kAbeCommand{"abe", "KP-ABE and CP-ABE setup, keygen, encaps, decaps (one core)",
                             kUsage, run_abe};

}  // namespace mchain::bench
