// Ground truth for collector tests: what lstat(2) and an independent hash of the bytes say
// about a host path, in the collector's record shape.
#pragma once

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "chain/crypto/hash.h"
#include "measure/collect/snapshot.h"

namespace mchain::testing {

inline std::optional<measure::FileRecord> ground_truth(const std::string& path) {
  using measure::FileType;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  measure::FileRecord r;
  r.collected = measure::PropertySet::all();
  r.mode = st.st_mode & 07777;
  switch (st.st_mode & S_IFMT) {
    case S_IFREG: r.type = FileType::kRegular; break;
    case S_IFDIR: r.type = FileType::kDirectory; break;
    case S_IFLNK: r.type = FileType::kSymlink; break;
    case S_IFCHR: r.type = FileType::kCharDevice; break;
    case S_IFBLK: r.type = FileType::kBlockDevice; break;
    case S_IFIFO: r.type = FileType::kFifo; break;
    case S_IFSOCK: r.type = FileType::kSocket; break;
  }
  r.inode = st.st_ino;
  r.links = st.st_nlink;
  r.uid = st.st_uid;
  r.gid = st.st_gid;
  r.size = static_cast<std::uint64_t>(st.st_size);
  r.device = st.st_dev;
  r.rdev_major = major(st.st_rdev);
  r.rdev_minor = minor(st.st_rdev);
  r.blocks = static_cast<std::uint64_t>(st.st_blocks);
  r.mtime = st.st_mtim.tv_sec;
  r.ctime = st.st_ctim.tv_sec;
  r.atime = st.st_atim.tv_sec;
  std::string content;
  if (r.type == FileType::kSymlink) {
    std::string target(4096, '\0');
    ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    target.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    r.link_target = content = target;
  } else if (r.type == FileType::kRegular) {
    std::ifstream in(path, std::ios::binary);
    content.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (r.type == FileType::kRegular || r.type == FileType::kSymlink) {
    r.sha256 = crypto::sha256(as_bytes(content));
    r.sha512 = crypto::sha512(as_bytes(content));
  } else {
    r.collected.remove(measure::Property::kSha256).remove(measure::Property::kSha512);
  }
  return r;
}

}  // namespace mchain::testing
