#include "measure/file_measure.h"

#include "chain/crypto/hash.h"
#include "chain/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <sstream>

namespace mchain::measure {

namespace {

std::string errno_text(const std::filesystem::path& path, std::string_view what) {
  return std::string(what) + " " + path.string() + ": " + std::strerror(errno);
}

Result<Hash256> hash_file(const std::filesystem::path& path) {
  Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!file) return fail(errno_text(path, "cannot open"));
  crypto::Sha256 hash;
  std::array<std::uint8_t, 1 << 16> buffer;
  for (;;) {
    ssize_t n = ::read(file.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno_text(path, "cannot read"));
    if (n == 0) break;
    hash.update(ByteView(buffer.data(), static_cast<std::size_t>(n)));
  }
  return hash.finish();
}

}  // namespace

Result<FileMeasurement> measure_file(const std::filesystem::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return fail(errno_text(path, "cannot stat"));
  FileMeasurement m;
  m.path = path.string();
  m.type = S_ISREG(st.st_mode)   ? "file"
           : S_ISDIR(st.st_mode) ? "directory"
           : S_ISLNK(st.st_mode) ? "symlink"
                                 : "other";
  m.mode = st.st_mode & 07777;
  m.inode = st.st_ino;
  m.links = st.st_nlink;
  m.uid = st.st_uid;
  m.gid = st.st_gid;
  m.size = static_cast<std::uint64_t>(st.st_size);
  m.mtime_s = st.st_mtim.tv_sec;
  m.ctime_s = st.st_ctim.tv_sec;
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    m.link_target = std::filesystem::read_symlink(path, ec).string();
    if (ec) return fail("cannot read link " + path.string() + ": " + ec.message());
  }
  if (S_ISREG(st.st_mode)) {
    auto digest = hash_file(path);
    if (!digest) return std::unexpected(digest.error());
    m.sha256 = *digest;
  }
  return m;
}

std::string to_report_text(const FileMeasurement& m) {
  std::ostringstream out;
  out << "path " << m.path << '\n'
      << "type " << m.type << '\n'
      << "mode " << std::oct << m.mode << std::dec << '\n'
      << "inode " << m.inode << '\n'
      << "links " << m.links << '\n'
      << "uid " << m.uid << '\n'
      << "gid " << m.gid << '\n'
      << "size " << m.size << '\n'
      << "mtime " << m.mtime_s << '\n'
      << "ctime " << m.ctime_s << '\n';
  if (m.sha256) out << "sha256 " << to_hex(*m.sha256) << '\n';
  if (!m.link_target.empty()) out << "link " << m.link_target << '\n';
  return out.str();
}

}  // namespace mchain::measure
