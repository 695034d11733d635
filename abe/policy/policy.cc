// The access tree, attribute sets, their encodings, and GPSW sharing and reconstruction.
#include "abe/policy/policy.h"

#include <algorithm>
#include <array>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "abe/pairing/bls12_381.h"
#include "abe/policy/internal.h"
#include "chain/crypto/hash.h"
#include "chain/encoding/cbor.h"

namespace mchain::abe {

using policy_detail::comparison_text;
using policy_detail::node_text;

// ---- Attributes and nodes ----------------------------------------------------------------------

namespace policy_detail {

bool is_keyword(std::string_view word, std::string_view keyword) {
  if (word.size() != keyword.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    const char c =
        word[i] >= 'A' && word[i] <= 'Z' ? static_cast<char>(word[i] - 'A' + 'a') : word[i];
    if (c != keyword[i]) return false;
  }
  return true;
}

bool is_any_keyword(std::string_view word) {
  return is_keyword(word, "and") || is_keyword(word, "or") || is_keyword(word, "of") ||
         is_keyword(word, "in");
}

std::string node_text(const PolicyNode& node, bool wrap) {
  if (node.is_leaf()) return node.attribute();
  if (node.comparison()) return comparison_text(*node.comparison());
  const auto& children = node.children();
  const std::size_t k = node.threshold(), n = children.size();
  std::string out;
  if (n >= 2 && (k == n || k == 1)) {
    const char* separator = k == n ? " and " : " or ";
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0) out += separator;
      out += node_text(children[i], true);
    }
    return wrap ? "(" + out + ")" : out;
  }
  // `k of (…)` delimits itself, and each of its items is a whole `or` expression.
  out = std::to_string(k) + " of (";
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += ", ";
    out += node_text(children[i], false);
  }
  return out + ")";
}

}  // namespace policy_detail

bool valid_attribute(std::string_view attribute) {
  if (attribute.empty() || attribute.size() > kMaxAttributeLength) return false;
  if (!std::ranges::all_of(attribute, policy_detail::is_word_char)) return false;
  return !policy_detail::is_any_keyword(attribute);
}

Result<PolicyNode> PolicyNode::leaf(std::string_view attribute) {
  if (!valid_attribute(attribute)) {
    if (policy_detail::is_any_keyword(attribute)) {
      return fail("'" + std::string(attribute) + "' is a keyword, not an attribute");
    }
    return fail("'" + std::string(attribute.substr(0, 64)) +
                "' is not a valid attribute (1 to 255 of A-Z a-z 0-9 _ . : -)");
  }
  return PolicyNodeAccess::make_leaf(std::string(attribute));
}

Result<PolicyNode> PolicyNode::gate(std::size_t threshold, std::vector<PolicyNode> children) {
  if (children.empty()) return fail("a gate needs at least one child");
  if (children.size() > kMaxArity) {
    return fail("a gate has more than " + std::to_string(kMaxArity) + " children");
  }
  if (threshold < 1) return fail("threshold " + std::to_string(threshold) + " is below 1");
  if (threshold > children.size()) {
    return fail("threshold " + std::to_string(threshold) + " exceeds the number of children (" +
                std::to_string(children.size()) + ")");
  }
  PolicyNode node = PolicyNodeAccess::make_gate(threshold, std::move(children));
  if (node.height() > kMaxDepth) {
    return fail("gates nested more than " + std::to_string(kMaxDepth) + " deep");
  }
  if (node.leaf_count() > kMaxLeaves) {
    return fail("more than " + std::to_string(kMaxLeaves) +
                " leaves (a comparison counts one per bit it tests)");
  }
  return node;
}

// ---- AccessTree --------------------------------------------------------------------------------

Result<AccessTree> AccessTree::from_root(PolicyNode root) {
  // gate() and compare() enforced the limits on every gate below; a bare comparison or leaf is
  // within them.
  if (root.height() > kMaxDepth || root.leaf_count() > kMaxLeaves) {
    return fail("tree exceeds the depth or leaf limit");
  }
  return AccessTree(std::move(root));
}

namespace {

void collect_leaves(const PolicyNode& node, std::vector<std::string>& out) {
  if (node.is_leaf()) {
    out.push_back(node.attribute());
    return;
  }
  for (const PolicyNode& child : node.children()) collect_leaves(child, out);
}

}  // namespace

std::vector<std::string> AccessTree::leaf_attributes() const {
  std::vector<std::string> out;
  out.reserve(leaf_count());
  collect_leaves(root_, out);
  return out;
}

