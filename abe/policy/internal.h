// Shared by the policy module's .cc files only; not part of the API.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "abe/policy/policy.h"

namespace mchain::abe {

// Builds nodes without the factories' checks, for code that has already checked (the comparison
// compiler, whose bit attributes the leaf factory would refuse).
struct PolicyNodeAccess {
  static PolicyNode make_leaf(std::string attribute) {
    PolicyNode n;
    n.attribute_ = std::move(attribute);
    return n;
  }
  static PolicyNode make_gate(std::size_t threshold, std::vector<PolicyNode> children) {
    PolicyNode n;
    n.threshold_ = threshold;
    n.children_ = std::move(children);
    refresh(n);
    return n;
  }
  static std::vector<PolicyNode>& children(PolicyNode& n) { return n.children_; }
  static void set_threshold(PolicyNode& n, std::size_t k) { n.threshold_ = k; }
  // A compiled comparison counts as a leaf in the policy's nesting.
  static void set_comparison(PolicyNode& n, Comparison c) {
    n.comparison_ = std::move(c);
    n.height_ = 0;
  }
  // Recomputes a gate's cached leaf count and height from its children's.
  static void refresh(PolicyNode& n) {
    n.leaves_ = 0;
    n.height_ = 0;
    for (const PolicyNode& child : n.children_) {
      n.leaves_ += child.leaves_;
      n.height_ = std::max(n.height_, child.height_ + 1);
    }
  }
};

namespace policy_detail {

inline bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-';
}
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Case-insensitive comparison with a lower-case ASCII keyword.
bool is_keyword(std::string_view word, std::string_view keyword);
bool is_any_keyword(std::string_view word);

// Decimal, without a leading sign; "#w" appended when width != kDefaultWidth.
std::string number_text(std::uint64_t value, unsigned width);
// "level >= 3#8", "level in (2-5)".
std::string comparison_text(const Comparison& c);
// Text of a subtree; gates in parentheses when `wrap` (the child of an and/or).
std::string node_text(const PolicyNode& node, bool wrap);

}  // namespace policy_detail
}  // namespace mchain::abe
