// libFuzzer target for everything measure/ parses from outside: policy text (written by
// people), the bulk collector's script output (written by a guest, so hostile), and the
// CBOR of snapshots (baseline files) and reports (package payloads). Nothing may crash;
// what parses must come back the same through its canonical form.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "measure/collect/bulk_script.h"
#include "measure/policy/policy.h"
#include "measure/report/report.h"

namespace {

using namespace mchain;
using namespace mchain::measure;

[[noreturn]] void die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s: %s\n", what, detail.c_str());
  std::abort();
}

void check_policy(std::string_view text) {
  auto policy = parse_policy(text, "fuzz.pol");
  if (!policy) {
    if (policy.error().message.find("fuzz.pol:") != 0) {
      die("policy", "error without a location: " + policy.error().message);
    }
    return;
  }
  const std::string canonical = policy->canonical_text();
  auto again = parse_policy(canonical, "canonical.pol");
  if (!again) die("policy", "canonical text does not parse: " + again.error().message);
  if (again->canonical_text() != canonical || again->hash() != policy->hash()) {
    die("policy", "canonical text is not stable:\n" + canonical);
  }
  for (const Rule& rule : policy->rules()) (void)policy->governing_rule(rule.path + "/x");
}

void check_bulk_output(std::string_view output) {
  // Two roots, hashes of both kinds, a prune: every section of the format is reachable.
  static const std::vector<bulk::WalkRoot> roots = {
      {"/etc", -1, true, true, {"/etc/skip"}},
      {"/", 1, true, false, {}},
  };
  auto parsed = bulk::parse(roots, output);
  if (!parsed) return;
  for (const auto& root : parsed->roots) {
    for (const auto& entry : root.entries) {
      if (entry.path.empty() || entry.path.front() != '/') die("bulk", "relative path accepted");
    }
  }
  (void)bulk::parse_children(roots[0], output);
}

template <class Decoded, class Encode>
void check_round_trip(const char* what, ByteView input, const Result<Decoded>& decoded,
                      Encode encode) {
  if (!decoded) return;
  const Bytes again = encode(*decoded);
  if (!std::ranges::equal(again, input)) {
    die(what, "decoded, but re-encodes differently: " + to_hex(input));
  }
}

}  // namespace

extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }
extern "C" const char* __asan_default_options() { return "detect_stack_use_after_return=0"; }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_policy(text);
  check_bulk_output(text);
  check_round_trip("snapshot", input, decode_snapshot(input), encode_snapshot);
  auto report = decode_report(input);
  check_round_trip("report", input, report, encode_report);
  if (report) {
    // Every string a report holds must print, as text and as JSON (which throws on bad UTF-8).
    (void)report_to_json(*report).dump();
    static const Policy empty;
    (void)report_to_text(*report, empty, ReportLevel::kDetail);
  }
  return 0;
}
