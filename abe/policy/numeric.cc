// Numbers as bags of bits (BSW07): the bit attributes, and comparisons compiled to gates.
//
// x > c over bits x_{w-1} … x_0 is built from the least significant bit up. G_i says
// "x[i..0] > c[i..0]"; G_{-1} is false, and
//   c_i = 1:  G_i = (x_i = 1) AND G_{i-1}   (x_i must match c_i, and the rest must be greater)
//   c_i = 0:  G_i = (x_i = 1) OR  G_{i-1}   (x_i = 1 > c_i decides; else x_i = 0 = c_i, so the
//                                            rest decides)
// (the OR needs no "x_i = 0" leaf: with x_i = 1 the whole is true whatever G_{i-1} says). x >= c
// starts from true instead of false; x < c and x <= c swap the roles of 0 and 1. Constants fold
// away (AND with false is false, OR with true is true, …) and a gate absorbs a child gate of its
// own kind, so a comparison costs at most w leaves, the nesting alternates AND/OR at each change
// of bit in c, and a plan uses at most w leaves. x == c is the AND of all w bits. A closed range
// is the AND of >= and <=; an open one (OpenABE's `in (a-b)`) is the closed range [a+1, b-1].
//
// OpenABE's compiler (zdriver.cpp, per the team's notes, §2) gets `level > 3` wrong in its
// default mode; this one is checked exhaustively for widths 1..5 by tests/abe/policy_test.cc.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "abe/policy/internal.h"
#include "abe/policy/policy.h"

namespace mchain::abe {
namespace {

using policy_detail::number_text;

std::uint64_t max_value(unsigned width) {
  return width >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << width) - 1;
}

// A formula under construction: a constant or a node.
struct Partial {
  enum class Kind { kFalse, kTrue, kNode } kind;
  std::optional<PolicyNode> node;
};

Partial constant(bool value) {
  return {value ? Partial::Kind::kTrue : Partial::Kind::kFalse, std::nullopt};
}

bool is_and_gate(const PolicyNode& n) {
  return !n.is_leaf() && n.children().size() >= 2 && n.threshold() == n.children().size();
}
bool is_or_gate(const PolicyNode& n) {
  return !n.is_leaf() && n.children().size() >= 2 && n.threshold() == 1;
}

// leaf AND rest, or leaf OR rest, folding constants and merging into a gate of the same kind
// (the leaf goes first, so children end up ordered from the most significant bit down).
Partial combine(bool is_and, PolicyNode leaf, Partial rest) {
  if (rest.kind != Partial::Kind::kNode) {
    const bool rest_true = rest.kind == Partial::Kind::kTrue;
    if (is_and != rest_true) return rest;  // AND false = false, OR true = true
    return {Partial::Kind::kNode, std::move(leaf)};
  }
  PolicyNode& node = *rest.node;
  if (is_and ? is_and_gate(node) : is_or_gate(node)) {
    auto& children = PolicyNodeAccess::children(node);
    children.insert(children.begin(), std::move(leaf));
    if (is_and) PolicyNodeAccess::set_threshold(node, children.size());
    PolicyNodeAccess::refresh(node);
    return rest;
  }
  std::vector<PolicyNode> children;
  children.push_back(std::move(leaf));
  children.push_back(std::move(node));
  return {Partial::Kind::kNode, PolicyNodeAccess::make_gate(is_and ? 2 : 1, std::move(children))};
}

PolicyNode bit_leaf(const Comparison& c, unsigned bit, bool value) {
  return PolicyNodeAccess::make_leaf(bit_attribute(c.name, c.width, bit, value));
}

// x > c (strict) or x >= c, by the recurrence above.
Partial greater(const Comparison& c, std::uint64_t bound, bool or_equal) {
  Partial g = constant(or_equal);
  for (unsigned i = 0; i < c.width; ++i) {
    const bool c_bit = (bound >> i) & 1;
    g = combine(c_bit, bit_leaf(c, i, true), std::move(g));
  }
  return g;
}

// x < c (strict) or x <= c: the mirror image.
Partial less(const Comparison& c, std::uint64_t bound, bool or_equal) {
  Partial g = constant(or_equal);
  for (unsigned i = 0; i < c.width; ++i) {
    const bool c_bit = (bound >> i) & 1;
    g = combine(!c_bit, bit_leaf(c, i, false), std::move(g));
  }
  return g;
}

Partial equal(const Comparison& c, std::uint64_t value) {
  Partial g = constant(true);
  for (unsigned i = 0; i < c.width; ++i) {
    g = combine(true, bit_leaf(c, i, (value >> i) & 1), std::move(g));
  }
  return g;
}

Partial both(Partial a, Partial b) {
  if (a.kind != Partial::Kind::kNode) return a.kind == Partial::Kind::kTrue ? b : a;
  if (b.kind != Partial::Kind::kNode) return b.kind == Partial::Kind::kTrue ? a : b;
  std::vector<PolicyNode> children;
  children.push_back(std::move(*a.node));
  children.push_back(std::move(*b.node));
  return {Partial::Kind::kNode, PolicyNodeAccess::make_gate(2, std::move(children))};
}

}  // namespace