std::string AccessTree::to_string() const { return node_text(root_, false); }

// ---- AttributeSet ------------------------------------------------------------------------------

namespace {

// Inserts into a sorted vector; false if already present.
bool insert_sorted(std::vector<std::string>& v, std::string value) {
  auto it = std::ranges::lower_bound(v, value);
  if (it != v.end() && *it == value) return false;
  v.insert(it, std::move(value));
  return true;
}

std::uint64_t max_value(unsigned width) {
  return width >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << width) - 1;
}

}  // namespace

Status AttributeSet::add(std::string_view attribute) {
  auto leaf = PolicyNode::leaf(attribute);  // the same grammar and messages
  if (!leaf) return std::unexpected(leaf.error());
  if (contains(attribute)) return {};
  if (expanded_.size() + 1 > kMaxAttributes) {
    return fail("more than " + std::to_string(kMaxAttributes) + " attributes");
  }
  insert_sorted(plain_, std::string(attribute));
  insert_sorted(expanded_, std::string(attribute));
  return {};
}

Status AttributeSet::assign(std::string_view name, std::uint64_t value, unsigned width) {
  if (!valid_attribute(name)) {
    return fail("'" + std::string(name.substr(0, 64)) + "' is not a valid number name");
  }
  if (width < 1 || width > kMaxWidth) {
    return fail("width " + std::to_string(width) + " is out of range (1 to 64)");
  }
  if (value > max_value(width)) {
    return fail(std::to_string(value) + " does not fit in " + std::to_string(width) + " bits");
  }
  if (number(name) != nullptr) return fail(std::string(name) + " already has a value");
  if (expanded_.size() + width > kMaxAttributes) {
    return fail("more than " + std::to_string(kMaxAttributes) + " attributes (bits included)");
  }
  Number n{std::string(name), value, width};
  auto it = std::ranges::lower_bound(numbers_, n.name, {}, &Number::name);
  numbers_.insert(it, n);
  for (unsigned i = 0; i < width; ++i) {
    insert_sorted(expanded_, bit_attribute(name, width, i, (value >> i) & 1));
  }
  return {};
}

bool AttributeSet::contains(std::string_view attribute) const {
  return std::ranges::binary_search(expanded_, attribute, std::less<>{});
}

const AttributeSet::Number* AttributeSet::number(std::string_view name) const {
  auto it = std::ranges::lower_bound(numbers_, name, std::less<>{}, &Number::name);
  return it != numbers_.end() && it->name == name ? &*it : nullptr;
}

std::string AttributeSet::to_string() const {
  std::string out;
  for (const std::string& a : plain_) {
    if (!out.empty()) out += ", ";
    out += a;
  }
  for (const Number& n : numbers_) {
    if (!out.empty()) out += ", ";
    out += n.name + " = " + policy_detail::number_text(n.value, n.width);
  }
  return out;
}

// ---- Encodings ---------------------------------------------------------------------------------

