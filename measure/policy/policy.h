// Tripwire-style measurement policies: which paths inside a guest are measured, for which
// properties, under which rule name and severity (docs/policy.md has the language).
//
//   SEC_CONFIG = $(ReadOnly) -a;
//   /etc            -> $(SEC_CONFIG) (rulename = "config", severity = 100);
//   /etc/ssh        -> +pinugtsm+sha512 (recurse = 1);
//   /var/log        -> $(Growing) (rulename = logs, recurse = true);
//   !/etc/mtab;
//
// A parsed Policy is fully resolved (variables expanded, paths normalised) and has one
// canonical text; its SHA-256 identifies the policy in reports and packages.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "chain/error.h"
#include "chain/types.h"

namespace mchain::measure {

// Tripwire's property letters, in canonical order, then the two content hashes.
enum class Property : std::uint8_t {
  kPermissions,  // p: permission and mode bits
  kInode,        // i: inode number
  kLinks,        // n: link count
  kUid,          // u
  kGid,          // g
  kType,         // t: file type
  kSize,         // s
  kDevice,       // d: device of the filesystem holding the inode
  kRdev,         // r: device an inode points to (device files only)
  kBlocks,       // b: blocks allocated
  kMtime,        // m
  kCtime,        // c
  kAtime,        // a
  kGrowing,      // l: may grow; flagged only when it shrinks
  kSha256,       // "sha256": content hash
  kSha512,       // "sha512": content hash
};
inline constexpr std::size_t kPropertyCount = 16;

// A set of properties: a rule's mask, or what a collector could collect.
class PropertySet {
 public:
  constexpr PropertySet() = default;
  static PropertySet all();

  bool has(Property p) const { return (bits_ >> static_cast<unsigned>(p)) & 1u; }
  PropertySet& add(Property p);
  PropertySet& remove(Property p);
  PropertySet operator&(PropertySet o) const { return from_bits(bits_ & o.bits_); }
  PropertySet operator|(PropertySet o) const { return from_bits(bits_ | o.bits_); }
  PropertySet without(PropertySet o) const { return from_bits(bits_ & ~o.bits_); }
  bool empty() const { return bits_ == 0; }
  bool operator==(const PropertySet&) const = default;

  // Canonical text: "+" and the letters present in canonical order, then "+sha256" and
  // "+sha512" when present; the empty set is "-". E.g. "+pinugtsdbm+sha256", "+sha512".
  std::string to_string() const;
  std::uint16_t bits() const { return bits_; }
  static PropertySet from_bits(std::uint16_t bits);

 private:
  std::uint16_t bits_ = 0;
};

// One-letter name ('p' … 'l') or "sha256"/"sha512", and a human name for reports
// ("permissions", "inode", …).
std::string_view property_code(Property p);
std::string_view property_name(Property p);

// Where in the policy source something was written, for error messages.
struct SourceLocation {
  std::uint32_t line = 0;    // 1-based
  std::uint32_t column = 0;  // 1-based, in bytes
};

struct Rule {
  std::string path;  // absolute, normalised: no "//", ".", "..", or trailing "/"
  PropertySet mask;
  std::string name;            // rulename; defaults to the path
  std::uint32_t severity = 0;  // 0 … 1000000
  // How deep below `path` the rule reaches: 0 = the path itself only (recurse=false),
  // N = N levels, kUnlimited = the whole tree (recurse=true, the default).
  static constexpr std::int32_t kUnlimited = -1;
  std::int32_t depth = kUnlimited;
  SourceLocation where;
};

class Policy {
 public:
  // Rules sorted by path (unique); stop points sorted (unique).
  const std::vector<Rule>& rules() const { return rules_; }
  const std::vector<std::string>& stop_points() const { return stop_points_; }

  // The rule that governs `path` (absolute, normalised): the rule with the longest root
  // that is `path` or one of its ancestors, provided `path` lies within that rule's depth
  // and not at or under a stop point. nullptr when nothing governs it. A more specific
  // rule thus cuts its subtree out of a less specific one, as in Tripwire.
  const Rule* governing_rule(std::string_view path) const;
  bool is_stopped(std::string_view path) const;

  // One line per rule and stop point, sorted, variables expanded, every attribute
  // explicit; stable across releases (it is hashed into packages). Parsing the canonical
  // text gives the same policy back. Rules by path (byte order), then stop points:
  //   PATH -> MASK (rulename = "NAME", severity = N, recurse = true|N);
  //   !PATH;
  // PATH is quoted (with \" \\ \$ escapes) when it has a byte outside [A-Za-z0-9._/+-];
  // NAME always is. MASK is PropertySet::to_string(). Each line ends with "\n".
  std::string canonical_text() const;
  Hash256 hash() const;  // SHA-256 of canonical_text()

  // Builds a policy from already validated parts (tests, the agent's default policy);
  // sorts them. An empty rule name becomes the path. Fails on duplicate rule paths or stop
  // points, a stop point that is a rule path, invalid paths or names, a severity above
  // 1000000 or a depth below -1.
  static Result<Policy> from_parts(std::vector<Rule> rules, std::vector<std::string> stops);

 private:
  std::vector<Rule> rules_;
  std::vector<std::string> stop_points_;
};

// Parses policy text. `file_name` only appears in error messages, which read
// "FILE:LINE:COLUMN: expected …, found …".
Result<Policy> parse_policy(std::string_view text, std::string_view file_name = "<policy>");
// Reads and parses a policy file (at most 1 MiB).
Result<Policy> load_policy(const std::filesystem::path& file);

}  // namespace mchain::measure
