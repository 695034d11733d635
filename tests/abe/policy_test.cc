// Access policies (abe/policy/policy.h): the parsers and their error positions, the canonical
// text and binary forms, truth tables, numeric comparisons exhaustively at small widths, GPSW
// sharing and reconstruction plans on random and exhaustively enumerated trees, explanations,
// and the wide reduction behind random_scalar against GMP.
//
// Random trees and scalars come from a seed that is new on every run and printed with any
// failure; MCHAIN_POLICY_TEST_SEED=<n> repeats a run.
#include "abe/policy/policy.h"

#include <gmp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "abe/pairing/bls12_381.h"
#include "chain/encoding/cbor.h"

namespace mchain::abe {
namespace {

std::uint64_t test_seed() {
  static const std::uint64_t seed = [] {
    if (const char* s = std::getenv("MCHAIN_POLICY_TEST_SEED")) {
      return static_cast<std::uint64_t>(std::stoull(s));
    }
    return std::uint64_t{std::random_device{}()};
  }();
  return seed;
}

Fr random_fr(std::mt19937_64& rng) {
  std::array<std::uint8_t, 48> wide;
  for (auto& b : wide) b = static_cast<std::uint8_t>(rng());
  return scalar_from_wide_bytes(wide);
}

AccessTree policy(std::string_view text) {
  auto t = parse_policy(text);
  if (t) return *t;
  ADD_FAILURE() << text << ": " << t.error().message;
  return *parse_policy("did_not_parse");
}

AttributeSet attrs(std::string_view text) {
  auto s = parse_attributes(text);
  if (s) return *s;
  ADD_FAILURE() << text << ": " << s.error().message;
  return AttributeSet{};
}

std::string policy_error(std::string_view text) {
  auto t = parse_policy(text);
  if (t) return "(accepted: " + t->to_string() + ")";
  return t.error().message;
}

// Σ ω·λ over a plan, with the shares looked up by leaf index; also checks that every leaf used
// is one whose attribute the set holds.
Fr recombine(const std::vector<PlanTerm>& terms, const std::vector<LeafShare>& shares,
             const AttributeSet& set) {
  Fr sum = Fr::zero();
  for (const PlanTerm& t : terms) {
    EXPECT_LT(t.leaf, shares.size());
    EXPECT_TRUE(set.contains(shares[t.leaf].attribute)) << shares[t.leaf].attribute;
    sum += t.omega * shares[t.leaf].lambda;
  }
  return sum;
}

// Shares a random secret, plans for `set`, and checks the plan recombines to the secret. Returns
// whether a plan exists.
bool reconstructs(const AccessTree& tree, const AttributeSet& set, std::mt19937_64& rng) {
  const Fr secret = random_fr(rng);
  const auto shares = share(tree, secret, [&] { return random_fr(rng); });
  EXPECT_EQ(shares.size(), tree.leaf_count());
  for (std::size_t i = 0; i < shares.size(); ++i) EXPECT_EQ(shares[i].leaf, i);
  const auto p = plan(tree, set);
  EXPECT_EQ(p.has_value(), satisfies(tree, set)) << tree.to_string() << " | " << set.to_string();
  if (!p) return false;
  EXPECT_EQ(recombine(*p, shares, set), secret)
      << tree.to_string() << " | " << set.to_string() << " seed " << test_seed();
  return true;
}

// ---- A model of trees, independent of the library, for random tests ----------------------------

struct Model {
  std::string attribute;  // a leaf when children is empty
  std::size_t k = 0;
  std::vector<Model> children;
};

Model random_model(std::mt19937_64& rng, int depth, int pool) {
  if (depth == 0 || rng() % 3 == 0) {
    return {"a" + std::to_string(rng() % pool), 0, {}};
  }
  Model m;
  const std::size_t n = 1 + rng() % 6;
  m.k = 1 + rng() % n;
  for (std::size_t i = 0; i < n; ++i) m.children.push_back(random_model(rng, depth - 1, pool));
  return m;
}

PolicyNode build(const Model& m) {
  if (m.children.empty()) return *PolicyNode::leaf(m.attribute);
  std::vector<PolicyNode> children;
  for (const Model& c : m.children) children.push_back(build(c));
  auto g = PolicyNode::gate(m.k, std::move(children));
  EXPECT_TRUE(g.has_value());
  return *g;
}

std::size_t model_leaves(const Model& m) {
  if (m.children.empty()) return 1;
  std::size_t n = 0;
  for (const Model& c : m.children) n += model_leaves(c);
  return n;
}

// Whether the model is satisfied when exactly the leaves for which `leaf_ok(index)` holds are
// (leaves numbered depth-first from `next`).
bool model_eval(const Model& m, const std::function<bool(std::size_t)>& leaf_ok,
                std::size_t& next) {
  if (m.children.empty()) return leaf_ok(next++);
  std::size_t met = 0;
  for (const Model& c : m.children) met += model_eval(c, leaf_ok, next) ? 1 : 0;
  return met >= m.k;
}

void model_leaf_attributes(const Model& m, std::vector<std::string>& out) {
  if (m.children.empty()) {
    out.push_back(m.attribute);
    return;
  }
  for (const Model& c : m.children) model_leaf_attributes(c, out);
}

// ---- Parsing ------------------------------------------------------------------------------------

TEST(PolicyTest, ParsesTheGrammar) {
  {
    const AccessTree t = policy("tenant:acme");
    ASSERT_TRUE(t.root().is_leaf());
    EXPECT_EQ(t.root().attribute(), "tenant:acme");
  }
  {
    // and binds tighter than or; a chain of one operator is one gate.
    const AccessTree t = policy("a and b or c and d and e or f");
    ASSERT_EQ(t.root().threshold(), 1u);
    ASSERT_EQ(t.root().children().size(), 3u);
    EXPECT_EQ(t.root().children()[0].threshold(), 2u);
    EXPECT_EQ(t.root().children()[1].threshold(), 3u);
    EXPECT_EQ(t.root().children()[1].children().size(), 3u);
    EXPECT_TRUE(t.root().children()[2].is_leaf());
    EXPECT_EQ(t.to_string(), "(a and b) or (c and d and e) or f");
  }
  {
    // Parentheses keep their own gate.
    const AccessTree t = policy("(a and b) and c");
    ASSERT_EQ(t.root().children().size(), 2u);
    EXPECT_EQ(t.root().children()[0].children().size(), 2u);
    EXPECT_NE(t, policy("a and b and c"));
    EXPECT_EQ(policy("((a))"), policy("a"));
  }
  {
    // Keywords in any case; attributes case-sensitive.
    EXPECT_EQ(policy("a AND b Or C"), policy("a and b or C"));
    EXPECT_NE(policy("a and b or C"), policy("a and b or c"));
    EXPECT_EQ(policy("2 OF (x, y, z)"), policy("2 of (x,y,z)"));
  }
  {
    const AccessTree t = policy("2 of (x, y and z, 1 of (w))");
    EXPECT_EQ(t.root().threshold(), 2u);
    ASSERT_EQ(t.root().children().size(), 3u);
    EXPECT_EQ(t.root().children()[2].threshold(), 1u);
    EXPECT_EQ(t.root().children()[2].children().size(), 1u);
    EXPECT_EQ(t.to_string(), "2 of (x, y and z, 1 of (w))");
    EXPECT_EQ(t.leaf_attributes(), (std::vector<std::string>{"x", "y", "z", "w"}));
  }
  // n of n prints as and, 1 of n as or.
  EXPECT_EQ(policy("3 of (a, b, c)"), policy("a and b and c"));
  EXPECT_EQ(policy("1 of (a, b)").to_string(), "a or b");
  // Every character of the grammar; digit-only attributes; spacing is free.
  EXPECT_EQ(policy("vm:6f5db655-1c2a.X_y and 2024").root().children()[0].attribute(),
            "vm:6f5db655-1c2a.X_y");
  EXPECT_EQ(policy(" \t(a\nand\r\nb) "), policy("a and b"));
  EXPECT_EQ(policy("a and(b)or(c)"), policy("(a and b) or c"));
  // Keywords inside longer words are attributes.
  EXPECT_EQ(policy("android or order").leaf_attributes(),
            (std::vector<std::string>{"android", "order"}));
  {
    const AccessTree t = policy("level >= 3#8");
    ASSERT_TRUE(t.root().comparison().has_value());
    EXPECT_EQ(*t.root().comparison(), (Comparison{"level", CompareOp::kGreaterEqual, 3, 0, 8}));
    EXPECT_EQ(t.to_string(), "level >= 3#8");
    for (const std::string& a : t.leaf_attributes()) EXPECT_EQ(a.rfind("#num:level#8:", 0), 0u);
  }
  EXPECT_EQ(*policy("n in (2-5)").root().comparison(),
            (Comparison{"n", CompareOp::kInOpen, 2, 5, 32}));
  EXPECT_EQ(*policy("n in { 2#8 - 5#8 }").root().comparison(),
            (Comparison{"n", CompareOp::kInClosed, 2, 5, 8}));
  EXPECT_EQ(policy("level>=3#8 and(x)").to_string(), "level >= 3#8 and x");
  EXPECT_EQ(policy("n == 007").to_string(), "n == 7");
}

TEST(PolicyTest, RejectsWithPositions) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"",
       "position 1: expected an attribute or '(' at the start of the policy, found the end "
       "of the policy"},
      {"tenant:acme and",
       "position 16: expected an attribute or '(' after 'and', found the end "
       "of the policy"},
      {"a and or b", "position 7: expected an attribute or '(' after 'and', found 'or'"},
      {"a or", "position 5: expected an attribute or '(' after 'or', found the end of the policy"},
      {"and", "position 1: expected an attribute or '(' at the start of the policy, found 'and'"},
      {"a b", "position 3: expected 'and', 'or' or the end of the policy, found 'b'"},
      {"a)", "position 2: expected 'and', 'or' or the end of the policy, found ')'"},
      {"(a and b", "position 9: expected 'and', 'or' or ')', found the end of the policy"},
      {"()", "position 2: expected an attribute or '(' after '(', found ')'"},
      {"a of b", "position 3: expected 'and', 'or' or the end of the policy, found 'of'"},
      {"2 of a", "position 6: expected '(' after 'of', found 'a'"},
      {"2 of (a b)", "position 9: expected 'and', 'or', ',' or ')', found 'b'"},
      {"2 of (a,)", "position 9: expected an attribute or '(' after ',', found ')'"},
      {"4 of (a, b, c)", "position 1: threshold 4 exceeds the number of children (3)"},
      {"0 of (a)", "position 1: threshold 0 is below 1"},
      {"x and 99999999999999999999 of (a)",
       "position 7: threshold 99999999999999999999 is too large"},
      // The reserved marker of bit attributes cannot be typed.
      {"#num:level#8:3=1",
       "position 1: expected an attribute or '(' at the start of the policy, found '#'"},
      {"a and b#", "position 8: expected 'and', 'or' or the end of the policy, found '#'"},
      {"caf\xc3\xa9", "position 4: expected 'and', 'or' or the end of the policy, found byte 0xc3"},
      {"a and in", "position 7: expected an attribute or '(' after 'and', found 'in'"},
      {"level >= 256#8", "position 10: 256 does not fit in 8 bits"},
      {"level >= 3#0", "position 12: width 0 is out of range (1 to 64)"},
      {"level >= 3#65", "position 12: width 65 is out of range (1 to 64)"},
      {"level >= 3#",
       "position 12: expected a width (1 to 64) after '#', found the end of the "
       "policy"},
      {"level >= ", "position 10: expected a number after '>=', found the end of the policy"},
      {"level < x", "position 9: expected a number after '<', found 'x'"},
      {"level >= 3x", "position 10: expected a number after '>=', found '3x'"},
      {"level>=3#8and x", "position 8: expected a number after '>=', found '3#8and'"},
      {"level >= 18446744073709551616#64", "position 10: number too large (the limit is 2^64 - 1)"},
      {"level = 3", "position 7: '=' is not an operator in policies; equality is '=='"},
      {"level < 0", "position 1: level < 0 can never be satisfied"},
      {"level > 255#8", "position 1: level > 255#8 can never be satisfied"},
      {"level > 18446744073709551615#64",
       "position 1: level > 18446744073709551615#64 can never be satisfied"},
      {"level in (3-4)", "position 1: range (3-4) contains no value (bounds are excluded)"},
      {"level in {5-2}", "position 1: range {5-2} has its lower bound above its upper bound"},
      {"level in (2#8-5)", "position 11: the bounds have different widths (8 and 32)"},
      {"level in 2-5", "position 10: expected '(' or '{' after 'in', found '2-5'"},
      {"level in (2 5)", "position 13: expected '-' between the bounds of the range, found '5'"},
      {"level in (2-5}", "position 14: expected ')' to close the range, found '}'"},
      {"level in (2-x)", "position 13: expected a number after '-', found 'x'"},
  };
  for (const auto& [text, message] : cases) EXPECT_EQ(policy_error(text), message) << text;

  // An attribute of 255 characters is fine, one of 256 is not.
  EXPECT_TRUE(parse_policy(std::string(255, 'x')).has_value());
  EXPECT_EQ(policy_error("a or " + std::string(256, 'x')),
            "position 6: '" + std::string(64, 'x') +
                "' is not a valid attribute (1 to 255 of A-Z a-z 0-9 _ . : -)");
}

