// Recursive-descent parsers for policies and attribute lists (grammar in policy.h). The text is
// public; a failure unwinds with an internal exception that the entry points turn into an error
// naming the 1-based byte position.
#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "abe/policy/internal.h"
#include "abe/policy/policy.h"

namespace mchain::abe {
namespace {

using policy_detail::is_digit;
using policy_detail::is_keyword;
using policy_detail::is_word_char;

struct ParseFailure {
  std::size_t position;  // 0-based
  std::string message;
};

struct Number {
  std::uint64_t value = 0;
  unsigned width = kDefaultWidth;
  std::size_t position = 0;
};

class Scanner {
 public:
  Scanner(std::string_view text, std::string_view end_name) : text_(text), end_name_(end_name) {}

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  std::size_t position() const { return pos_; }
  void advance(std::size_t n = 1) { pos_ += n; }

  // The word [A-Za-z0-9_.:-]+ at the current position; empty if none.
  std::string_view peek_word() const {
    std::size_t end = pos_;
    while (end < text_.size() && is_word_char(text_[end])) ++end;
    return text_.substr(pos_, end - pos_);
  }
  std::string_view take_word() {
    const std::string_view w = peek_word();
    pos_ += w.size();
    return w;
  }
  // Whether the next word (after spaces) is `keyword`; consumes it if so.
  bool take_keyword(std::string_view keyword) {
    skip_space();
    if (!is_keyword(peek_word(), keyword)) return false;
    take_word();
    return true;
  }

  // What is at the current position, for "found …".
  std::string found() const {
    if (at_end()) return "the end of the " + std::string(end_name_);
    const std::string_view w = peek_word();
    if (!w.empty()) {
      return w.size() > 40 ? "'" + std::string(w.substr(0, 40)) + "...'"
                           : "'" + std::string(w) + "'";
    }
    const auto c = static_cast<unsigned char>(text_[pos_]);
    if (c > 0x20 && c < 0x7f) return "'" + std::string(1, static_cast<char>(c)) + "'";
    char hex[16];
    std::snprintf(hex, sizeof hex, "byte 0x%02x", c);
    return hex;
  }

  [[noreturn]] static void fail_at(std::size_t position, std::string message) {
    throw ParseFailure{position, std::move(message)};
  }
  [[noreturn]] void expected(const std::string& what) const {
    fail_at(pos_, "expected " + what + ", found " + found());
  }

  // digits ['#' width], the value fitting the width. `context` completes "expected a number …".
  // In a range the lower bound is followed by '-', which is a word character.
  Number number(const std::string& context, bool dash_may_follow = false) {
    skip_space();
    Number n;
    n.position = pos_;
    if (!is_digit(peek())) expected("a number " + context);
    bool overflow = false;
    while (is_digit(peek())) {
      const auto digit = static_cast<std::uint64_t>(peek() - '0');
      if (n.value > (~std::uint64_t{0} - digit) / 10) overflow = true;
      n.value = n.value * 10 + digit;
      advance();
    }
    if (overflow) fail_at(n.position, "number too large (the limit is 2^64 - 1)");
    if (peek() == '#') {
      advance();
      const std::size_t width_position = pos_;
      if (!is_digit(peek())) expected("a width (1 to 64) after '#'");
      std::uint64_t width = 0;
      while (is_digit(peek())) {
        width =
            std::min<std::uint64_t>(width * 10 + static_cast<std::uint64_t>(peek() - '0'), 1000);
        advance();
      }
      if (width < 1 || width > kMaxWidth) {
        fail_at(width_position,
                "width " + (width >= 1000 ? std::string("above 999") : std::to_string(width)) +
                    " is out of range (1 to 64)");
      }
      n.width = static_cast<unsigned>(width);
    }
    if (is_word_char(peek()) && !(dash_may_follow && peek() == '-')) {
      std::size_t end = pos_;
      while (end < text_.size() && (is_word_char(text_[end]) || text_[end] == '#')) ++end;
      fail_at(n.position, "expected a number " + context + ", found '" +
                              std::string(text_.substr(
                                  n.position, std::min<std::size_t>(end - n.position, 40))) +
                              "'");
    }
    const std::uint64_t max = n.width >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n.width) - 1;
    if (n.value > max) {
      fail_at(n.position,
              std::to_string(n.value) + " does not fit in " + std::to_string(n.width) + " bits");
    }
    return n;
  }

