#include "chain/file_io.h"

#include "chain/crypto/hash.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace mchain {

namespace fs = std::filesystem;

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

Fd::~Fd() { reset(); }

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

std::string errno_text(int err) { return std::strerror(err); }

Status write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errno_text(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

}  // namespace

Status write_file_atomically(const fs::path& path, std::string_view content, mode_t mode,
                             std::string_view what) {
  auto failure = [&](const std::string& detail) {
    return fail("cannot write " + std::string(what) + " file " + quoted(path) + ": " + detail);
  };
  if (path.filename().empty()) return failure("path names a directory");
  fs::path dir = path.parent_path();
  if (dir.empty()) dir = ".";

  fs::path temp;
  int raw_fd = -1;
  for (int attempt = 0; attempt < 16 && raw_fd < 0; ++attempt) {
    std::array<std::uint8_t, 8> suffix;
    crypto::random_bytes(suffix);
    temp = dir / ("." + path.filename().string() + ".tmp-" + to_hex(suffix));
    raw_fd = ::open(temp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
    if (raw_fd < 0 && errno != EEXIST) {
      return failure("creating temporary file " + quoted(temp) + ": " + errno_text(errno));
    }
  }
  if (raw_fd < 0) return failure("could not create a unique temporary file");
  Fd fd(raw_fd);

  // Until the rename succeeds the temporary file is ours to remove.
  struct TempGuard {
    const fs::path* path;
    ~TempGuard() {
      if (path != nullptr) ::unlink(path->c_str());
    }
  } guard{&temp};

  // open() applied the umask; set the mode exactly (public keys must stay world-readable).
  if (::fchmod(fd.get(), mode) != 0) return failure("fchmod: " + errno_text(errno));
  if (auto written = write_all(fd.get(), content); !written) {
    return failure("write: " + written.error().message);
  }
  if (::fsync(fd.get()) != 0) return failure("fsync: " + errno_text(errno));
  if (::close(fd.release()) != 0) return failure("close: " + errno_text(errno));
  if (::rename(temp.c_str(), path.c_str()) != 0) return failure("rename: " + errno_text(errno));
  guard.path = nullptr;

  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0 || ::fsync(dir_fd.get()) != 0) {
    return failure("fsync of directory " + quoted(dir) + ": " + errno_text(errno));
  }
  return {};
}


Result<std::string> read_small_file(const fs::path& path, std::size_t max_bytes,
                                    std::string_view what) {
  auto failure = [&](const std::string& detail) {
    return fail(std::string(what) + " " + quoted(path) + ": " + detail);
  };
  // O_NONBLOCK keeps a FIFO at the path from blocking the open; regular files ignore it.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    int err = errno;
    return failure(err == ENOENT ? "does not exist" : "cannot open: " + errno_text(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failure("cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return failure("is not a regular file");
  std::string content;
  std::array<char, 1 << 16> buffer;
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return failure("read: " + errno_text(errno));
    }
    if (n == 0) break;
    if (content.size() + static_cast<std::size_t>(n) > max_bytes) {
      return failure("is larger than " + std::to_string(max_bytes) + " bytes");
    }
    content.append(buffer.data(), static_cast<std::size_t>(n));
  }
  return content;
}

}  // namespace mchain