TEST(PolicyTest, EnforcesLimitsOnHostileText) {
  // Parentheses: 32 levels parse, 33 do not.
  EXPECT_TRUE(parse_policy(std::string(32, '(') + "a" + std::string(32, ')')).has_value());
  EXPECT_EQ(policy_error(std::string(33, '(') + "a" + std::string(33, ')')),
            "position 33: parentheses nested more than 32 deep");
  // Gate nesting without much parenthesis: `x or y and (…)` adds two gates per level.
  std::string deep = "z";
  for (int i = 0; i < 16; ++i) deep = "x or y and (" + deep + ")";
  EXPECT_TRUE(parse_policy(deep).has_value());
  deep = "x or y and (" + deep + ")";
  EXPECT_NE(policy_error(deep).find("gates nested more than 32 deep"), std::string::npos)
      << policy_error(deep);
  // Arity.
  std::string wide = "a0";
  for (int i = 1; i < 256; ++i) wide += " or a" + std::to_string(i);
  EXPECT_TRUE(parse_policy(wide).has_value());
  EXPECT_EQ(policy_error(wide + " or b"), "position 1: a gate with more than 256 children");
  // Leaves after expansion: 16 equalities of 64 bits are 1024 leaves, 17 are too many.
  std::string many = "n0 == 1#64";
  for (int i = 1; i < 16; ++i) many += " and n" + std::to_string(i) + " == 1#64";
  ASSERT_TRUE(parse_policy(many).has_value());
  EXPECT_EQ(parse_policy(many)->leaf_count(), 1024u);
  EXPECT_EQ(policy_error(many + " and m == 1#64"),
            "position 1: more than 1024 leaves (a comparison counts one per bit it tests)");
  // Length.
  EXPECT_EQ(policy_error(std::string(65537, 'a')),
            "position 65537: policy longer than 65536 bytes");
}

