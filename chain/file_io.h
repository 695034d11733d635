// Small-file I/O with the durability the chain's files need.
#pragma once

#include "chain/error.h"

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

namespace mchain {

// A file descriptor, closed on destruction unless released. Code that must see errors of
// close() calls it on release() itself.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_;
};

// Writes `content` to `path` with exactly `mode`: a temporary file in the same directory is
// written and fsynced, renamed over `path`, and the directory is fsynced so the rename itself
// survives a crash. Readers see either the old file or the complete new one. `what` names
// the file in errors ("private key", "baseline").
Status write_file_atomically(const std::filesystem::path& path, std::string_view content,
                             mode_t mode, std::string_view what);

// Reads a regular file of at most `max_bytes`; anything else (missing, a directory, a FIFO,
// too large) is an error naming `what` and the path.
Result<std::string> read_small_file(const std::filesystem::path& path, std::size_t max_bytes,
                                    std::string_view what);

}  // namespace mchain
