// Access policies for KP-ABE (GPSW; docs/abe.md, "Access policies"): the policy language, the
// access tree it compiles to, the attribute sets ciphertexts carry, and the secret sharing and
// reconstruction that KeyGen and Decrypt run over the tree. Nothing here touches a curve: shares
// and coefficients are scalars in Fr.
//
//   auto tree = parse_policy("tenant:acme and (role:admin or 2 of (a, b, c)) and level >= 3#8");
//   auto set = parse_attributes("tenant:acme, role:admin, level = 5#8");
//   std::vector<LeafShare> shares = share(*tree, y);          // KeyGen: one share per leaf
//   std::optional<std::vector<PlanTerm>> p = plan(*tree, *set);  // Decrypt: Σ ω·λ = y
//
// Attributes are ASCII words [A-Za-z0-9_.:-]{1,255}, case-sensitive, other than the keywords
// and/or/of/in. Numbers are fixed-width unsigned integers (width 1..64, default 32) stored as
// one attribute per bit ("bag of bits", BSW07): `level = 5#8` carries eight attributes
// "#num:level#8:<i>=<bit>", and `level >= 3#8` compiles to a tree of AND/OR gates over them. The
// width is part of the attribute, so a value assigned at one width never satisfies a comparison
// written at another. '#' is not in the attribute grammar, so users can never name a bit
// attribute directly.
//
// Policy, attributes and tree shape are public (the tree travels in keys, the set in ciphertexts);
// only the secret given to share() and the shares it returns are secret.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "abe/pairing/fields.h"
#include "chain/error.h"
#include "chain/types.h"

namespace mchain::abe {

// Limits against hostile policies, attribute lists and encodings (all enforced by the parsers,
// the decoders and the PolicyNode factories).
inline constexpr std::size_t kMaxPolicyLength = 65536;   // bytes of policy or attribute-list text
inline constexpr std::size_t kMaxAttributeLength = 255;  // bytes of one attribute or number name
inline constexpr std::size_t kMaxDepth = 32;     // gates nested in a policy; also parentheses
inline constexpr std::size_t kMaxArity = 256;    // children of one gate
inline constexpr std::size_t kMaxLeaves = 1024;  // leaves after numbers expand to bit attributes
inline constexpr std::size_t kMaxAttributes = 1024;  // attributes in a set, bits included
inline constexpr unsigned kDefaultWidth = 32;        // of a number written without '#width'
inline constexpr unsigned kMaxWidth = 64;

// True when `attribute` is a valid user attribute (or number name): 1 to 255 characters of
// [A-Za-z0-9_.:-], and not one of the keywords and/or/of/in (in any case).
bool valid_attribute(std::string_view attribute);

// The attribute saying that bit `bit` (0 = least significant) of number `name` at `width` is
// `value`: "#num:<name>#<width>:<bit>=<0|1>". Reserved: no user attribute can take this form.
std::string bit_attribute(std::string_view name, unsigned width, unsigned bit, bool value);

// A numeric comparison as written in a policy. For kInOpen and kInClosed `value` is the lower
// and `upper` the upper bound; otherwise `upper` is 0.
enum class CompareOp : std::uint8_t {
  kLess,          // name < value
  kLessEqual,     // name <= value
  kGreater,       // name > value
  kGreaterEqual,  // name >= value
  kEqual,         // name == value
  kInOpen,        // name in (value-upper): value < name < upper, as in OpenABE
  kInClosed,      // name in {value-upper}: value <= name <= upper
};
struct Comparison {
  std::string name;
  CompareOp op = CompareOp::kEqual;
  std::uint64_t value = 0;
  std::uint64_t upper = 0;
  unsigned width = kDefaultWidth;
  bool operator==(const Comparison&) const = default;
};

// A node of an access tree: a leaf (one attribute) or a threshold gate (k of its n children;
// AND is n of n, OR is 1 of n). A comparison is a gate whose subtree is the comparison compiled
// to gates over bit attributes, and which remembers the comparison it came from (for the text
// form, the encoding and explanations). Immutable; the factories enforce the grammar and limits.
class PolicyNode {
 public:
  // A leaf for a user attribute; fails unless valid_attribute(attribute).
  static Result<PolicyNode> leaf(std::string_view attribute);
  // A gate of `threshold` of `children`: 1 <= threshold <= children.size() <= kMaxArity.
  static Result<PolicyNode> gate(std::size_t threshold, std::vector<PolicyNode> children);
  // The gates over bit attributes that hold exactly when the comparison does. Fails on an invalid
  // name or width, a constant that does not fit the width, an empty range, and comparisons no
  // value can satisfy (`x < 0`); `x >= 0` becomes "x has a value at this width".
  static Result<PolicyNode> compare(Comparison comparison);

