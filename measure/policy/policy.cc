#include "measure/policy/policy.h"

#include <algorithm>
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "chain/crypto/hash.h"
#include "measure/policy/internal.h"

namespace mchain::measure {

namespace {

constexpr std::array<std::string_view, kPropertyCount> kCodes = {
    "p", "i", "n", "u", "g", "t", "s", "d", "r", "b", "m", "c", "a", "l", "sha256", "sha512"};
constexpr std::array<std::string_view, kPropertyCount> kNames = {
    "permissions", "inode",  "links", "uid",   "gid",   "type",    "size",   "device",
    "rdev",        "blocks", "mtime", "ctime", "atime", "growing", "sha256", "sha512"};
constexpr std::size_t kLetterCount = 14;  // the one-letter properties come first

bool is_control(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

// Characters that never need quoting in a canonical path.
bool is_plain(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '/' || c == '+' || c == '-';
}

std::string path_text(std::string_view path) {
  if (std::all_of(path.begin(), path.end(), is_plain)) return std::string(path);
  return detail::quote(path);
}

Error invalid(std::string_view what, std::string_view value, std::string_view problem) {
  return Error{std::string(what) + " " + detail::quote(value) + ": " + std::string(problem)};
}

}  // namespace

namespace detail {

std::string path_problem(std::string_view path) {
  if (path.empty()) return "a path must not be empty";
  if (path.front() != '/') return "a path must be absolute (start with '/')";
  if (path.size() > kMaxPathBytes) return "a path must not be longer than 4096 bytes";
  if (std::any_of(path.begin(), path.end(), is_control)) {
    return "a path must not contain control characters";
  }
  if (path == "/") return {};
  if (path.back() == '/') return "a path must not end with '/'";
  // Every component between two slashes: the first slash is the root.
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view component = path.substr(start, end - start);
    if (component.empty()) return "a path must not contain '//'";
    if (component == ".") return "a path must not contain '.' components";
    if (component == "..") return "a path must not contain '..' components";
    start = end + 1;
  }
  return {};
}

std::string name_problem(std::string_view name) {
  if (name.empty()) return "a rule name must not be empty";
  if (name.size() > kMaxNameBytes) return "a rule name must not be longer than 4096 bytes";
  if (std::any_of(name.begin(), name.end(), is_control)) {
    return "a rule name must not contain control characters";
  }
  return {};
}

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    // '$' too: inside a quoted string "$(" would start a variable.
    if (c == '"' || c == '\\' || c == '$') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace detail

std::string_view property_code(Property p) { return kCodes[static_cast<std::size_t>(p)]; }
std::string_view property_name(Property p) { return kNames[static_cast<std::size_t>(p)]; }

PropertySet PropertySet::all() { return from_bits(0xffff); }

PropertySet PropertySet::from_bits(std::uint16_t bits) {
  PropertySet s;
  s.bits_ = bits;  // kPropertyCount is 16: every bit names a property
  return s;
}

PropertySet& PropertySet::add(Property p) {
  bits_ = static_cast<std::uint16_t>(bits_ | 1u << static_cast<unsigned>(p));
  return *this;
}

PropertySet& PropertySet::remove(Property p) {
  bits_ = static_cast<std::uint16_t>(bits_ & ~(1u << static_cast<unsigned>(p)));
  return *this;
}

std::string PropertySet::to_string() const {
  if (empty()) return "-";
  std::string letters;
  for (std::size_t i = 0; i < kLetterCount; ++i) {
    if (has(static_cast<Property>(i))) letters += kCodes[i];
  }
  std::string out = letters.empty() ? "" : "+" + letters;
  if (has(Property::kSha256)) out += "+sha256";
  if (has(Property::kSha512)) out += "+sha512";
  return out;
}

const Rule* Policy::governing_rule(std::string_view path) const {
  if (path.empty() || path.front() != '/') return nullptr;
  // Walk from `path` up to "/": the first rule met has the longest root, and a stop point
  // anywhere on the way, below or above that root, excludes `path`.
  const Rule* found = nullptr;
  std::int64_t found_below = 0;
  std::string_view at = path;
  for (std::int64_t below = 0;; ++below) {
    if (!stop_points_.empty() &&
        std::binary_search(stop_points_.begin(), stop_points_.end(), at, std::less<>())) {
      return nullptr;
    }
    if (found == nullptr) {
      auto it = std::lower_bound(
          rules_.begin(), rules_.end(), at,
          [](const Rule& r, std::string_view p) { return std::string_view(r.path) < p; });
      if (it != rules_.end() && it->path == at) {
        found = &*it;
        found_below = below;
        if (stop_points_.empty()) break;
      }
    }
    if (at.size() == 1) break;
    std::size_t slash = at.rfind('/');
    at = at.substr(0, slash == 0 ? 1 : slash);
  }
  if (found == nullptr) return nullptr;
  if (found->depth != Rule::kUnlimited && found_below > found->depth) return nullptr;
  return found;
}

bool Policy::is_stopped(std::string_view path) const {
  if (stop_points_.empty() || path.empty() || path.front() != '/') return false;
  std::string_view at = path;
  for (;;) {
    if (std::binary_search(stop_points_.begin(), stop_points_.end(), at, std::less<>())) {
      return true;
    }
    if (at.size() == 1) return false;
    std::size_t slash = at.rfind('/');
    at = at.substr(0, slash == 0 ? 1 : slash);
  }
}

std::string Policy::canonical_text() const {
  std::string out;
  for (const Rule& r : rules_) {
    out += path_text(r.path);
    out += " -> ";
    out += r.mask.to_string();
    out += " (rulename = ";
    out += detail::quote(r.name);
    out += ", severity = ";
    out += std::to_string(r.severity);
    out += ", recurse = ";
    out += r.depth == Rule::kUnlimited ? "true" : std::to_string(r.depth);
    out += ");\n";
  }
  for (const std::string& stop : stop_points_) {
    out += '!';
    out += path_text(stop);
    out += ";\n";
  }
  return out;
}

Hash256 Policy::hash() const { return crypto::sha256(as_bytes(canonical_text())); }

Result<Policy> Policy::from_parts(std::vector<Rule> rules, std::vector<std::string> stops) {
  if (rules.size() > detail::kMaxRules) {
    return fail("too many rules: " + std::to_string(rules.size()) + " (at most 100000)");
  }
  if (stops.size() > detail::kMaxStopPoints) {
    return fail("too many stop points: " + std::to_string(stops.size()) + " (at most 100000)");
  }
  for (Rule& r : rules) {
    if (auto problem = detail::path_problem(r.path); !problem.empty()) {
      return std::unexpected(invalid("rule path", r.path, problem));
    }
    if (r.name.empty()) r.name = r.path;
    if (auto problem = detail::name_problem(r.name); !problem.empty()) {
      return std::unexpected(invalid("rule name", r.name, problem));
    }
    if (r.severity > detail::kMaxSeverity) {
      return fail("rule " + detail::quote(r.path) + ": severity " + std::to_string(r.severity) +
                  " is above 1000000");
    }
    if (r.depth < Rule::kUnlimited) {
      return fail("rule " + detail::quote(r.path) + ": depth " + std::to_string(r.depth) +
                  " is below -1");
    }
  }
  for (const std::string& s : stops) {
    if (auto problem = detail::path_problem(s); !problem.empty()) {
      return std::unexpected(invalid("stop point", s, problem));
    }
  }
  std::sort(rules.begin(), rules.end(),
            [](const Rule& a, const Rule& b) { return a.path < b.path; });
  std::sort(stops.begin(), stops.end());
  for (std::size_t i = 1; i < rules.size(); ++i) {
    if (rules[i].path == rules[i - 1].path) {
      return fail("duplicate rule for " + detail::quote(rules[i].path));
    }
  }
  for (std::size_t i = 1; i < stops.size(); ++i) {
    if (stops[i] == stops[i - 1]) return fail("duplicate stop point " + detail::quote(stops[i]));
  }
  for (const std::string& s : stops) {
    auto it = std::lower_bound(rules.begin(), rules.end(), s,
                               [](const Rule& r, const std::string& p) { return r.path < p; });
    if (it != rules.end() && it->path == s) {
      return fail("stop point " + detail::quote(s) + " is also a rule path");
    }
  }
  Policy policy;
  policy.rules_ = std::move(rules);
  policy.stop_points_ = std::move(stops);
  return policy;
}

}  // namespace mchain::measure
