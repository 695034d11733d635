// libFuzzer target for the ABE access policies (abe/policy/policy.h): policy text and attribute
// lists (written by people), and the binary encodings of trees (carried in keys) and attribute
// sets (carried in ciphertexts). Nothing may crash; every error names a position; what parses or
// decodes must come back equal through its canonical text and encoding. An input with a '|' is
// also split into a policy and an attribute list, and sharing a secret over the policy must
// recombine to it exactly when the set satisfies the policy.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "abe/policy/policy.h"

namespace {

using namespace mchain;
using namespace mchain::abe;

[[noreturn]] void die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s: %s\n", what, detail.c_str());
  std::abort();
}

void check_located(const char* what, const Error& error) {
  if (error.message.rfind("position ", 0) != 0)
    die(what, "error without a position: " + error.message);
}

void check_tree(const AccessTree& tree) {
  if (tree.leaf_count() > kMaxLeaves) die("policy", "too many leaves");
  const std::string text = tree.to_string();
  auto again = parse_policy(text);
  if (!again)
    die("policy", "canonical text does not parse: " + text + ": " + again.error().message);
  if (!(*again == tree) || again->to_string() != text) die("policy", "text not stable: " + text);
  const Bytes encoded = encode_tree(tree);
  auto decoded = decode_tree(encoded);
  if (!decoded) die("policy", "encoding does not decode: " + decoded.error().message);
  if (!(*decoded == tree) || encode_tree(*decoded) != encoded) die("policy", "encoding not stable");
}

void check_set(const AttributeSet& set) {
  auto again = parse_attributes(set.to_string());
  if (!again || !(*again == set)) die("attributes", "text not stable: " + set.to_string());
  const Bytes encoded = encode_attributes(set);
  auto decoded = decode_attributes(encoded);
  if (!decoded || !(*decoded == set) || encode_attributes(*decoded) != encoded) {
    die("attributes", "encoding not stable: " + set.to_string());
  }
}

// Deterministic "randomness": the check is about the algebra, not about secrecy.
void check_sharing(const AccessTree& tree, const AttributeSet& set) {
  std::uint64_t counter = 0x9e3779b97f4a7c15;
  auto next = [&] {
    counter = counter * 6364136223846793005u + 1442695040888963407u;
    return Fr::from_u64(counter);
  };
  const Fr secret = next();
  const auto shares = share(tree, secret, next);
  const auto p = plan(tree, set);
  if (p.has_value() != satisfies(tree, set)) die("plan", "disagrees with satisfies");
  if (explain(tree, set).has_value() == p.has_value()) die("explain", "disagrees with plan");
  if (!p) return;
  Fr sum = Fr::zero();
  for (const PlanTerm& t : *p) {
    if (t.leaf >= shares.size() || !set.contains(shares[t.leaf].attribute)) die("plan", "bad leaf");
    sum += t.omega * shares[t.leaf].lambda;
  }
  if (!(sum == secret)) die("plan", "does not recombine: " + tree.to_string());
}

}  // namespace

extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }
extern "C" const char* __asan_default_options() { return "detect_stack_use_after_return=0"; }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto tree = parse_policy(text);
  if (tree)
    check_tree(*tree);
  else
    check_located("policy", tree.error());
  auto set = parse_attributes(text);
  if (set)
    check_set(*set);
  else
    check_located("attributes", set.error());

  if (auto decoded = decode_tree(input)) {
    if (!std::ranges::equal(encode_tree(*decoded), input)) die("policy", "non-canonical encoding");
    check_tree(*decoded);
  }
  if (auto decoded = decode_attributes(input)) {
    if (!std::ranges::equal(encode_attributes(*decoded), input)) {
      die("attributes", "non-canonical encoding");
    }
    check_set(*decoded);
  }

  if (const auto bar = text.find('|'); bar != std::string_view::npos) {
    auto policy = parse_policy(text.substr(0, bar));
    auto attributes = parse_attributes(text.substr(bar + 1));
    if (policy && attributes) check_sharing(*policy, *attributes);
  }
  return 0;
}