  bool is_leaf() const { return children_.empty(); }
  // The attribute of a leaf (user or bit attribute); empty for gates.
  const std::string& attribute() const { return attribute_; }
  // k of a gate; 0 for leaves.
  std::size_t threshold() const { return threshold_; }
  const std::vector<PolicyNode>& children() const { return children_; }
  // Set on the root gate of a compiled comparison only.
  const std::optional<Comparison>& comparison() const { return comparison_; }
  // Leaves in this subtree, bit attributes included.
  std::size_t leaf_count() const { return leaves_; }
  // Gates nested in this subtree as the policy writes them: 0 for a leaf and for a comparison.
  std::size_t height() const { return height_; }

  bool operator==(const PolicyNode&) const = default;

 private:
  friend struct PolicyNodeAccess;
  PolicyNode() = default;

  std::string attribute_;
  std::size_t threshold_ = 0;
  std::vector<PolicyNode> children_;
  std::optional<Comparison> comparison_;
  // Cached from the children by the factories (so that they can enforce the limits without
  // recursing); functions of the structure, so they never make equal trees differ.
  std::size_t leaves_ = 1;
  std::size_t height_ = 0;
};

// A validated access tree: at most kMaxDepth gates deep (a comparison counts as a leaf there)
// and at most kMaxLeaves leaves. Leaves are numbered 0, 1, … in depth-first, left-to-right order;
// shares and plans refer to them by that index.
class AccessTree {
 public:
  static Result<AccessTree> from_root(PolicyNode root);

  const PolicyNode& root() const { return root_; }
  std::size_t leaf_count() const { return root_.leaf_count(); }
  // The attribute of every leaf, by leaf index (what KeyGen hashes to G1, one per leaf).
  std::vector<std::string> leaf_attributes() const;

  // Canonical text: parse_policy(to_string()) gives an equal tree. Keywords lower-case; `and`
  // and `or` for n-of-n and 1-of-n gates with n >= 2, `k of (…)` otherwise; gates below an
  // `and`/`or` in parentheses; comparisons as written, `#width` only when not 32.
  std::string to_string() const;

  bool operator==(const AccessTree&) const = default;

 private:
  explicit AccessTree(PolicyNode root) : root_(std::move(root)) {}
  PolicyNode root_;
};

// Parses a key policy:
//   policy  := or ;  or := and ('or' and)* ;  and := primary ('and' primary)*
//   primary := attribute | '(' or ')' | k 'of' '(' or (',' or)* ')'
//            | attribute ('<' | '<=' | '>' | '>=' | '==') number
//            | attribute 'in' ('(' number '-' number ')' | '{' number '-' number '}')
//   number  := digits ['#' width]
// Keywords are case-insensitive; `and` binds tighter than `or`; a chain `a and b and c` is one
// 3-of-3 gate, while parentheses keep their own gate. Errors name the 1-based byte position and
// what was expected, e.g. "position 14: expected an attribute or '(' after 'and', found the end
// of the policy".
Result<AccessTree> parse_policy(std::string_view text);

// What a ciphertext is encrypted under: user attributes and numbers, the numbers expanded to
// their bit attributes.
class AttributeSet {
 public:
  struct Number {
    std::string name;
    std::uint64_t value = 0;
    unsigned width = kDefaultWidth;
    bool operator==(const Number&) const = default;
  };