TEST(PolicyTest, ParsesAttributeLists) {
  const AttributeSet s = attrs("tenant:acme, role:admin, level = 5#8, role:admin, zone = 7");
  EXPECT_EQ(s.to_string(), "role:admin, tenant:acme, level = 5#8, zone = 7");
  EXPECT_EQ(s.user_attributes(), (std::vector<std::string>{"role:admin", "tenant:acme"}));
  EXPECT_EQ(s.attributes().size(), 2u + 8u + 32u);
  EXPECT_TRUE(std::ranges::is_sorted(s.attributes()));
  EXPECT_TRUE(s.contains("role:admin"));
  EXPECT_FALSE(s.contains("Role:admin"));
  // 5 = 0b00000101.
  EXPECT_TRUE(s.contains(bit_attribute("level", 8, 0, true)));
  EXPECT_TRUE(s.contains(bit_attribute("level", 8, 1, false)));
  EXPECT_TRUE(s.contains(bit_attribute("level", 8, 2, true)));
  EXPECT_TRUE(s.contains(bit_attribute("level", 8, 7, false)));
  EXPECT_FALSE(s.contains(bit_attribute("level", 8, 7, true)));
  EXPECT_FALSE(s.contains(bit_attribute("level", 32, 0, true)));
  EXPECT_EQ(bit_attribute("level", 8, 2, true), "#num:level#8:2=1");
  ASSERT_NE(s.number("level"), nullptr);
  EXPECT_EQ(*s.number("level"), (AttributeSet::Number{"level", 5, 8}));
  EXPECT_EQ(s.number("nothing"), nullptr);
  EXPECT_EQ(attrs(s.to_string()), s);
  EXPECT_EQ(attrs("  "), AttributeSet{});
  EXPECT_EQ(attrs("a,a"), attrs("a"));

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a,", "position 3: expected an attribute after ',', found the end of the list"},
      {",a", "position 1: expected an attribute, found ','"},
      {"a b", "position 3: expected ',' or the end of the list, found 'b'"},
      {"a, and", "position 4: 'and' is a keyword, not an attribute"},
      {"level = 5, x, level = 6", "position 15: level already has a value"},
      {"level = 5, level = 5#8", "position 12: level already has a value"},
      {"level == 5", "position 7: attribute lists assign with '=', not '=='"},
      {"level = 256#8", "position 9: 256 does not fit in 8 bits"},
      {"level = ", "position 9: expected a number after '=', found the end of the list"},
      {"#num:x#8:0=1", "position 1: expected an attribute, found '#'"},
  };
  for (const auto& [text, message] : cases) {
    auto r = parse_attributes(text);
    EXPECT_EQ(r ? "(accepted)" : r.error().message, message) << text;
  }
  AttributeSet built;
  EXPECT_FALSE(built.add("#num:x#8:0=1").has_value());
  EXPECT_FALSE(built.add("").has_value());
  EXPECT_FALSE(built.assign("x", 1, 0).has_value());
  EXPECT_FALSE(built.assign("x", 2, 1).has_value());
  EXPECT_TRUE(built.assign("x", ~std::uint64_t{0}, 64).has_value());
}

// ---- Canonical forms ----------------------------------------------------------------------------

