// The policy parser: a scanner-less recursive descent over a character cursor that expands
// "$(NAME)" as it reads, so that a variable substitutes textually wherever it appears (paths,
// masks, attribute values, quoted strings) and anything read from an expansion is reported at
// the "$(" that produced it. Errors are thrown inside this file and returned as Results.

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "measure/policy/internal.h"
#include "measure/policy/policy.h"

namespace mchain::measure {

namespace {

using detail::kMaxPolicyBytes;

constexpr int kEnd = -1;
// Nested attribute blocks recurse; real policies nest two or three deep.
constexpr int kMaxBlockDepth = 64;
// Variables may use variables, so expansions could grow exponentially ("billion laughs"); this
// bounds every byte produced by expansion over the whole parse.
constexpr std::size_t kMaxExpansionBytes = std::size_t{16} << 20;

constexpr std::string_view kLetters = "pinugtsdrbmcal";

struct ParseError {
  std::string message;
};

std::string at_text(SourceLocation at) {
  return std::to_string(at.line) + ":" + std::to_string(at.column);
}

bool is_space(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(int c) { return c >= '0' && c <= '9'; }
bool is_ident_start(int c) { return is_alpha(c) || c == '_'; }
bool is_ident(int c) { return is_ident_start(c) || is_digit(c); }
// Unquoted attribute values and rule names.
bool is_word(int c) {
  return is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '/' || c == '+' || c == '-';
}
// '#' is not among them: "/a#b" is a path, as in a shell word.
bool ends_bare_path(int c) {
  return c == kEnd || is_space(c) || c == ';' || c == '(' || c == ')' || c == '{' || c == '}';
}

// How a character appears in "found …".
std::string describe(int c) {
  if (c == kEnd) return "end of input";
  if (c == '\n') return "end of line";
  if (c == '\'') return "\"'\"";
  if (c > 0x20 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
  if (c == ' ') return "a space";
  if (c == '\t') return "a tab";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("byte 0x") + kHex[(c >> 4) & 0xf] + kHex[c & 0xf];
}

std::string describe_word(std::string_view word) { return "'" + std::string(word) + "'"; }

struct Variable {
  std::string value;                      // fully expanded
  std::optional<SourceLocation> defined;  // empty for the predefined ones
};

// The predefined masks, with Tripwire's meanings; sha256/sha512 stand in for its CRC32, MD5,
// SHA and Haval.
std::map<std::string, Variable, std::less<>> predefined_variables() {
  std::map<std::string, Variable, std::less<>> vars;
  vars["ReadOnly"] = {"+pinugtsdbm+sha256-rlac", std::nullopt};
  vars["Dynamic"] = {"+pinugtd-srlbamc-sha256-sha512", std::nullopt};
  vars["Growing"] = {"+pinugtdl-srbamc-sha256-sha512", std::nullopt};
  vars["Device"] = {"+pugsdr-intlbamc-sha256-sha512", std::nullopt};
  vars["IgnoreAll"] = {"-pinugtsdrlbamc-sha256-sha512", std::nullopt};
  vars["IgnoreNone"] = {"+pinugtsdrbamc+sha256+sha512-l", std::nullopt};
  return vars;
}

// Reads the policy text one byte at a time, substituting "$(NAME)" met in the source text.
// Expanded text is not scanned for further "$(" (values are stored already expanded), so at
// most one expansion is active. Call peek() (or peek_raw()) before advance() or where().
class Cursor {
 public:
  Cursor(std::string_view text, std::string_view file,
         std::map<std::string, Variable, std::less<>>& vars)
      : text_(text), file_(file), vars_(vars) {}

  [[noreturn]] void error(SourceLocation at, const std::string& message) const {
    throw ParseError{std::string(file_) + ":" + at_text(at) + ": " + message};
  }

  int peek() {
    for (;;) {
      if (int c = peek_expansion(); c != kEnd) return c;
      if (pos_ >= text_.size()) return kEnd;
      if (text_[pos_] == '$' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '(') {
        expand();
        continue;
      }
      return static_cast<unsigned char>(text_[pos_]);
    }
  }

  // The next byte without expanding a "$(" in the source text (after a backslash, in comments).
  int peek_raw() {
    if (int c = peek_expansion(); c != kEnd) return c;
    return pos_ < text_.size() ? static_cast<unsigned char>(text_[pos_]) : kEnd;
  }

  void advance() {
    if (in_expansion_) {
      ++expansion_pos_;
      return;
    }
    if (pos_ >= text_.size()) return;
    if (text_[pos_] == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    ++pos_;
  }

  bool from_expansion() const { return in_expansion_; }

  SourceLocation where() const {
    return in_expansion_ ? expansion_at_ : SourceLocation{line_, column_};
  }

  void skip_space() {
    for (;;) {
      int c = peek();
      if (is_space(c)) {
        advance();
      } else if (c == '#' && !in_expansion_) {
        while ((c = peek_raw()) != kEnd && c != '\n') advance();
      } else {
        return;
      }
    }
  }

 private:
  int peek_expansion() {
    if (!in_expansion_) return kEnd;
    if (expansion_pos_ < expansion_.size()) {
      return static_cast<unsigned char>(expansion_[expansion_pos_]);
    }
    in_expansion_ = false;
    return kEnd;
  }

  void expand() {
    SourceLocation at{line_, column_};
    advance();  // '$'
    advance();  // '('
    std::size_t start = pos_;
    while (pos_ < text_.size() && is_ident(static_cast<unsigned char>(text_[pos_]))) advance();
    std::string_view name = text_.substr(start, pos_ - start);
    int next = pos_ < text_.size() ? static_cast<unsigned char>(text_[pos_]) : kEnd;
    if (name.empty() || !is_ident_start(static_cast<unsigned char>(name.front()))) {
      error(SourceLocation{at.line, at.column + 2},
            "expected a variable name after '$(', found " +
                (name.empty() ? describe(next) : describe_word(name)));
    }
    if (next != ')') {
      error(SourceLocation{line_, column_},
            "expected ')' after '$(" + std::string(name) + "', found " + describe(next));
    }
    advance();  // ')'
    auto it = vars_.find(name);
    if (it == vars_.end()) error(at, "undefined variable '" + std::string(name) + "'");
    expanded_bytes_ += it->second.value.size();
    if (expanded_bytes_ > kMaxExpansionBytes) {
      error(at, "variable expansions exceed 16 MiB in total");
    }
    // std::map never moves its values, and no variable changes once defined.
    expansion_ = it->second.value;
    expansion_pos_ = 0;
    expansion_at_ = at;
    in_expansion_ = true;
  }

  std::string_view text_;
  std::string_view file_;
  std::map<std::string, Variable, std::less<>>& vars_;
  std::size_t pos_ = 0;
  std::uint32_t line_ = 1;
  std::uint32_t column_ = 1;

  std::string_view expansion_;
  std::size_t expansion_pos_ = 0;
  SourceLocation expansion_at_;
  bool in_expansion_ = false;
  std::size_t expanded_bytes_ = 0;
};

// Attributes given in a rule's or block's list; unset ones fall back to the enclosing block.
struct Attributes {
  std::optional<std::string> name;
  std::optional<std::uint32_t> severity;
  std::optional<std::int32_t> depth;

  Attributes over(const Attributes& outer) const {
    return {name ? name : outer.name, severity ? severity : outer.severity,
            depth ? depth : outer.depth};
  }
};

class Parser {
 public:
  Parser(std::string_view text, std::string_view file)
      : vars_(predefined_variables()), in_(text, file, vars_) {}

  Result<Policy> parse() {
    statements(Attributes{}, std::nullopt, 0);
    auto policy = Policy::from_parts(std::move(rules_), std::move(stops_));
    // Unreachable: the parser has already checked everything from_parts checks.
    if (!policy) return fail("internal: " + policy.error().message);
    return policy;
  }

 private:
  [[noreturn]] void error(SourceLocation at, const std::string& message) const {
    in_.error(at, message);
  }

  int peek() { return in_.peek(); }
  SourceLocation where() {
    in_.peek();
    return in_.where();
  }

  void expect(int want, const std::string& context) {
    in_.skip_space();
    int c = peek();
    if (c != want) {
      error(in_.where(), "expected " + describe(want) + " " + context + ", found " + describe(c));
    }
    in_.advance();
  }

  // Statements up to the end of input, or up to the '}' closing the block opened at `open`.
  void statements(const Attributes& defaults, std::optional<SourceLocation> open, int depth) {
    for (;;) {
      in_.skip_space();
      int c = peek();
      SourceLocation at = in_.where();
      if (c == kEnd) {
        if (open) {
          error(at, "expected '}' to close the block opened at " + at_text(*open) +
                        ", found end of input");
        }
        return;
      }
      if (c == '}' && open) {
        in_.advance();
        return;
      }
      if (c == '/' || c == '"') {
        rule(defaults);
      } else if (c == '!') {
        stop_point();
      } else if (c == '(') {
        block(defaults, depth);
      } else if (is_ident_start(c)) {
        variable();
      } else {
        error(at,
              "expected a rule, a stop point, a variable definition or an attribute block, "
              "found " +
                  describe(c));
      }
    }
  }

  void block(const Attributes& defaults, int depth) {
    SourceLocation at = in_.where();
    if (depth >= kMaxBlockDepth) error(at, "attribute blocks nested more than 64 deep");
    Attributes attrs = attribute_list();
    in_.skip_space();
    SourceLocation open = where();
    expect('{', "after the attribute list of a block");
    statements(attrs.over(defaults), open, depth + 1);
  }

  void rule(const Attributes& defaults) {
    SourceLocation at = where();
    std::string path = read_path();
    in_.skip_space();
    if (peek() != '-') {
      error(in_.where(), "expected '->' after the path, found " + describe(peek()));
    }
    in_.advance();
    if (peek() != '>') {
      error(in_.where(), "expected '->' after the path, found '-' followed by " + describe(peek()));
    }
    in_.advance();
    PropertySet mask = read_mask();
    in_.skip_space();
    Attributes own;
    if (peek() == '(') {
      own = attribute_list();
      expect(';', "at the end of the rule");
    } else if (peek() == ';') {
      in_.advance();
    } else {
      error(in_.where(), "expected '(' or ';' after the property mask, found " + describe(peek()));
    }
    if (rules_.size() >= detail::kMaxRules) error(at, "too many rules (at most 100000)");
    if (auto [it, added] = rule_at_.emplace(path, at); !added) {
      error(at, "duplicate rule for " + detail::quote(path) + ", first at " + at_text(it->second));
    }
    if (auto it = stop_at_.find(path); it != stop_at_.end()) {
      error(at, "rule path " + detail::quote(path) + " is also a stop point (at " +
                    at_text(it->second) + ")");
    }
    Attributes attrs = own.over(defaults);
    Rule r;
    r.name = attrs.name.value_or(path);
    r.path = std::move(path);
    r.mask = mask;
    r.severity = attrs.severity.value_or(0);
    r.depth = attrs.depth.value_or(Rule::kUnlimited);
    r.where = at;
    rules_.push_back(std::move(r));
  }

  void stop_point() {
    SourceLocation at = in_.where();
    in_.advance();  // '!'
    std::string path = read_path();
    expect(';', "after the stop point");
    if (stops_.size() >= detail::kMaxStopPoints) {
      error(at, "too many stop points (at most 100000)");
    }
    if (auto [it, added] = stop_at_.emplace(path, at); !added) {
      error(at,
            "duplicate stop point " + detail::quote(path) + ", first at " + at_text(it->second));
    }
    if (auto it = rule_at_.find(path); it != rule_at_.end()) {
      error(at, "stop point " + detail::quote(path) + " is also a rule path (rule at " +
                    at_text(it->second) + ")");
    }
    stops_.push_back(std::move(path));
  }

  // NAME = raw text up to ';'. The value is stored expanded; a '#' at its start or after
  // white space begins a comment (elsewhere it may be part of a bare path), and quoted
  // strings may contain ';' and '#'.
  void variable() {
    SourceLocation at = in_.where();
    std::string name = read_identifier();
    if (auto it = vars_.find(name); it != vars_.end()) {
      if (!it->second.defined) {
        error(at, "cannot redefine the predefined variable '" + name + "'");
      }
      error(at, "variable '" + name + "' is already defined at " + at_text(*it->second.defined));
    }
    expect('=', "after '" + name + "' (a variable definition)");
    std::string value;
    bool quoted = false;
    bool after_space = true;
    SourceLocation quote_at;
    for (;;) {
      int c = peek();
      if (in_.from_expansion()) {
        value += static_cast<char>(c);
        after_space = is_space(c);
        in_.advance();
        continue;
      }
      if (quoted) {
        if (c == kEnd || c == '\n') {
          error(quote_at, "unterminated string: expected '\"' before " + describe(c));
        }
        if (c == '"') quoted = false;
        value += static_cast<char>(c);
        in_.advance();
        if (c == '\\') {
          // Keep the escape for when the value is read; "\$(" must stay unexpanded.
          int e = in_.peek_raw();
          if (e == kEnd || e == '\n') {
            error(quote_at, "unterminated string: expected '\"' before " + describe(e));
          }
          value += static_cast<char>(e);
          in_.advance();
        }
        continue;
      }
      if (c == ';') {
        in_.advance();
        break;
      }
      if (c == kEnd) {
        error(in_.where(),
              "expected ';' to end the definition of '" + name + "', found end of input");
      }
      if (c == '#' && after_space) {
        while ((c = in_.peek_raw()) != kEnd && c != '\n') in_.advance();
        continue;
      }
      if (c == '"') {
        quoted = true;
        quote_at = in_.where();
      }
      value += static_cast<char>(c);
      after_space = is_space(c);
      in_.advance();
    }
    std::size_t first = 0, last = value.size();
    while (first < last && is_space(static_cast<unsigned char>(value[first]))) ++first;
    while (last > first && is_space(static_cast<unsigned char>(value[last - 1]))) --last;
    vars_[name] = Variable{value.substr(first, last - first), at};
  }

  std::string read_identifier() {
    std::string name;
    while (is_ident(peek())) {
      name += static_cast<char>(peek());
      in_.advance();
    }
    return name;
  }

  // A bare path (from '/' up to white space or one of ";(){}") or a quoted one,
  // checked to be absolute and normalised.
  std::string read_path() {
    in_.skip_space();
    int c = peek();
    SourceLocation at = in_.where();
    std::string path;
    if (c == '"') {
      path = read_quoted();
    } else if (c == '/') {
      while (!ends_bare_path(c = peek())) {
        path += static_cast<char>(c);
        in_.advance();
      }
    } else {
      error(at, "expected a path (starting with '/', or in double quotes), found " + describe(c));
    }
    if (auto problem = detail::path_problem(path); !problem.empty()) {
      error(at, "invalid path " + detail::quote(path) + ": " + problem);
    }
    return path;
  }

  // A double-quoted string with \" \\ and \$ escapes; the cursor is at the opening quote.
  std::string read_quoted() {
    SourceLocation open = in_.where();
    in_.advance();
    std::string text;
    for (;;) {
      int c = peek();
      if (c == kEnd || c == '\n') {
        error(open, "unterminated string: expected '\"' before " + describe(c));
      }
      if (c == '"') {
        in_.advance();
        return text;
      }
      if (c == '\\') {
        SourceLocation escape_at = in_.where();
        in_.advance();
        int e = in_.peek_raw();
        if (e != '"' && e != '\\' && e != '$') {
          error(escape_at,
                "expected '\\\"', '\\\\' or '\\$' after a backslash, found " + describe(e));
        }
        c = e;
      }
      text += static_cast<char>(c);
      in_.advance();
    }
  }

  // Terms applied left to right to the empty set: a sign ('+' adds, '-' removes; '+' before
  // the first term) stays in force until the next sign. A lone '-' is the empty mask.
  PropertySet read_mask() {
    in_.skip_space();
    SourceLocation start = where();
    PropertySet set;
    bool add = true;
    char pending_sign = 0;  // a sign not yet followed by a term, or 0
    bool any_term = false;
    for (;;) {
      in_.skip_space();
      int c = peek();
      SourceLocation at = in_.where();
      if (c == '+' || c == '-') {
        if (pending_sign != 0) {
          error(at, std::string("expected a property after '") + pending_sign + "', found " +
                        describe(c));
        }
        pending_sign = static_cast<char>(c);
        add = c == '+';
        in_.advance();
        continue;
      }
      if (!is_alpha(c) && !is_digit(c)) {
        if (pending_sign != 0 && (any_term || pending_sign == '+')) {
          error(at, std::string("expected a property after '") + pending_sign + "', found " +
                        describe(c));
        }
        if (pending_sign == 0 && !any_term) {
          error(start,
                "expected a property mask (e.g. +pinug or $(ReadOnly)), found " + describe(c));
        }
        return set;
      }
      // A run of letters and digits, each byte with where it came from.
      std::string word;
      std::vector<SourceLocation> where_of;
      while (is_alpha(c = peek()) || is_digit(c)) {
        word += static_cast<char>(c);
        where_of.push_back(in_.where());
        in_.advance();
      }
      for (std::size_t i = 0; i < word.size();) {
        Property p;
        if (word.compare(i, 3, "sha") == 0 && i + 3 < word.size() && is_digit(word[i + 3])) {
          std::size_t end = i + 3;
          while (end < word.size() && is_digit(word[end])) ++end;
          std::string_view hash = std::string_view(word).substr(i, end - i);
          if (hash == "sha256") {
            p = Property::kSha256;
          } else if (hash == "sha512") {
            p = Property::kSha512;
          } else {
            error(where_of[i], "expected sha256 or sha512, found " + describe_word(hash));
          }
          i = end;
        } else {
          std::size_t index = kLetters.find(word[i]);
          if (index == std::string_view::npos) {
            error(where_of[i], "expected a property letter (one of " + std::string(kLetters) +
                                   ") or sha256 or sha512, found " + describe(word[i]));
          }
          p = static_cast<Property>(index);
          ++i;
        }
        if (add) {
          set.add(p);
        } else {
          set.remove(p);
        }
      }
      any_term = true;
      pending_sign = 0;
    }
  }

  // '(' NAME '=' VALUE {',' NAME '=' VALUE} ')'; the cursor is at '('.
  Attributes attribute_list() {
    in_.advance();
    Attributes attrs;
    std::map<std::string, SourceLocation, std::less<>> seen;
    for (;;) {
      in_.skip_space();
      SourceLocation at = where();
      std::string name = read_identifier();
      if (name.empty()) {
        error(at, "expected an attribute name (rulename, severity or recurse), found " +
                      describe(peek()));
      }
      if (name != "rulename" && name != "severity" && name != "recurse") {
        error(at, "unknown attribute " + describe_word(name) +
                      ": expected rulename, severity or recurse");
      }
      if (auto [it, added] = seen.emplace(name, at); !added) {
        error(at, "duplicate attribute '" + name + "', first at " + at_text(it->second));
      }
      expect('=', "after '" + name + "'");
      in_.skip_space();
      SourceLocation value_at = where();
      if (name == "rulename") {
        bool quoted = peek() == '"';
        std::string value = quoted ? read_quoted() : read_word();
        if (value.empty() && !quoted) {
          error(value_at,
                "expected a rule name (a word or a quoted string), found " + describe(peek()));
        }
        if (auto problem = detail::name_problem(value); !problem.empty()) {
          error(value_at, "invalid rule name " + detail::quote(value) + ": " + problem);
        }
        attrs.name = std::move(value);
      } else if (name == "severity") {
        std::string value = read_word();
        auto severity = parse_number(value, detail::kMaxSeverity);
        if (!severity) {
          error(value_at, "expected a severity from 0 to 1000000, found " +
                              (value.empty() ? describe(peek()) : describe_word(value)));
        }
        attrs.severity = static_cast<std::uint32_t>(*severity);
      } else {
        std::string value = read_word();
        std::optional<std::int64_t> depth;
        if (value == "true" || value == "-1") {
          depth = Rule::kUnlimited;
        } else if (value == "false") {
          depth = 0;
        } else {
          depth = parse_number(value, std::numeric_limits<std::int32_t>::max());
        }
        if (!depth) {
          error(value_at, "expected true, false or a depth of 0 or more for recurse, found " +
                              (value.empty() ? describe(peek()) : describe_word(value)));
        }
        attrs.depth = static_cast<std::int32_t>(*depth);
      }
      in_.skip_space();
      int c = peek();
      if (c == ')') {
        in_.advance();
        return attrs;
      }
      if (c != ',') {
        error(in_.where(), "expected ',' or ')' in the attribute list, found " + describe(c));
      }
      in_.advance();
    }
  }

  std::string read_word() {
    std::string word;
    while (is_word(peek())) {
      word += static_cast<char>(peek());
      in_.advance();
    }
    return word;
  }

  static std::optional<std::int64_t> parse_number(std::string_view text, std::int64_t max) {
    if (text.empty() || text.size() > 12) return std::nullopt;
    std::int64_t n = 0;
    for (char c : text) {
      if (!is_digit(static_cast<unsigned char>(c))) return std::nullopt;
      n = n * 10 + (c - '0');
    }
    if (n > max) return std::nullopt;
    return n;
  }

  std::map<std::string, Variable, std::less<>> vars_;
  Cursor in_;
  std::vector<Rule> rules_;
  std::vector<std::string> stops_;
  std::unordered_map<std::string, SourceLocation> rule_at_;
  std::unordered_map<std::string, SourceLocation> stop_at_;
};

}  // namespace

Result<Policy> parse_policy(std::string_view text, std::string_view file_name) {
  if (text.size() > kMaxPolicyBytes) {
    return fail(std::string(file_name) + ": policy is " + std::to_string(text.size()) +
                " bytes; the limit is 1 MiB");
  }
  try {
    return Parser(text, file_name).parse();
  } catch (const ParseError& e) {
    return fail(e.message);
  }
}

Result<Policy> load_policy(const std::filesystem::path& file) {
  errno = 0;
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail("cannot open policy " + file.string() + ": " + std::strerror(errno));
  // One byte beyond the limit tells a file at the limit from a larger one.
  std::string text(kMaxPolicyBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return fail("cannot read policy " + file.string() + ": " + std::strerror(errno));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxPolicyBytes) {
    return fail(file.string() + ": policy is larger than the limit of 1 MiB");
  }
  return parse_policy(text, file.string());
}

}  // namespace mchain::measure