std::string bit_attribute(std::string_view name, unsigned width, unsigned bit, bool value) {
  std::string out = "#num:";
  out += name;
  out += '#';
  out += std::to_string(width);
  out += ':';
  out += std::to_string(bit);
  out += value ? "=1" : "=0";
  return out;
}

Result<PolicyNode> PolicyNode::compare(Comparison c) {
  if (!valid_attribute(c.name)) {
    return fail("'" + c.name.substr(0, 64) + "' is not a valid number name");
  }
  if (c.width < 1 || c.width > kMaxWidth) {
    return fail("width " + std::to_string(c.width) + " is out of range (1 to 64)");
  }
  const std::uint64_t max = max_value(c.width);
  const bool range = c.op == CompareOp::kInOpen || c.op == CompareOp::kInClosed;
  for (std::uint64_t v : {c.value, c.upper}) {
    if (v > max) {
      return fail(std::to_string(v) + " does not fit in " + std::to_string(c.width) + " bits");
    }
  }
  if (!range && c.upper != 0) return fail("an upper bound is only for ranges");

  Partial p = constant(false);
  switch (c.op) {
    case CompareOp::kLess: p = less(c, c.value, false); break;
    case CompareOp::kLessEqual: p = less(c, c.value, true); break;
    case CompareOp::kGreater: p = greater(c, c.value, false); break;
    case CompareOp::kGreaterEqual: p = greater(c, c.value, true); break;
    case CompareOp::kEqual: p = equal(c, c.value); break;
    case CompareOp::kInClosed:
    case CompareOp::kInOpen: {
      std::uint64_t lo = c.value, hi = c.upper;
      if (lo > hi) {
        return fail("range " + policy_detail::comparison_text(c).substr(c.name.size() + 4) +
                    " has its lower bound above its upper bound");
      }
      if (c.op == CompareOp::kInOpen) {
        if (hi - lo < 2) {
          return fail("range " + policy_detail::comparison_text(c).substr(c.name.size() + 4) +
                      " contains no value (bounds are excluded)");
        }
        ++lo;
        --hi;
      }
      p = both(greater(c, lo, true), less(c, hi, true));
      break;
    }
    default: return fail("unknown comparison operator");
  }

  PolicyNode root;
  switch (p.kind) {
    case Partial::Kind::kFalse:
      return fail(policy_detail::comparison_text(c) + " can never be satisfied");
    case Partial::Kind::kTrue: {
      // Always true for a value of this width: require that the number has one, through its top
      // bit (exactly one of the two bit attributes is present when it does).
      std::vector<PolicyNode> children;
      children.push_back(bit_leaf(c, c.width - 1, false));
      children.push_back(bit_leaf(c, c.width - 1, true));
      root = PolicyNodeAccess::make_gate(1, std::move(children));
      break;
    }
    case Partial::Kind::kNode:
      root = std::move(*p.node);
      if (root.is_leaf()) {  // one bit decides: keep a gate to hang the comparison on
        std::vector<PolicyNode> children;
        children.push_back(std::move(root));
        root = PolicyNodeAccess::make_gate(1, std::move(children));
      }
      break;
  }
  PolicyNodeAccess::set_comparison(root, std::move(c));
  return root;
}

namespace policy_detail {

std::string number_text(std::uint64_t value, unsigned width) {
  std::string out = std::to_string(value);
  if (width != kDefaultWidth) out += "#" + std::to_string(width);
  return out;
}

std::string comparison_text(const Comparison& c) {
  const std::string v = number_text(c.value, c.width);
  switch (c.op) {
    case CompareOp::kLess: return c.name + " < " + v;
    case CompareOp::kLessEqual: return c.name + " <= " + v;
    case CompareOp::kGreater: return c.name + " > " + v;
    case CompareOp::kGreaterEqual: return c.name + " >= " + v;
    case CompareOp::kEqual: return c.name + " == " + v;
    case CompareOp::kInOpen:
      return c.name + " in (" + v + "-" + number_text(c.upper, c.width) + ")";
    case CompareOp::kInClosed:
      return c.name + " in {" + v + "-" + number_text(c.upper, c.width) + "}";
  }
  return c.name + " ?";
}

}  // namespace policy_detail
}  // namespace mchain::abe