// A random tree through the factories, comparisons included.
PolicyNode random_node(std::mt19937_64& rng, int depth) {
  const auto roll = rng() % 8;
  if (depth == 0 || roll < 2) return *PolicyNode::leaf("a" + std::to_string(rng() % 5));
  if (roll == 2) {
    Comparison c;
    c.name = "n" + std::to_string(rng() % 2);
    c.width = static_cast<unsigned>(1 + rng() % 64);
    const std::uint64_t max = c.width == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << c.width) - 1;
    c.op = static_cast<CompareOp>(rng() % 7);
    c.value = rng() & max;
    if (c.op == CompareOp::kInOpen || c.op == CompareOp::kInClosed) {
      c.upper = rng() & max;
      if (c.upper < c.value) std::swap(c.upper, c.value);
    }
    if (auto n = PolicyNode::compare(c)) return *n;
    return *PolicyNode::leaf("unsatisfiable");  // empty ranges and the like
  }
  const std::size_t n = 1 + rng() % 4;
  std::vector<PolicyNode> children;
  for (std::size_t i = 0; i < n; ++i) children.push_back(random_node(rng, depth - 1));
  return *PolicyNode::gate(1 + rng() % n, std::move(children));
}

TEST(PolicyTest, TextAndEncodingRoundTrip) {
  std::mt19937_64 rng(test_seed());
  for (int i = 0; i < 400; ++i) {
    auto tree = AccessTree::from_root(random_node(rng, 4));
    ASSERT_TRUE(tree.has_value());
    const std::string text = tree->to_string();
    auto again = parse_policy(text);
    ASSERT_TRUE(again.has_value()) << text << ": " << again.error().message;
    EXPECT_EQ(*again, *tree) << text << " seed " << test_seed();
    EXPECT_EQ(again->to_string(), text);

    const Bytes encoded = encode_tree(*tree);
    auto decoded = decode_tree(encoded);
    ASSERT_TRUE(decoded.has_value()) << text << ": " << decoded.error().message;
    EXPECT_EQ(*decoded, *tree) << text;
    EXPECT_EQ(encode_tree(*decoded), encoded);
  }
  // A comparison is stored as written, not as its bits.
  EXPECT_LT(encode_tree(policy("level in {1#64-18446744073709551614#64}")).size(), 40u);

  for (const char* text : {"", "a", "b, a, level = 5#8, z = 0", "x = 18446744073709551615#64"}) {
    const AttributeSet s = attrs(text);
    const Bytes encoded = encode_attributes(s);
    auto decoded = decode_attributes(encoded);
    ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
    EXPECT_EQ(*decoded, s);
    EXPECT_EQ(encode_attributes(*decoded), encoded);
  }
}

Bytes with_root(const std::function<void(cbor::Writer&)>& node) {
  cbor::Writer w;
  w.array(2).uint(1);
  node(w);
  return w.take();
}

TEST(PolicyTest, DecoderRejectsInvalidEncodings) {
  auto leaf = [](std::string_view a) {
    return [a](cbor::Writer& w) { w.array(2).uint(0).text(a); };
  };
  auto comparison = [](std::uint64_t op, std::uint64_t width, std::uint64_t value,
                       std::uint64_t upper) {
    return [=](cbor::Writer& w) {
      w.array(6).uint(2).text("n").uint(op).uint(width).uint(value).uint(upper);
    };
  };
  auto gate = [](std::uint64_t k, std::vector<std::function<void(cbor::Writer&)>> children) {
    return [=](cbor::Writer& w) {
      w.array(3).uint(1).uint(k).array(children.size());
      for (const auto& c : children) c(w);
    };
  };
  // The writer's own output for valid trees decodes (so the rejections below are about content).
  ASSERT_TRUE(decode_tree(with_root(gate(1, {leaf("a"), leaf("b")}))).has_value());
  ASSERT_TRUE(decode_tree(with_root(comparison(3, 8, 3, 0))).has_value());
  ASSERT_EQ(*decode_tree(with_root(comparison(3, 8, 3, 0))), policy("n >= 3#8"));

  const std::vector<std::pair<const char*, Bytes>> bad = {
      {"leaf with bad characters", with_root(leaf("a b"))},
      {"empty leaf", with_root(leaf(""))},
      {"keyword leaf", with_root(leaf("OR"))},
      {"bit attribute leaf", with_root(leaf("#num:n#8:0=1"))},
      {"leaf too long", with_root(leaf(std::string(256, 'a')))},
      {"k = 0", with_root(gate(0, {leaf("a")}))},
      {"k > n", with_root(gate(3, {leaf("a"), leaf("b")}))},
      {"no children", with_root(gate(1, {}))},
      {"unknown op", with_root(comparison(7, 8, 3, 0))},
      {"width 0", with_root(comparison(3, 0, 0, 0))},
      {"width 65", with_root(comparison(3, 65, 3, 0))},
      {"value too wide", with_root(comparison(3, 8, 256, 0))},
      {"upper bound on >=", with_root(comparison(3, 8, 3, 1))},
      {"empty open range", with_root(comparison(5, 8, 3, 4))},
      {"reversed range", with_root(comparison(6, 8, 4, 3))},
      {"never satisfiable", with_root(comparison(0, 8, 0, 0))},
      {"unknown tag", with_root([](cbor::Writer& w) { w.array(2).uint(3).text("a"); })},
      {"leaf with 3 items",
       with_root([](cbor::Writer& w) { w.array(3).uint(0).text("a").uint(0); })},
      {"gate with 2 items", with_root([](cbor::Writer& w) { w.array(2).uint(1).uint(1); })},
      {"version 2",
       [] {
         cbor::Writer w;
         w.array(2).uint(2).array(2).uint(0).text("a");
         return w.take();
       }()},
      {"version 0",
       [] {
         cbor::Writer w;
         w.array(2).uint(0).array(2).uint(0).text("a");
         return w.take();
       }()},
      {"empty input", Bytes{}},
  };
  for (const auto& [what, bytes] : bad) {
    EXPECT_FALSE(decode_tree(bytes).has_value()) << what;
  }

  // Truncations and a trailing byte of a valid encoding.
  const Bytes good = encode_tree(policy("2 of (a, b and c, level in {2#8-9#8})"));
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(decode_tree(ByteView(good).first(n)).has_value()) << n;
  }
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_FALSE(decode_tree(longer).has_value());
  // A non-shortest integer (k = 1 as 0x18 0x01) is not canonical.
  Bytes loose = with_root(gate(1, {leaf("a")}));
  ASSERT_EQ(loose[4], 0x01);  // [2-array, version, [3-array, tag, k …
  loose[4] = 0x18;
  loose.insert(loose.begin() + 5, 0x01);
  EXPECT_FALSE(decode_tree(loose).has_value());

  // Depth: 32 nested gates decode, 33 do not.
  std::function<void(cbor::Writer&)> nested = leaf("a");
  for (int i = 0; i < 32; ++i) nested = gate(1, {nested});
  EXPECT_TRUE(decode_tree(with_root(nested)).has_value());
  nested = gate(1, {nested});
  EXPECT_FALSE(decode_tree(with_root(nested)).has_value());
  // Arity 257 and more than 1024 leaves.
  std::vector<std::function<void(cbor::Writer&)>> children(257, leaf("a"));
  EXPECT_FALSE(decode_tree(with_root(gate(1, children))).has_value());
  children.assign(17, comparison(4, 64, 1, 0));  // 17 × 64 leaves
  EXPECT_FALSE(decode_tree(with_root(gate(1, children))).has_value());
  children.resize(16);
  EXPECT_TRUE(decode_tree(with_root(gate(1, children))).has_value());

  // Attribute sets: unsorted, duplicate, invalid.
  auto set_bytes = [](std::vector<std::string> user,
                      std::vector<std::tuple<std::string, int, std::uint64_t>> numbers) {
    cbor::Writer w;
    w.array(3).uint(1).array(user.size());
    for (const auto& a : user) w.text(a);
    w.array(numbers.size());
    for (const auto& [n, width, v] : numbers) w.array(3).text(n).uint(width).uint(v);
    return w.take();
  };
  EXPECT_TRUE(decode_attributes(set_bytes({"a", "b"}, {{"m", 8, 3}, {"n", 1, 1}})).has_value());
  EXPECT_FALSE(decode_attributes(set_bytes({"b", "a"}, {})).has_value());
  EXPECT_FALSE(decode_attributes(set_bytes({"a", "a"}, {})).has_value());
  EXPECT_FALSE(decode_attributes(set_bytes({"a b"}, {})).has_value());
  EXPECT_FALSE(decode_attributes(set_bytes({}, {{"n", 8, 3}, {"m", 8, 3}})).has_value());
  EXPECT_FALSE(decode_attributes(set_bytes({}, {{"n", 8, 3}, {"n", 8, 3}})).has_value());
  EXPECT_FALSE(decode_attributes(set_bytes({}, {{"n", 8, 256}})).has_value());
  EXPECT_FALSE(decode_attributes(set_bytes({}, {{"n", 0, 0}})).has_value());
  EXPECT_FALSE(decode_attributes(set_bytes({}, {{"in", 8, 0}})).has_value());
}