namespace {

constexpr std::uint64_t kFormatVersion = 1;
constexpr std::uint64_t kTagLeaf = 0, kTagGate = 1, kTagComparison = 2;

void encode_node(cbor::Writer& w, const PolicyNode& node) {
  if (node.is_leaf()) {
    w.array(2).uint(kTagLeaf).text(node.attribute());
  } else if (const auto& c = node.comparison()) {
    w.array(6).uint(kTagComparison).text(c->name).uint(static_cast<std::uint64_t>(c->op));
    w.uint(c->width).uint(c->value).uint(c->upper);
  } else {
    w.array(3).uint(kTagGate).uint(node.threshold()).array(node.children().size());
    for (const PolicyNode& child : node.children()) encode_node(w, child);
  }
}

template <class T>
T or_throw(Result<T> r, std::string_view field, const cbor::Reader& reader) {
  if (!r) throw cbor::DecodeError(std::string(field), r.error().message, reader.offset());
  return std::move(*r);
}

// `depth` counts the gates above; `leaves` the leaves decoded so far (checked as they come, so
// that a hostile encoding cannot make the decoder build far more than the limit).
PolicyNode decode_node(cbor::Reader& r, std::size_t depth, std::size_t& leaves) {
  const std::size_t items = r.array("policy.node", 6);
  const std::uint64_t tag = r.uint("policy.node.tag", kTagComparison);
  PolicyNode node = [&] {
    if (tag == kTagLeaf) {
      if (items != 2) throw cbor::DecodeError("policy.leaf", "expected 2 items", r.offset());
      return or_throw(PolicyNode::leaf(r.text("policy.leaf", kMaxAttributeLength)), "policy.leaf",
                      r);
    }
    if (tag == kTagComparison) {
      if (items != 6) throw cbor::DecodeError("policy.comparison", "expected 6 items", r.offset());
      Comparison c;
      c.name = r.text("policy.comparison.name", kMaxAttributeLength);
      c.op = static_cast<CompareOp>(
          r.uint("policy.comparison.op", static_cast<std::uint64_t>(CompareOp::kInClosed)));
      c.width = static_cast<unsigned>(r.uint("policy.comparison.width", kMaxWidth));
      c.value = r.uint("policy.comparison.value");
      c.upper = r.uint("policy.comparison.upper");
      return or_throw(PolicyNode::compare(std::move(c)), "policy.comparison", r);
    }
    if (items != 3) throw cbor::DecodeError("policy.gate", "expected 3 items", r.offset());
    if (depth >= kMaxDepth) {
      throw cbor::DecodeError("policy.gate",
                              "gates nested more than " + std::to_string(kMaxDepth) + " deep",
                              r.offset());
    }
    const std::size_t k = r.uint("policy.gate.k", kMaxArity);
    const std::size_t n = r.array("policy.gate.children", kMaxArity);
    std::vector<PolicyNode> children;
    children.reserve(n);
    for (std::size_t i = 0; i < n; ++i) children.push_back(decode_node(r, depth + 1, leaves));
    // The leaves were counted as they came; this checks k and the arity.
    return or_throw(PolicyNode::gate(k, std::move(children)), "policy.gate", r);
  }();
  if (tag != kTagGate) {
    leaves += node.leaf_count();
    if (leaves > kMaxLeaves) {
      throw cbor::DecodeError("policy", "more than " + std::to_string(kMaxLeaves) + " leaves",
                              r.offset());
    }
  }
  return node;
}

}  // namespace

Bytes encode_tree(const AccessTree& tree) {
  cbor::Writer w;
  w.array(2).uint(kFormatVersion);
  encode_node(w, tree.root());
  return w.take();
}

Result<AccessTree> decode_tree(ByteView encoded) {
  auto root = cbor::decode(encoded, "policy", [](cbor::Reader& r) {
    r.array_exact("policy", 2);
    if (r.uint("policy.version", kFormatVersion) != kFormatVersion) {
      throw cbor::DecodeError("policy.version", "version 0 is not a format", r.offset());
    }
    std::size_t leaves = 0;
    return decode_node(r, 0, leaves);
  });
  if (!root) return std::unexpected(root.error());
  return AccessTree::from_root(std::move(*root));
}

Bytes encode_attributes(const AttributeSet& set) {
  cbor::Writer w;
  w.array(3).uint(kFormatVersion).array(set.user_attributes().size());
  for (const std::string& a : set.user_attributes()) w.text(a);
  w.array(set.numbers().size());
  for (const AttributeSet::Number& n : set.numbers())
    w.array(3).text(n.name).uint(n.width).uint(n.value);
  return w.take();
}

Result<AttributeSet> decode_attributes(ByteView encoded) {
  return cbor::decode(encoded, "attributes", [](cbor::Reader& r) {
    AttributeSet set;
    r.array_exact("attributes", 3);
    if (r.uint("attributes.version", kFormatVersion) != kFormatVersion) {
      throw cbor::DecodeError("attributes.version", "version 0 is not a format", r.offset());
    }
    const std::size_t plain = r.array("attributes.user", kMaxAttributes);
    std::string previous;
    for (std::size_t i = 0; i < plain; ++i) {
      std::string a(r.text("attributes.user", kMaxAttributeLength));
      if (i > 0 && a <= previous) {
        throw cbor::DecodeError("attributes.user", "not strictly sorted", r.offset());
      }
      auto added = set.add(a);
      if (!added) throw cbor::DecodeError("attributes.user", added.error().message, r.offset());
      previous = std::move(a);
    }
    const std::size_t numbers = r.array("attributes.numbers", kMaxAttributes);
    for (std::size_t i = 0; i < numbers; ++i) {
      r.array_exact("attributes.number", 3);
      std::string name(r.text("attributes.number.name", kMaxAttributeLength));
      const auto width = static_cast<unsigned>(r.uint("attributes.number.width", kMaxWidth));
      const std::uint64_t value = r.uint("attributes.number.value");
      if (i > 0 && name <= previous) {
        throw cbor::DecodeError("attributes.number", "not strictly sorted", r.offset());
      }
      auto assigned = set.assign(name, value, width);
      if (!assigned) {
        throw cbor::DecodeError("attributes.number", assigned.error().message, r.offset());
      }
      previous = std::move(name);
    }
    return set;
  });
}

