// Measuring a file on the host: Tripwire's properties of one path plus its SHA-256.
// The guest collectors (through qemu-guest-agent) produce the same record per path.
#pragma once

#include "chain/error.h"
#include "chain/types.h"

#include <filesystem>
#include <optional>
#include <string>

namespace mchain::measure {

struct FileMeasurement {
  std::string path;
  std::string type;  // "file", "directory", "symlink", "other"
  std::uint32_t mode = 0;  // permission bits
  std::uint64_t inode = 0;
  std::uint64_t links = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_s = 0;
  std::int64_t ctime_s = 0;
  std::optional<Hash256> sha256;  // regular files only
  std::string link_target;        // symlinks only: where the link points (not followed)
};

// lstat()s `path` (a symlink is measured itself, as Tripwire does, not followed) and
// hashes its content if it is a regular file.
Result<FileMeasurement> measure_file(const std::filesystem::path& path);

// One line per property, in the order above: the report body D_uv for the demo.
std::string to_report_text(const FileMeasurement& m);

}  // namespace mchain::measure