// ---- Truth tables and reconstruction ------------------------------------------------------------

TEST(PolicyTest, TruthTablesOfGates) {
  std::mt19937_64 rng(test_seed());
  // Policies over a, b, c, d and their meaning as a predicate on the set (bit 0 = a, …).
  using Predicate = std::function<bool(bool, bool, bool, bool)>;
  const std::vector<std::pair<std::string, Predicate>> cases = {
      {"a", [](bool a, bool, bool, bool) { return a; }},
      {"a and b", [](bool a, bool b, bool, bool) { return a && b; }},
      {"a or b", [](bool a, bool b, bool, bool) { return a || b; }},
      {"a and b or c", [](bool a, bool b, bool c, bool) { return (a && b) || c; }},
      {"a and (b or c)", [](bool a, bool b, bool c, bool) { return a && (b || c); }},
      {"2 of (a, b, c)", [](bool a, bool b, bool c, bool) { return a + b + c >= 2; }},
      {"3 of (a, b, c, d)", [](bool a, bool b, bool c, bool d) { return a + b + c + d >= 3; }},
      {"2 of (a and b, c, d)",
       [](bool a, bool b, bool c, bool d) { return (a && b) + c + d >= 2; }},
      {"2 of (a or b, c and d, 1 of (a))",
       [](bool a, bool b, bool c, bool d) { return (a || b) + (c && d) + a >= 2; }},
      {"(a or b) and (c or d) and 2 of (a, c, d)",
       [](bool a, bool b, bool c, bool d) { return (a || b) && (c || d) && a + c + d >= 2; }},
      // Duplicate leaves: each is its own leaf with its own share.
      {"a and a", [](bool a, bool, bool, bool) { return a; }},
      {"a or a", [](bool a, bool, bool, bool) { return a; }},
      {"2 of (a, a, b)", [](bool a, bool, bool, bool) { return a; }},
      {"3 of (a, a, b)", [](bool a, bool b, bool, bool) { return a && b; }},
      {"(a and b) or (a and c) or (b and c and d)",
       [](bool a, bool b, bool c, bool d) { return (a && b) || (a && c) || (b && c && d); }},
  };
  const char* names[] = {"a", "b", "c", "d"};
  for (const auto& [text, predicate] : cases) {
    const AccessTree tree = policy(text);
    for (unsigned mask = 0; mask < 16; ++mask) {
      // Each present attribute is listed twice: repeats change nothing.
      std::string list;
      for (int i = 0; i < 4; ++i) {
        if (mask >> i & 1)
          list += std::string(list.empty() ? "" : ", ") + names[i] + ", " + names[i];
      }
      list += std::string(list.empty() ? "" : ", ") + "unrelated";
      const AttributeSet set = attrs(list);
      const bool expected = predicate(mask & 1, mask >> 1 & 1, mask >> 2 & 1, mask >> 3 & 1);
      EXPECT_EQ(satisfies(tree, set), expected) << text << " | " << list;
      EXPECT_EQ(reconstructs(tree, set, rng), expected) << text << " | " << list;
      EXPECT_EQ(explain(tree, set).has_value(), !expected) << text << " | " << list;
    }
  }
}

