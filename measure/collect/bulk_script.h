// The guest side of the bulk collector: a POSIX-sh script generated for a list of trees, and
// a strict parser of what it prints. Kept apart from the collector so that both can be tested
// without a guest (the script runs under any /bin/sh with GNU coreutils or busybox).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chain/error.h"
#include "measure/collect/snapshot.h"

namespace mchain::measure::bulk {

// One `find` in the script: a tree, how deep to go, which hashes its regular files need, and
// the subtrees to skip (stop points, and the roots of more specific rules, which are walked
// by their own WalkRoot).
struct WalkRoot {
  std::string path;
  std::int32_t depth = -1;  // -1 = unlimited
  bool sha256 = false;
  bool sha512 = false;
  std::vector<std::string> prunes;
};

// The walk plan of a policy: one WalkRoot per rule that is not inside a stop point.
std::vector<WalkRoot> plan(const Policy& policy);

inline constexpr std::string_view kDefaultGuestPath = "/usr/sbin:/usr/bin:/sbin:/bin";

// A script that walks `roots` and prints at most `max_output` bytes on stdout, ending with
// the end marker when nothing was cut. Tool diagnostics go to stderr (at most 64 KiB). The
// guest's tools are looked up in `path` (PATH syntax).
std::string script(const std::vector<WalkRoot>& roots, std::size_t max_output,
                   std::string_view path = kDefaultGuestPath);

// A script that prints the entries directly below `root` (NUL-terminated), minus `prunes`:
// used to split a tree whose listing does not fit in one output.
std::string children_script(const WalkRoot& root, std::size_t max_output,
                            std::string_view path = kDefaultGuestPath);

// What one root's walk produced.
struct RawEntry {
  std::string path;
  bool stat_ok = false;  // false: listed by find, gone by the time stat ran
  FileRecord record;     // every stat field filled (collected = all stat properties)
  bool has_sha256 = false;
  bool has_sha512 = false;
};
struct RootOutput {
  std::vector<RawEntry> entries;
  int find_status = 0;  // find's exit status: non-zero when part of the tree failed
};
struct ParsedOutput {
  std::vector<RootOutput> roots;  // one per WalkRoot, in order
  bool complete = false;          // the end marker arrived: nothing was cut
};

// Parses the script's stdout for `roots`. Output that stops early (cut at the cap) gives
// complete = false; anything else out of shape is an error naming the byte offset.
Result<ParsedOutput> parse(const std::vector<WalkRoot>& roots, std::string_view output);

// Parses children_script's stdout; nullopt when it was cut.
Result<std::optional<std::vector<std::string>>> parse_children(const WalkRoot& root,
                                                               std::string_view output);

}  // namespace mchain::measure::bulk