// ---- Satisfaction, sharing, reconstruction -----------------------------------------------------

namespace {

bool node_satisfied(const PolicyNode& node, const AttributeSet& set) {
  if (node.is_leaf()) return set.contains(node.attribute());
  std::size_t met = 0;
  for (const PolicyNode& child : node.children()) {
    if (node_satisfied(child, set) && ++met == node.threshold()) return true;
  }
  return false;
}

// Gives `value` to the subtree: a gate draws q with q(0) = value and passes q(j) to child j.
void share_node(const PolicyNode& node, const Fr& value, const std::function<Fr()>& random,
                std::size_t& next_leaf, std::vector<LeafShare>& out) {
  if (node.is_leaf()) {
    out.push_back({next_leaf++, node.attribute(), value});
    return;
  }
  // coefficients[0] = q(0); the degree is threshold - 1 (public).
  std::vector<Fr> coefficients(node.threshold());
  coefficients[0] = value;
  for (std::size_t i = 1; i < coefficients.size(); ++i) coefficients[i] = random();
  for (std::size_t j = 1; j <= node.children().size(); ++j) {
    const Fr x = Fr::from_u64(j);
    Fr y = coefficients.back();  // Horner
    for (std::size_t i = coefficients.size() - 1; i-- > 0;) y = y * x + coefficients[i];
    share_node(node.children()[j - 1], y, random, next_leaf, out);
  }
}

constexpr std::size_t kUnsatisfied = std::numeric_limits<std::size_t>::max();

// Per node, in depth-first pre-order: the fewest leaves a plan for its subtree needs
// (kUnsatisfied if none) and the number of nodes in its subtree (to find the children's entries).
struct NodeCost {
  std::size_t leaves = 0;
  std::size_t nodes = 1;
};

std::size_t compute_costs(const PolicyNode& node, const AttributeSet& set,
                          std::vector<NodeCost>& costs) {
  const std::size_t id = costs.size();
  costs.emplace_back();
  if (node.is_leaf()) {
    costs[id].leaves = set.contains(node.attribute()) ? 1 : kUnsatisfied;
    return id;
  }
  std::vector<std::size_t> child_costs;
  child_costs.reserve(node.children().size());
  for (const PolicyNode& child : node.children()) {
    const std::size_t child_id = compute_costs(child, set, costs);
    if (costs[child_id].leaves != kUnsatisfied) child_costs.push_back(costs[child_id].leaves);
  }
  costs[id].nodes = costs.size() - id;
  if (child_costs.size() < node.threshold()) {
    costs[id].leaves = kUnsatisfied;
    return id;
  }
  std::ranges::nth_element(child_costs, child_costs.begin() + (node.threshold() - 1));
  std::size_t sum = 0;
  for (std::size_t i = 0; i < node.threshold(); ++i) sum += child_costs[i];
  costs[id].leaves = sum;
  return id;
}

// Δ_{j,S}(0) = Π_{m∈S, m≠j} m / (m − j) for every j in S (1-based child indices), with one field
// inversion for the whole set (Montgomery's trick).
std::vector<Fr> lagrange_at_zero(const std::vector<std::size_t>& s) {
  const std::size_t k = s.size();
  std::vector<Fr> numerators(k, Fr::one()), denominators(k, Fr::one());
  for (std::size_t a = 0; a < k; ++a) {
    for (std::size_t b = 0; b < k; ++b) {
      if (a == b) continue;
      numerators[a] *= Fr::from_u64(s[b]);
      denominators[a] *= Fr::from_u64(s[b]) - Fr::from_u64(s[a]);
    }
  }
  // prefix[i] = d_0 … d_{i-1}; then walk back with the inverse of the full product.
  std::vector<Fr> prefix(k + 1, Fr::one());
  for (std::size_t i = 0; i < k; ++i) prefix[i + 1] = prefix[i] * denominators[i];
  Fr inverse = prefix[k].inverse();  // never 0: the m − j are nonzero and below r
  std::vector<Fr> out(k);
  for (std::size_t i = k; i-- > 0;) {
    out[i] = numerators[i] * inverse * prefix[i];
    inverse *= denominators[i];
  }
  return out;
}

void emit_plan(const PolicyNode& node, std::size_t id, std::size_t first_leaf, const Fr& omega,
               const std::vector<NodeCost>& costs, std::vector<PlanTerm>& out) {
  if (node.is_leaf()) {
    out.push_back({first_leaf, omega});
    return;
  }
  struct Candidate {
    std::size_t cost, index, id, first_leaf;  // index is 1-based
  };
  std::vector<Candidate> satisfied;
  std::size_t child_id = id + 1, child_leaf = first_leaf;
  for (std::size_t j = 0; j < node.children().size(); ++j) {
    if (costs[child_id].leaves != kUnsatisfied) {
      satisfied.push_back({costs[child_id].leaves, j + 1, child_id, child_leaf});
    }
    child_leaf += node.children()[j].leaf_count();
    child_id += costs[child_id].nodes;
  }
  // The k cheapest, ties to the earlier child; then back in child order, so terms come out in
  // leaf order.
  std::ranges::sort(satisfied, [](const Candidate& a, const Candidate& b) {
    return a.cost != b.cost ? a.cost < b.cost : a.index < b.index;
  });
  satisfied.resize(node.threshold());
  std::ranges::sort(satisfied, {}, &Candidate::index);
  std::vector<std::size_t> s;
  for (const Candidate& c : satisfied) s.push_back(c.index);
  const std::vector<Fr> delta = lagrange_at_zero(s);
  for (std::size_t i = 0; i < satisfied.size(); ++i) {
    const Candidate& c = satisfied[i];
    emit_plan(node.children()[c.index - 1], c.id, c.first_leaf, omega * delta[i], costs, out);
  }
}

std::string child_list(const std::vector<const PolicyNode*>& nodes) {
  std::string out;
  for (const PolicyNode* n : nodes) {
    if (!out.empty()) out += ", ";
    out += node_text(*n, true);
  }
  return out;
}

void explain_node(const PolicyNode& node, const AttributeSet& set, std::vector<std::string>& out) {
  if (node_satisfied(node, set)) return;
  if (node.is_leaf()) {
    out.push_back("requires " + node.attribute());
    return;
  }
  if (const auto& c = node.comparison()) {
    std::string why = "requires " + comparison_text(*c) + "; ";
    const AttributeSet::Number* n = set.number(c->name);
    if (n == nullptr) {
      why += c->name + " has no value";
    } else if (n->width != c->width) {
      why += c->name + " has a value of width " + std::to_string(n->width) + ", not " +
             std::to_string(c->width);
    } else {
      why += c->name + " is " + std::to_string(n->value);
    }
    out.push_back(std::move(why));
    return;
  }
  const auto& children = node.children();
  if (node.threshold() == children.size()) {  // AND (or 1 of 1): every unmet part counts
    for (const PolicyNode& child : children) explain_node(child, set, out);
    return;
  }
  std::vector<const PolicyNode*> all, met;
  for (const PolicyNode& child : children) {
    all.push_back(&child);
    if (node_satisfied(child, set)) met.push_back(&child);
  }
  std::string why = node.threshold() == 1 ? "needs one of (" + child_list(all) + ")"
                                          : "needs " + std::to_string(node.threshold()) + " of (" +
                                                child_list(all) + ")";
  why += met.empty() ? "; has none" : "; has only " + child_list(met);
  out.push_back(std::move(why));
}

}  // namespace