TEST(PolicyTest, ShareAndPlanReconstructOnRandomTrees) {
  std::mt19937_64 rng(test_seed());
  int satisfied = 0, refused = 0;
  for (int i = 0; i < 300; ++i) {
    const Model m = random_model(rng, 4, 8);
    auto tree = AccessTree::from_root(build(m));
    ASSERT_TRUE(tree.has_value());
    std::vector<std::string> leaf_attrs;
    model_leaf_attributes(m, leaf_attrs);
    ASSERT_EQ(tree->leaf_attributes(), leaf_attrs);

    const Fr secret = random_fr(rng);
    const auto shares = share(*tree, secret, [&] { return random_fr(rng); });
    ASSERT_EQ(shares.size(), model_leaves(m));
    for (int trial = 0; trial < 6; ++trial) {
      const unsigned mask = static_cast<unsigned>(rng() % 256);
      AttributeSet set;
      for (int a = 0; a < 8; ++a) {
        if (mask >> a & 1) {
          ASSERT_TRUE(set.add("a" + std::to_string(a)).has_value());
        }
      }
      std::size_t next = 0;
      const bool expected = model_eval(
          m, [&](std::size_t leaf) { return set.contains(leaf_attrs[leaf]); }, next);
      const auto p = plan(*tree, set);
      ASSERT_EQ(p.has_value(), expected)
          << tree->to_string() << " | " << set.to_string() << " seed " << test_seed();
      ASSERT_EQ(explain(*tree, set).has_value(), !expected);
      if (!p) {
        ++refused;
        continue;
      }
      ++satisfied;
      ASSERT_EQ(recombine(*p, shares, set), secret)
          << tree->to_string() << " | " << set.to_string() << " seed " << test_seed();
      ASSERT_TRUE(std::ranges::is_sorted(*p, {}, &PlanTerm::leaf));
      // The leaves of the plan alone satisfy the tree (no term is spare … and none missing).
      next = 0;
      EXPECT_TRUE(model_eval(
          m,
          [&](std::size_t leaf) {
            return std::ranges::any_of(*p, [&](const PlanTerm& t) { return t.leaf == leaf; });
          },
          next));
    }
  }
  // Both outcomes were exercised.
  EXPECT_GT(satisfied, 100);
  EXPECT_GT(refused, 100);
}

// Small trees: every attribute subset, and the plan's size against the fewest leaves that
// satisfy the tree, found by brute force over leaf subsets.
TEST(PolicyTest, EverySubsetOfSmallTreesAndMinimalPlans) {
  std::mt19937_64 rng(test_seed() + 1);
  int trees = 0;
  while (trees < 60) {
    const Model m = random_model(rng, 3, 5);
    const std::size_t leaves = model_leaves(m);
    if (leaves > 10 || m.children.empty()) continue;
    ++trees;
    const AccessTree tree = *AccessTree::from_root(build(m));
    std::vector<std::string> leaf_attrs;
    model_leaf_attributes(m, leaf_attrs);
    const Fr secret = random_fr(rng);
    const auto shares = share(tree, secret, [&] { return random_fr(rng); });
    for (unsigned mask = 0; mask < 32; ++mask) {
      AttributeSet set;
      for (int a = 0; a < 5; ++a) {
        if (mask >> a & 1) {
          ASSERT_TRUE(set.add("a" + std::to_string(a)).has_value());
        }
      }
      // The fewest leaves, among those whose attribute is present, that satisfy the tree.
      std::size_t fewest = SIZE_MAX;
      for (unsigned leaf_mask = 0; leaf_mask < (1u << leaves); ++leaf_mask) {
        const auto count = static_cast<std::size_t>(std::popcount(leaf_mask));
        if (count >= fewest) continue;
        std::size_t next = 0;
        const bool ok = model_eval(
            m,
            [&](std::size_t leaf) {
              return (leaf_mask >> leaf & 1) && set.contains(leaf_attrs[leaf]);
            },
            next);
        if (ok) fewest = count;
      }
      const auto p = plan(tree, set);
      ASSERT_EQ(p.has_value(), fewest != SIZE_MAX) << tree.to_string() << " | " << set.to_string();
      if (!p) continue;
      EXPECT_EQ(p->size(), fewest)
          << tree.to_string() << " | " << set.to_string() << " seed " << test_seed();
      EXPECT_EQ(recombine(*p, shares, set), secret) << tree.to_string() << " | " << set.to_string();
    }
  }
}

