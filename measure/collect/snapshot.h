// What a collector saw of a guest's files: one FileRecord per measured path. A baseline is
// a stored Snapshot; a report compares two.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "chain/error.h"
#include "chain/types.h"
#include "measure/policy/policy.h"

namespace mchain::measure {

enum class FileType : std::uint8_t {
  kUnknown,  // not collected
  kRegular,
  kDirectory,
  kSymlink,
  kCharDevice,
  kBlockDevice,
  kFifo,
  kSocket,
};
std::string_view file_type_name(FileType t);  // "regular file", "directory", …

// One path's properties. Only the properties in `collected` hold data; the others are zero.
// For a symlink the content hashes cover the link's target text, as Tripwire's do, so a
// retarget shows up as a hash change; `link_target` keeps the text for reports.
struct FileRecord {
  PropertySet collected;
  FileType type = FileType::kUnknown;
  std::uint32_t mode = 0;  // st_mode & 07777
  std::uint64_t inode = 0;
  std::uint64_t links = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;
  std::uint64_t device = 0;  // st_dev
  std::uint32_t rdev_major = 0;
  std::uint32_t rdev_minor = 0;
  std::uint64_t blocks = 0;  // 512-byte blocks (st_blocks)
  std::int64_t mtime = 0;    // seconds since the epoch
  std::int64_t ctime = 0;
  std::int64_t atime = 0;
  Hash256 sha256{};
  Hash512 sha512{};
  std::string link_target;
  // Set when the path was listed but could not be measured (it vanished, could not be read).
  std::string error;

  bool operator==(const FileRecord&) const = default;
};

// Keeps only the properties in `keep` (zeroing the others) and sets `collected` to them.
void restrict_to(FileRecord& record, PropertySet keep);

// Property value as text for reports: mode in octal, times in ISO 8601, hashes in hex, …
std::string property_text(const FileRecord& record, Property p);

struct Snapshot {
  std::string vm;  // libvirt UUID or name, as given
  Hash256 policy_hash{};
  std::string collector;    // "bulk" or "content"
  PropertySet collectable;  // what the collector can know at all
  TimeUs started = 0;
  TimeUs finished = 0;
  // Keys are guest paths as raw bytes (a guest file name need not be UTF-8).
  std::map<std::string, FileRecord> files;
  // Run-level problems that did not stop the run (a rule root that could not be walked, a
  // guest tool's warnings). A run that could not finish returns an error instead.
  std::vector<std::string> warnings;
};

// Canonical CBOR, versioned; decode() refuses anything malformed with the field and offset.
Bytes encode_snapshot(const Snapshot& snapshot);
Result<Snapshot> decode_snapshot(ByteView bytes);

}  // namespace mchain::measure