 private:
  std::string_view text_;
  std::string_view end_name_;
  std::size_t pos_ = 0;
};

template <class T>
T or_fail(Result<T> r, std::size_t position) {
  if (!r) Scanner::fail_at(position, std::move(r.error().message));
  return std::move(*r);
}

class PolicyParser {
 public:
  explicit PolicyParser(std::string_view text) : s_(text, "policy") {}

  PolicyNode parse() {
    PolicyNode root = parse_or("at the start of the policy");
    s_.skip_space();
    if (!s_.at_end()) s_.expected("'and', 'or' or the end of the policy");
    return root;
  }

 private:
  // or := and ('or' and)*, one 1-of-n gate for the whole chain.
  PolicyNode parse_or(const std::string& context) {
    s_.skip_space();
    const std::size_t start = s_.position();
    std::vector<PolicyNode> children;
    children.push_back(parse_and(context));
    while (s_.take_keyword("or")) {
      if (children.size() == kMaxArity) too_many_children(start);
      children.push_back(parse_and("after 'or'"));
    }
    if (children.size() == 1) return std::move(children[0]);
    return or_fail(PolicyNode::gate(1, std::move(children)), start);
  }

  // and := primary ('and' primary)*, one n-of-n gate for the whole chain.
  PolicyNode parse_and(const std::string& context) {
    s_.skip_space();
    const std::size_t start = s_.position();
    std::vector<PolicyNode> children;
    children.push_back(parse_primary(context));
    while (s_.take_keyword("and")) {
      if (children.size() == kMaxArity) too_many_children(start);
      children.push_back(parse_primary("after 'and'"));
    }
    if (children.size() == 1) return std::move(children[0]);
    const std::size_t n = children.size();
    return or_fail(PolicyNode::gate(n, std::move(children)), start);
  }

  PolicyNode parse_primary(const std::string& context) {
    s_.skip_space();
    const std::size_t start = s_.position();
    if (s_.peek() == '(') {
      open_parenthesis(start);
      PolicyNode inner = parse_or("after '('");
      s_.skip_space();
      if (s_.peek() != ')') s_.expected("'and', 'or' or ')'");
      s_.advance();
      --depth_;
      return inner;
    }
    const std::string_view word = s_.peek_word();
    if (word.empty() || policy_detail::is_any_keyword(word)) {
      s_.expected("an attribute or '(' " + context);
    }
    s_.take_word();

    // `k of`; otherwise an attribute made of digits (only spaces were consumed).
    if (std::ranges::all_of(word, is_digit) && s_.take_keyword("of")) {
      return parse_threshold(word, start);
    }

    s_.skip_space();
    const char c = s_.peek();
    if (c == '<' || c == '>' || c == '=') return parse_comparison(word, start);
    if (s_.take_keyword("in")) return parse_range(word, start);
    return or_fail(PolicyNode::leaf(word), start);
  }

  // k of ( or , or , … )
  PolicyNode parse_threshold(std::string_view k_text, std::size_t start) {
    std::uint64_t k = 0;
    for (char d : k_text)
      k = std::min<std::uint64_t>(k * 10 + static_cast<std::uint64_t>(d - '0'), kMaxArity + 1);
    s_.skip_space();
    const std::size_t open = s_.position();
    if (s_.peek() != '(') s_.expected("'(' after 'of'");
    open_parenthesis(open);
    std::vector<PolicyNode> children;
    children.push_back(parse_or("after '('"));
    for (;;) {
      s_.skip_space();
      if (s_.peek() == ')') break;
      if (s_.peek() != ',') s_.expected("'and', 'or', ',' or ')'");
      s_.advance();
      if (children.size() == kMaxArity) too_many_children(open);
      children.push_back(parse_or("after ','"));
    }
    s_.advance();
    --depth_;
    if (k > kMaxArity)
      Scanner::fail_at(start, "threshold " + std::string(k_text) + " is too large");
    return or_fail(PolicyNode::gate(k, std::move(children)), start);
  }