TEST(PolicyTest, PlansPreferFewLeaves) {
  auto leaves_of = [](const AccessTree& t, std::string_view set) {
    std::vector<std::size_t> out;
    const auto p = plan(t, attrs(set));
    for (const PlanTerm& term : *p) out.push_back(term.leaf);
    return out;
  };
  // Leaves: a0 b1 c2 d3.
  EXPECT_EQ(leaves_of(policy("(a and b and c) or d"), "a, b, c, d"), (std::vector<std::size_t>{3}));
  EXPECT_EQ(leaves_of(policy("(a and b and c) or d"), "a, b, c"),
            (std::vector<std::size_t>{0, 1, 2}));
  // Leaves: a0 b1 c2 d3 e4; (a and b) and (d and e) cost 2 each: the earlier wins the tie.
  EXPECT_EQ(leaves_of(policy("2 of (a and b, c, d and e)"), "a, b, c, d, e"),
            (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(leaves_of(policy("2 of (a and b, c, d and e)"), "a, b, d, e"),
            (std::vector<std::size_t>{0, 1, 3, 4}));
  // Cost looks through nesting: x0 y1 z2 | w3 | v4.
  EXPECT_EQ(leaves_of(policy("2 of (x and (y or z), w, v)"), "x, z, w, v"),
            (std::vector<std::size_t>{3, 4}));
  // A 3-of-5 gate with the middle children: Lagrange over S = {2, 4, 5}.
  std::mt19937_64 rng(test_seed());
  const AccessTree t = policy("3 of (a, b, c, d, e)");
  EXPECT_EQ(leaves_of(t, "b, d, e"), (std::vector<std::size_t>{1, 3, 4}));
  EXPECT_TRUE(reconstructs(t, attrs("b, d, e"), rng));
  // Δ_{2,{2,4,5}}(0) = 4·5 / ((4−2)(5−2)) = 10/3.
  const auto p = plan(t, attrs("b, d, e"));
  EXPECT_EQ((*p)[0].omega * Fr::from_u64(3), Fr::from_u64(10));
}

TEST(PolicyTest, SharesAreFreshAndKeepTheirLeafOrder) {
  std::mt19937_64 rng(test_seed());
  const AccessTree t = policy("2 of (a, b, c) and d");
  const Fr secret = random_fr(rng);
  const auto one = share(t, secret);  // random_scalar()
  const auto two = share(t, secret);
  ASSERT_EQ(one.size(), 4u);
  // The threshold gate draws a fresh line each time; d's share is the AND gate's q(2) for a
  // random degree-1 q as well.
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(one[i].leaf, i);
    EXPECT_EQ(one[i].attribute, t.leaf_attributes()[i]);
    EXPECT_FALSE(one[i].lambda == two[i].lambda);
  }
  const AttributeSet s = attrs("a, c, d");
  EXPECT_EQ(recombine(*plan(t, s), one, s), secret);
  EXPECT_EQ(recombine(*plan(t, s), two, s), secret);
  // A single leaf gets the secret itself; a 1-of-n gate passes it to every child.
  EXPECT_EQ(share(policy("a"), secret)[0].lambda, secret);
  for (const LeafShare& l : share(policy("a or b or c"), secret)) EXPECT_EQ(l.lambda, secret);
}

// ---- Numbers ------------------------------------------------------------------------------------

bool holds(CompareOp op, std::uint64_t x, std::uint64_t c, std::uint64_t upper) {
  switch (op) {
    case CompareOp::kLess: return x < c;
    case CompareOp::kLessEqual: return x <= c;
    case CompareOp::kGreater: return x > c;
    case CompareOp::kGreaterEqual: return x >= c;
    case CompareOp::kEqual: return x == c;
    case CompareOp::kInOpen: return c < x && x < upper;
    case CompareOp::kInClosed: return c <= x && x <= upper;
  }
  return false;
}

const char* op_text(CompareOp op) {
  switch (op) {
    case CompareOp::kLess: return "<";
    case CompareOp::kLessEqual: return "<=";
    case CompareOp::kGreater: return ">";
    case CompareOp::kGreaterEqual: return ">=";
    case CompareOp::kEqual: return "==";
    default: return "in";
  }
}

std::string comparison_policy(CompareOp op, std::uint64_t c, std::uint64_t upper, unsigned w) {
  const std::string suffix = "#" + std::to_string(w);
  if (op == CompareOp::kInOpen) {
    return "x in (" + std::to_string(c) + suffix + "-" + std::to_string(upper) + suffix + ")";
  }
  if (op == CompareOp::kInClosed) {
    return "x in {" + std::to_string(c) + suffix + "-" + std::to_string(upper) + suffix + "}";
  }
  return std::string("x ") + op_text(op) + " " + std::to_string(c) + suffix;
}

// Every operator, every constant (pair of bounds for ranges) and every value, widths 1 to 5;
// with share + plan + recombination too for widths up to 4 (5 would add 1 s).
TEST(PolicyTest, ComparisonsExhaustiveAtSmallWidths) {
  std::mt19937_64 rng(test_seed());
  const std::vector<CompareOp> ops = {
      CompareOp::kLess,  CompareOp::kLessEqual, CompareOp::kGreater, CompareOp::kGreaterEqual,
      CompareOp::kEqual, CompareOp::kInOpen,    CompareOp::kInClosed};
  std::size_t checked = 0;
  for (unsigned w = 1; w <= 5; ++w) {
    const std::uint64_t count = std::uint64_t{1} << w;
    std::vector<AttributeSet> sets;
    for (std::uint64_t x = 0; x < count; ++x) {
      AttributeSet s;
      ASSERT_TRUE(s.assign("x", x, w).has_value());
      ASSERT_TRUE(s.add("other").has_value());
      sets.push_back(s);
    }
    AttributeSet unset, other_width;
    ASSERT_TRUE(other_width.assign("x", 0, w + 1).has_value());
    for (CompareOp op : ops) {
      const bool range = op == CompareOp::kInOpen || op == CompareOp::kInClosed;
      for (std::uint64_t c = 0; c < count; ++c) {
        for (std::uint64_t upper = range ? 0 : c; upper < (range ? count : c + 1); ++upper) {
          const std::string text = comparison_policy(op, c, range ? upper : 0, w);
          bool any = false;
          for (std::uint64_t x = 0; x < count; ++x) any = any || holds(op, x, c, upper);
          auto tree = parse_policy(text);
          // Refused exactly when no value satisfies it.
          ASSERT_EQ(tree.has_value(), any) << text;
          if (!tree) continue;
          // At most one leaf per bit tested (two for `x has a value`).
          EXPECT_LE(tree->leaf_count(), std::max(2u, range ? 2 * w : w)) << text;
          EXPECT_EQ(*tree, *parse_policy(tree->to_string()));
          for (std::uint64_t x = 0; x < count; ++x) {
            const bool expected = holds(op, x, c, upper);
            ASSERT_EQ(satisfies(*tree, sets[x]), expected) << text << " with x = " << x;
            if (w <= 4) {
              ASSERT_EQ(reconstructs(*tree, sets[x], rng), expected) << text;
            }
            ++checked;
          }
          // No value, or a value at another width, satisfies nothing.
          EXPECT_FALSE(satisfies(*tree, unset)) << text;
          EXPECT_FALSE(satisfies(*tree, other_width)) << text;
        }
      }
    }
  }
  // 2^w values × (5 · 2^w constants + 2 · 2^w(2^w+1)/2 bound pairs) over w = 1..5, less the
  // refused policies' values (the count guards against a loop that silently checks nothing).
  EXPECT_GT(checked, 30000u);
}

TEST(PolicyTest, ComparisonsAtWidths32And64) {
  std::mt19937_64 rng(test_seed());
  const std::vector<CompareOp> ops = {CompareOp::kLess, CompareOp::kLessEqual, CompareOp::kGreater,
                                      CompareOp::kGreaterEqual, CompareOp::kEqual};
  for (unsigned w : {32u, 64u}) {
    const std::uint64_t max = w == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << w) - 1;
    std::vector<std::uint64_t> constants = {0,
                                            1,
                                            2,
                                            3,
                                            max / 2,
                                            max / 2 + 1,
                                            max - 1,
                                            max,
                                            0xAAAAAAAAAAAAAAAA & max,
                                            0x5555555555555555 & max};
    for (int i = 0; i < 6; ++i) constants.push_back(rng() & max);
    for (std::uint64_t c : constants) {
      std::vector<std::uint64_t> values = {
          0,          1, max, max - 1, c, c - 1, c + 1, c ^ 1, c ^ (std::uint64_t{1} << (w - 1)),
          rng() & max};
      for (CompareOp op : ops) {
        const std::string text = comparison_policy(op, c, 0, w);
        auto tree = parse_policy(text);
        const bool never =
            (op == CompareOp::kLess && c == 0) || (op == CompareOp::kGreater && c == max);
        ASSERT_EQ(tree.has_value(), !never) << text;
        if (!tree) continue;
        EXPECT_LE(tree->leaf_count(), w);
        for (std::uint64_t x : values) {
          x &= max;
          AttributeSet s;
          ASSERT_TRUE(s.assign("x", x, w).has_value());
          ASSERT_EQ(satisfies(*tree, s), holds(op, x, c, 0)) << text << " with x = " << x;
        }
      }
      // Ranges around c.
      const std::uint64_t lo = c / 2, hi = c;
      if (hi >= lo + 2) {
        for (CompareOp op : {CompareOp::kInOpen, CompareOp::kInClosed}) {
          const AccessTree tree = policy(comparison_policy(op, lo, hi, w));
          EXPECT_LE(tree.leaf_count(), 2 * w);
          for (std::uint64_t x : {lo - (lo > 0), lo, lo + 1, hi - 1, hi, hi + (hi < max)}) {
            AttributeSet s;
            ASSERT_TRUE(s.assign("x", x, w).has_value());
            ASSERT_EQ(satisfies(tree, s), holds(op, x, lo, hi)) << tree.to_string() << " x=" << x;
          }
        }
      }
    }
  }
  // Reconstruction through a 64-bit comparison's gates.
  EXPECT_TRUE(reconstructs(policy("level >= 12345678901234567890#64 and tenant:acme"),
                           attrs("tenant:acme, level = 12345678901234567891#64"), rng));
  EXPECT_FALSE(reconstructs(policy("level >= 12345678901234567890#64 and tenant:acme"),
                            attrs("tenant:acme, level = 12345678901234567889#64"), rng));
  // `x >= 0` only asks for a value at the width.
  EXPECT_TRUE(satisfies(policy("x >= 0"), attrs("x = 0")));
  EXPECT_FALSE(satisfies(policy("x >= 0"), attrs("x = 0#16")));
  EXPECT_FALSE(satisfies(policy("x >= 0"), attrs("y = 0")));
}