  // Adds a user attribute (valid_attribute); adding one twice changes nothing.
  Status add(std::string_view attribute);
  // Assigns a number; fails on an invalid name or width, a value that does not fit, or a name
  // that already has a value (at any width).
  Status assign(std::string_view name, std::uint64_t value, unsigned width = kDefaultWidth);

  // Whether the set holds `attribute` (a user attribute or a bit attribute).
  bool contains(std::string_view attribute) const;
  // Every attribute, bit attributes included, sorted and unique: what Encrypt hashes to G1.
  const std::vector<std::string>& attributes() const { return expanded_; }
  const std::vector<std::string>& user_attributes() const { return plain_; }
  const std::vector<Number>& numbers() const { return numbers_; }  // sorted by name
  const Number* number(std::string_view name) const;

  // Canonical text: user attributes sorted, then numbers sorted by name, comma-separated, e.g.
  // "role:admin, tenant:acme, level = 5#8". parse_attributes(to_string()) gives an equal set.
  std::string to_string() const;

  bool operator==(const AttributeSet&) const = default;

 private:
  std::vector<std::string> plain_;
  std::vector<Number> numbers_;
  std::vector<std::string> expanded_;
};

// Parses "attr, attr, name = 5, name = 3#8" (an empty text is the empty set). Repeated user
// attributes collapse; a number assigned twice is an error. Errors name the 1-based position.
Result<AttributeSet> parse_attributes(std::string_view text);

// Canonical binary encodings (the project's canonical CBOR, chain/encoding/cbor.h):
//   tree := [1, node]
//   node := [0, attribute] | [1, k, [node, …]] | [2, name, op, width, value, upper]
//   set  := [1, [attribute, …], [[name, width, value], …]]   (both lists strictly sorted)
// A comparison is stored as written, not as its bits; decoding recompiles it. The decoders
// accept exactly the encoder's output: they check the grammar, every limit, k and op ranges,
// order and uniqueness, so each tree and set has one encoding.
Bytes encode_tree(const AccessTree& tree);
Result<AccessTree> decode_tree(ByteView encoded);
Bytes encode_attributes(const AttributeSet& set);
Result<AttributeSet> decode_attributes(ByteView encoded);

// Whether `set` satisfies `tree`.
bool satisfies(const AccessTree& tree, const AttributeSet& set);

// GPSW secret sharing. Every gate of threshold k gets a fresh polynomial q of degree k-1 with
// q(0) = the gate's share (the secret at the root) and coefficients from `random`, and its j-th
// child (1-based) gets q(j); a leaf's share is what its parent gave it. `random` must return
// independent uniform scalars. Constant time in the secret: the branches follow the public tree.
struct LeafShare {
  std::size_t leaf = 0;   // leaf index
  std::string attribute;  // that leaf's attribute
  Fr lambda;              // its share (secret)
};
std::vector<LeafShare> share(const AccessTree& tree, const Fr& secret,
                             const std::function<Fr()>& random);
// The same with random_scalar() (abe/pairing/bls12_381.h).
std::vector<LeafShare> share(const AccessTree& tree, const Fr& secret);

// How to recombine the shares of a satisfied tree: Σ omega·lambda over the terms is the secret.
// omega is the product of the Lagrange coefficients Δ_{j,S}(0) = Π_{m∈S, m≠j} m/(m−j) along the
// leaf's path, S being the children used at each gate. Of the satisfied children of a gate the k
// needing the fewest leaves are used (ties: the earlier child), so the plan has the fewest leaves
// possible, each costing a pairing. nullopt when `set` does not satisfy `tree`. Terms are in
// leaf order. Public data only (tree, set, indices).
struct PlanTerm {
  std::size_t leaf = 0;
  Fr omega;
};
std::optional<std::vector<PlanTerm>> plan(const AccessTree& tree, const AttributeSet& set);

// Why `set` does not satisfy `tree`, for a person: e.g. "requires role:auditor",
// "needs 2 of (a, b, c); has only a", "requires level >= 3#8; level is 2". Unmet parts of an AND
// are listed, separated by "; ". nullopt when the set satisfies the tree.
std::optional<std::string> explain(const AccessTree& tree, const AttributeSet& set);

}  // namespace mchain::abe