  // attribute op number
  PolicyNode parse_comparison(std::string_view name, std::size_t start) {
    Comparison c;
    c.name = std::string(name);
    const std::size_t op_position = s_.position();
    const char first = s_.peek();
    s_.advance();
    const bool equals_follows = s_.peek() == '=';
    std::string op_text(1, first);
    if (first == '=') {
      if (!equals_follows) {
        Scanner::fail_at(op_position, "'=' is not an operator in policies; equality is '=='");
      }
      c.op = CompareOp::kEqual;
    } else if (first == '<') {
      c.op = equals_follows ? CompareOp::kLessEqual : CompareOp::kLess;
    } else {
      c.op = equals_follows ? CompareOp::kGreaterEqual : CompareOp::kGreater;
    }
    if (equals_follows) {
      s_.advance();
      op_text += '=';
    }
    const Number n = s_.number("after '" + op_text + "'");
    c.value = n.value;
    c.width = n.width;
    return or_fail(PolicyNode::compare(std::move(c)), start);
  }

  // attribute in ( lo - hi ) | attribute in { lo - hi }
  PolicyNode parse_range(std::string_view name, std::size_t start) {
    s_.skip_space();
    const char open = s_.peek();
    if (open != '(' && open != '{') s_.expected("'(' or '{' after 'in'");
    s_.advance();
    const char close = open == '(' ? ')' : '}';
    const Number lo = s_.number("after '" + std::string(1, open) + "'", true);
    s_.skip_space();
    if (s_.peek() != '-') s_.expected("'-' between the bounds of the range");
    s_.advance();
    const Number hi = s_.number("after '-'");
    s_.skip_space();
    if (s_.peek() != close) s_.expected("'" + std::string(1, close) + "' to close the range");
    s_.advance();
    if (lo.width != hi.width) {
      Scanner::fail_at(lo.position, "the bounds have different widths (" +
                                        std::to_string(lo.width) + " and " +
                                        std::to_string(hi.width) + ")");
    }
    Comparison c;
    c.name = std::string(name);
    c.op = open == '(' ? CompareOp::kInOpen : CompareOp::kInClosed;
    c.value = lo.value;
    c.upper = hi.value;
    c.width = lo.width;
    return or_fail(PolicyNode::compare(std::move(c)), start);
  }

  void open_parenthesis(std::size_t position) {
    if (++depth_ > kMaxDepth) {
      Scanner::fail_at(position,
                       "parentheses nested more than " + std::to_string(kMaxDepth) + " deep");
    }
    s_.advance();
  }

  [[noreturn]] static void too_many_children(std::size_t position) {
    Scanner::fail_at(position, "a gate with more than " + std::to_string(kMaxArity) + " children");
  }

  Scanner s_;
  std::size_t depth_ = 0;
};

std::string located(const ParseFailure& f) {
  return "position " + std::to_string(f.position + 1) + ": " + f.message;
}

}  // namespace

Result<AccessTree> parse_policy(std::string_view text) {
  if (text.size() > kMaxPolicyLength) {
    return fail("position " + std::to_string(kMaxPolicyLength + 1) + ": policy longer than " +
                std::to_string(kMaxPolicyLength) + " bytes");
  }
  try {
    PolicyParser parser(text);
    PolicyNode root = parser.parse();
    return AccessTree::from_root(std::move(root));
  } catch (const ParseFailure& f) {
    return fail(located(f));
  }
}

Result<AttributeSet> parse_attributes(std::string_view text) {
  if (text.size() > kMaxPolicyLength) {
    return fail("position " + std::to_string(kMaxPolicyLength + 1) +
                ": attribute list longer than " + std::to_string(kMaxPolicyLength) + " bytes");
  }
  try {
    Scanner s(text, "list");
    AttributeSet set;
    s.skip_space();
    if (s.at_end()) return set;
    bool first = true;
    for (;;) {
      s.skip_space();
      const std::size_t start = s.position();
      const std::string_view word = s.take_word();
      if (word.empty()) {
        s.expected(first ? std::string("an attribute") : std::string("an attribute after ','"));
      }
      s.skip_space();
      if (s.peek() == '=') {
        s.advance();
        if (s.peek() == '=') {
          Scanner::fail_at(s.position() - 1, "attribute lists assign with '=', not '=='");
        }
        const Number n = s.number("after '='");
        auto assigned = set.assign(word, n.value, n.width);
        if (!assigned) Scanner::fail_at(start, assigned.error().message);
      } else {
        auto added = set.add(word);
        if (!added) Scanner::fail_at(start, added.error().message);
      }
      first = false;
      s.skip_space();
      if (s.at_end()) break;
      if (s.peek() != ',') s.expected("',' or the end of the list");
      s.advance();
    }
    return set;
  } catch (const ParseFailure& f) {
    return fail(located(f));
  }
}

}  // namespace mchain::abe