// ---- Explanations ------------------------------------------------------------------------------

TEST(PolicyTest, ExplainsRefusals) {
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"tenant:acme and role:auditor", "tenant:acme", "requires role:auditor"},
      {"2 of (a, b, c)", "a", "needs 2 of (a, b, c); has only a"},
      {"a or b", "", "needs one of (a, b); has none"},
      {"level >= 3#8", "level = 2#8", "requires level >= 3#8; level is 2"},
      {"level >= 3#8", "", "requires level >= 3#8; level has no value"},
      {"level >= 3#8", "level = 5", "requires level >= 3#8; level has a value of width 32, not 8"},
      {"level in (2-5) and a", "level = 5", "requires level in (2-5); level is 5; requires a"},
      {"a and b and 2 of (c, d and e, f)", "c, d",
       "requires a; requires b; needs 2 of (c, (d and e), f); has only c"},
      {"x or (y and z)", "y", "needs one of (x, (y and z)); has none"},
      {"1 of (a)", "", "requires a"},
  };
  for (const auto& [text, set, message] : cases) {
    const auto why = explain(policy(text), attrs(set));
    ASSERT_TRUE(why.has_value()) << text;
    EXPECT_EQ(*why, message) << text;
  }
  EXPECT_EQ(explain(policy("a and 2 of (b, c, d)"), attrs("a, b, d")), std::nullopt);
}

// ---- Random scalars -----------------------------------------------------------------------------

TEST(PolicyTest, WideReductionAgreesWithGmp) {
  mpz_t r, x, expected, got;
  mpz_init_set_str(r, "73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001", 16);
  mpz_inits(x, expected, got, nullptr);
  std::mt19937_64 rng(test_seed());
  std::vector<std::array<std::uint8_t, 48>> inputs;
  inputs.push_back({});
  std::array<std::uint8_t, 48> all_ones;
  all_ones.fill(0xff);
  inputs.push_back(all_ones);
  // r itself and r − 1, r + 1 in the low 32 bytes; r·2^128 spread over the top.
  for (int delta : {-1, 0, 1}) {
    mpz_add_ui(x, r, 0);
    if (delta < 0) mpz_sub_ui(x, x, 1);
    if (delta > 0) mpz_add_ui(x, x, 1);
    std::array<std::uint8_t, 48> b{};
    std::size_t n = 0;
    mpz_export(b.data() + 16, &n, 1, 1, 1, 0, x);
    std::rotate(b.begin() + 16, b.begin() + 16 + static_cast<std::ptrdiff_t>(n), b.end());
    inputs.push_back(b);
    mpz_mul_2exp(x, x, 128);
    std::array<std::uint8_t, 48> c{};
    mpz_export(c.data(), &n, 1, 1, 1, 0, x);
    std::rotate(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(n), c.end());
    inputs.push_back(c);
  }
  for (int i = 0; i < 2000; ++i) {
    std::array<std::uint8_t, 48> b;
    for (auto& byte : b) byte = static_cast<std::uint8_t>(rng());
    inputs.push_back(b);
  }
  for (const auto& b : inputs) {
    mpz_import(x, b.size(), 1, 1, 1, 0, b.data());
    mpz_mod(expected, x, r);
    const auto out = scalar_from_wide_bytes(b).to_bytes();
    mpz_import(got, out.size(), 1, 1, 1, 0, out.data());
    ASSERT_EQ(mpz_cmp(got, expected), 0) << "seed " << test_seed();
  }
  mpz_clears(r, x, expected, got, nullptr);
  // From the CSPRNG: not stuck.
  const Fr a = random_scalar(), b = random_scalar();
  EXPECT_FALSE(a == b);
  EXPECT_FALSE(a.is_zero());
}

}  // namespace
}  // namespace mchain::abe