bool satisfies(const AccessTree& tree, const AttributeSet& set) {
  return node_satisfied(tree.root(), set);
}

std::vector<LeafShare> share(const AccessTree& tree, const Fr& secret,
                             const std::function<Fr()>& random) {
  std::vector<LeafShare> out;
  out.reserve(tree.leaf_count());
  std::size_t next_leaf = 0;
  share_node(tree.root(), secret, random, next_leaf, out);
  return out;
}

std::vector<LeafShare> share(const AccessTree& tree, const Fr& secret) {
  return share(tree, secret, [] { return random_scalar(); });
}

std::optional<std::vector<PlanTerm>> plan(const AccessTree& tree, const AttributeSet& set) {
  std::vector<NodeCost> costs;
  compute_costs(tree.root(), set, costs);
  if (costs[0].leaves == kUnsatisfied) return std::nullopt;
  std::vector<PlanTerm> out;
  out.reserve(costs[0].leaves);
  emit_plan(tree.root(), 0, 0, Fr::one(), costs, out);
  return out;
}

std::optional<std::string> explain(const AccessTree& tree, const AttributeSet& set) {
  std::vector<std::string> parts;
  explain_node(tree.root(), set, parts);
  if (parts.empty()) return std::nullopt;
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += "; ";
    out += p;
  }
  return out;
}

}  // namespace mchain::abe
