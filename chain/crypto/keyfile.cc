#include "chain/crypto/keyfile.h"

#include "chain/crypto/hash.h"
#include "chain/file_io.h"

#include <openssl/crypto.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

namespace mchain::crypto {

namespace {

namespace fs = std::filesystem;

constexpr mode_t kPrivateMode = 0600;
constexpr mode_t kPublicMode = 0644;
// PEM keys are a few hundred bytes; anything far larger is not a key file.
constexpr off_t kMaxKeyFileSize = 64 * 1024;

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

std::string errno_text(int err) { return std::strerror(err); }

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}


// A string whose bytes are wiped when it goes away (PEM text of a private key).
struct WipedString {
  std::string value;
  WipedString() = default;
  explicit WipedString(std::string v) : value(std::move(v)) {}
  // Moving hands the buffer over (swap), so only one object ever owns the secret bytes.
  WipedString(WipedString&& other) noexcept { value.swap(other.value); }
  WipedString& operator=(WipedString&&) = delete;
  WipedString(const WipedString&) = delete;
  WipedString& operator=(const WipedString&) = delete;
  ~WipedString() {
    if (!value.empty()) OPENSSL_cleanse(value.data(), value.size());
  }
};

// Reads a small regular file. For private keys, refuses files the group or others can access.
Result<WipedString> read_key_file(const fs::path& path, bool is_private) {
  std::string what = is_private ? "private key file " : "public key file ";
  auto failure = [&](const std::string& detail) {
    return fail(what + quoted(path) + ": " + detail);
  };
  // O_NONBLOCK keeps a FIFO at the path from blocking the open; regular files ignore it.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ENOENT) return failure("does not exist");
    return failure("cannot open: " + errno_text(err));
  }
  // fstat on the open descriptor, so the checks apply to the file actually read.
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failure("cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return failure("is not a regular file");
  if (is_private && (st.st_mode & 077) != 0) {
    return fail(what + quoted(path) + " has mode " + octal_mode(st.st_mode) +
                ", which lets group or others access it; refusing to use it. Restrict it with: "
                "chmod 600 " +
                quoted(path));
  }
  if (st.st_size > kMaxKeyFileSize) {
    return failure("is " + std::to_string(st.st_size) + " bytes, too large to be a PEM key");
  }

  WipedString content;
  content.value.resize(static_cast<std::size_t>(st.st_size) + 1);
  std::size_t used = 0;
  for (;;) {
    if (used == content.value.size()) {
      // The file grew after fstat; keep within the size limit.
      if (content.value.size() > static_cast<std::size_t>(kMaxKeyFileSize)) {
        return failure("too large to be a PEM key");
      }
      content.value.resize(content.value.size() * 2);
    }
    ssize_t n = ::read(fd.get(), content.value.data() + used, content.value.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failure("read: " + errno_text(errno));
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  content.value.resize(used);
  return content;
}

}  // namespace

Status write_private_key_file(const std::filesystem::path& path, const PrivateKey& key) {
  try {
    WipedString pem(key.pem());
    if (pem.value.empty()) {
      return fail("cannot write private key file " + quoted(path) + ": key was moved from");
    }
    return write_file_atomically(path, pem.value, kPrivateMode, "private key");
  } catch (const std::exception& e) {
    return fail("cannot write private key file " + quoted(path) + ": " + e.what());
  }
}

Result<PrivateKey> read_private_key_file(const std::filesystem::path& path) {
  try {
    auto content = read_key_file(path, true);
    if (!content) return std::unexpected(content.error());
    auto key = PrivateKey::from_pem(content->value);
    if (!key) return fail("private key file " + quoted(path) + ": " + key.error().message);
    return key;
  } catch (const std::exception& e) {
    return fail("private key file " + quoted(path) + ": " + e.what());
  }
}

Status write_public_key_file(const std::filesystem::path& path, const PublicKey& key) {
  try {
    std::string pem = key.pem();
    if (pem.empty()) {
      return fail("cannot write public key file " + quoted(path) + ": key was moved from");
    }
    return write_file_atomically(path, pem, kPublicMode, "public key");
  } catch (const std::exception& e) {
    return fail("cannot write public key file " + quoted(path) + ": " + e.what());
  }
}

Result<PublicKey> read_public_key_file(const std::filesystem::path& path) {
  try {
    auto content = read_key_file(path, false);
    if (!content) return std::unexpected(content.error());
    auto key = PublicKey::from_pem(content->value);
    if (!key) return fail("public key file " + quoted(path) + ": " + key.error().message);
    return key;
  } catch (const std::exception& e) {
    return fail("public key file " + quoted(path) + ": " + e.what());
  }
}

}  // namespace mchain::crypto
