#include "measure/collect/snapshot.h"

#include <cstdio>

#include "chain/encoding/cbor.h"

namespace mchain::measure {

namespace {

constexpr std::uint64_t kSnapshotVersion = 1;
constexpr std::size_t kMaxFiles = 10'000'000;
constexpr std::size_t kMaxPath = 4096;
constexpr std::size_t kMaxText = 1 << 16;
constexpr std::size_t kMaxWarnings = 100'000;

// Signed times travel as two's complement in an unsigned integer: the encoding has no
// negative integers, and a file may well be dated before 1970.
std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

constexpr std::size_t kRecordFields = 20;

void encode_record(cbor::Writer& w, const std::string& path, const FileRecord& r) {
  w.array(kRecordFields)
      .bytes(as_bytes(path))
      .uint(r.collected.bits())
      .uint(static_cast<std::uint64_t>(r.type))
      .uint(r.mode)
      .uint(r.inode)
      .uint(r.links)
      .uint(r.uid)
      .uint(r.gid)
      .uint(r.size)
      .uint(r.device)
      .uint(r.rdev_major)
      .uint(r.rdev_minor)
      .uint(r.blocks)
      .uint(zigzag(r.mtime))
      .uint(zigzag(r.ctime))
      .uint(zigzag(r.atime))
      .bytes(r.collected.has(Property::kSha256) ? ByteView(r.sha256) : ByteView())
      .bytes(r.collected.has(Property::kSha512) ? ByteView(r.sha512) : ByteView())
      .bytes(as_bytes(r.link_target))
      .bytes(as_bytes(r.error));
}

std::pair<std::string, FileRecord> decode_record(cbor::Reader& in) {
  in.array_exact("file", kRecordFields);
  std::pair<std::string, FileRecord> out;
  ByteView path = in.bytes("file.path", kMaxPath);
  out.first.assign(path.begin(), path.end());
  FileRecord& r = out.second;
  r.collected = PropertySet::from_bits(
      static_cast<std::uint16_t>(in.uint("file.collected", (1u << kPropertyCount) - 1)));
  r.type =
      static_cast<FileType>(in.uint("file.type", static_cast<std::uint64_t>(FileType::kSocket)));
  r.mode = static_cast<std::uint32_t>(in.uint("file.mode", 07777));
  r.inode = in.uint("file.inode");
  r.links = in.uint("file.links");
  r.uid = static_cast<std::uint32_t>(in.uint("file.uid", UINT32_MAX));
  r.gid = static_cast<std::uint32_t>(in.uint("file.gid", UINT32_MAX));
  r.size = in.uint("file.size");
  r.device = in.uint("file.device");
  r.rdev_major = static_cast<std::uint32_t>(in.uint("file.rdev_major", UINT32_MAX));
  r.rdev_minor = static_cast<std::uint32_t>(in.uint("file.rdev_minor", UINT32_MAX));
  r.blocks = in.uint("file.blocks");
  r.mtime = unzigzag(in.uint("file.mtime"));
  r.ctime = unzigzag(in.uint("file.ctime"));
  r.atime = unzigzag(in.uint("file.atime"));
  if (r.collected.has(Property::kSha256)) {
    r.sha256 = in.fixed_bytes<32>("file.sha256");
  } else {
    in.bytes_exact("file.sha256", 0);
  }
  if (r.collected.has(Property::kSha512)) {
    r.sha512 = in.fixed_bytes<64>("file.sha512");
  } else {
    in.bytes_exact("file.sha512", 0);
  }
  ByteView target = in.bytes("file.link_target", kMaxPath);
  r.link_target.assign(target.begin(), target.end());
  ByteView error = in.bytes("file.error", kMaxText);
  r.error.assign(error.begin(), error.end());
  return out;
}

std::string format_seconds(std::int64_t s) {
  if (s < 0) return std::to_string(s) + " s";
  std::string iso = format_time(static_cast<TimeUs>(s) * 1'000'000);
  // Whole seconds: drop the ".000000".
  if (auto dot = iso.find('.'); dot != std::string::npos) iso.erase(dot, 7);
  return iso;
}

}  // namespace

std::string_view file_type_name(FileType t) {
  switch (t) {
    case FileType::kUnknown: return "unknown";
    case FileType::kRegular: return "regular file";
    case FileType::kDirectory: return "directory";
    case FileType::kSymlink: return "symbolic link";
    case FileType::kCharDevice: return "character device";
    case FileType::kBlockDevice: return "block device";
    case FileType::kFifo: return "fifo";
    case FileType::kSocket: return "socket";
  }
  return "unknown";
}

void restrict_to(FileRecord& r, PropertySet keep) {
  FileRecord out;
  out.collected = keep;
  out.link_target = std::move(r.link_target);
  out.error = std::move(r.error);
  if (keep.has(Property::kType)) out.type = r.type;
  if (keep.has(Property::kPermissions)) out.mode = r.mode;
  if (keep.has(Property::kInode)) out.inode = r.inode;
  if (keep.has(Property::kLinks)) out.links = r.links;
  if (keep.has(Property::kUid)) out.uid = r.uid;
  if (keep.has(Property::kGid)) out.gid = r.gid;
  if (keep.has(Property::kSize) || keep.has(Property::kGrowing)) out.size = r.size;
  if (keep.has(Property::kDevice)) out.device = r.device;
  if (keep.has(Property::kRdev)) {
    out.rdev_major = r.rdev_major;
    out.rdev_minor = r.rdev_minor;
  }
  if (keep.has(Property::kBlocks)) out.blocks = r.blocks;
  if (keep.has(Property::kMtime)) out.mtime = r.mtime;
  if (keep.has(Property::kCtime)) out.ctime = r.ctime;
  if (keep.has(Property::kAtime)) out.atime = r.atime;
  if (keep.has(Property::kSha256)) out.sha256 = r.sha256;
  if (keep.has(Property::kSha512)) out.sha512 = r.sha512;
  r = std::move(out);
}

std::string property_text(const FileRecord& r, Property p) {
  char buf[32];
  switch (p) {
    case Property::kPermissions: std::snprintf(buf, sizeof buf, "%04o", r.mode); return buf;
    case Property::kInode: return std::to_string(r.inode);
    case Property::kLinks: return std::to_string(r.links);
    case Property::kUid: return std::to_string(r.uid);
    case Property::kGid: return std::to_string(r.gid);
    case Property::kType: return std::string(file_type_name(r.type));
    case Property::kSize:
    case Property::kGrowing: return std::to_string(r.size);
    case Property::kDevice: return std::to_string(r.device);
    case Property::kRdev: return std::to_string(r.rdev_major) + "," + std::to_string(r.rdev_minor);
    case Property::kBlocks: return std::to_string(r.blocks);
    case Property::kMtime: return format_seconds(r.mtime);
    case Property::kCtime: return format_seconds(r.ctime);
    case Property::kAtime: return format_seconds(r.atime);
    case Property::kSha256: return to_hex(r.sha256);
    case Property::kSha512: return to_hex(r.sha512);
  }
  return {};
}

Bytes encode_snapshot(const Snapshot& s) {
  cbor::Writer w;
  w.array(10)
      .uint(kSnapshotVersion)
      .text(s.vm)
      .bytes(s.policy_hash)
      .text(s.collector)
      .uint(s.collectable.bits())
      .uint(s.started)
      .uint(s.finished)
      .array(s.files.size());
  for (const auto& [path, record] : s.files) encode_record(w, path, record);
  w.array(s.warnings.size());
  for (const std::string& warning : s.warnings) w.bytes(as_bytes(warning));
  w.uint(0);  // reserved, so that a later version can add fields without a new layout
  return w.take();
}

Result<Snapshot> decode_snapshot(ByteView bytes) {
  return cbor::decode(bytes, "snapshot", [](cbor::Reader& in) {
    in.array_exact("snapshot", 10);
    if (in.uint("snapshot.version") != kSnapshotVersion) {
      throw cbor::DecodeError("snapshot.version", "unsupported version", 0);
    }
    Snapshot s;
    s.vm = std::string(in.text("snapshot.vm", kMaxText));
    s.policy_hash = in.fixed_bytes<32>("snapshot.policy_hash");
    s.collector = std::string(in.text("snapshot.collector", 64));
    s.collectable = PropertySet::from_bits(
        static_cast<std::uint16_t>(in.uint("snapshot.collectable", (1u << kPropertyCount) - 1)));
    s.started = in.uint("snapshot.started");
    s.finished = in.uint("snapshot.finished");
    std::size_t files = in.array("snapshot.files", kMaxFiles);
    for (std::size_t i = 0; i < files; ++i) {
      std::size_t at = in.offset();
      auto [path, record] = decode_record(in);
      if (!s.files.empty() && !(s.files.rbegin()->first < path)) {
        throw cbor::DecodeError("snapshot.files", "paths not in strictly ascending order", at);
      }
      s.files.emplace_hint(s.files.end(), std::move(path), std::move(record));
    }
    std::size_t warnings = in.array("snapshot.warnings", kMaxWarnings);
    for (std::size_t i = 0; i < warnings; ++i) {
      ByteView w = in.bytes("snapshot.warning", kMaxText);
      s.warnings.emplace_back(w.begin(), w.end());
    }
    in.uint("snapshot.reserved", 0);
    return s;
  });
}

}  // namespace mchain::measure
