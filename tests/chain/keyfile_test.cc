#include "chain/crypto/keyfile.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "temp_dir.h"

using mchain::as_bytes;
using mchain::crypto::PrivateKey;
using mchain::crypto::PublicKey;
using mchain::crypto::SigAlg;
namespace crypto = mchain::crypto;
namespace fs = std::filesystem;

namespace {

class KeyFile : public ::testing::Test {
 protected:
  mchain::testing::TempDir tmp_{"mchain-keyfile"};
  const fs::path dir_ = tmp_.path();

  static mode_t mode_of(const fs::path& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  static void write_text(const fs::path& path, const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
  }

  static PrivateKey generate(SigAlg alg) {
    auto key = PrivateKey::generate(alg);
    EXPECT_TRUE(key.has_value());
    return std::move(*key);
  }
};

// Restores the process umask at scope exit.
class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t mask) : old_(::umask(mask)) {}
  ~UmaskGuard() { ::umask(old_); }

 private:
  mode_t old_;
};

const SigAlg kAllAlgs[] = {SigAlg::ecdsa_p256_sha256, SigAlg::ed25519};

}  // namespace

TEST_F(KeyFile, PrivateKeyRoundTripWithMode0600) {
  for (SigAlg alg : kAllAlgs) {
    SCOPED_TRACE(std::string(crypto::to_string(alg)));
    PrivateKey key = generate(alg);
    const fs::path path = dir_ / "node.key";
    UmaskGuard permissive(0);  // even with no umask the file must not be readable by others
    auto written = crypto::write_private_key_file(path, key);
    ASSERT_TRUE(written.has_value()) << written.error().message;
    EXPECT_EQ(mode_of(path), 0600u);

    auto read = crypto::read_private_key_file(path);
    ASSERT_TRUE(read.has_value()) << read.error().message;
    EXPECT_EQ(read->public_key(), key.public_key());
    auto sig = read->sign(as_bytes("m"));
    ASSERT_TRUE(sig.has_value());
    EXPECT_TRUE(key.public_key().verify(as_bytes("m"), *sig));
  }
}

TEST_F(KeyFile, PublicKeyRoundTripWithMode0644) {
  for (SigAlg alg : kAllAlgs) {
    PrivateKey key = generate(alg);
    const fs::path path = dir_ / "node.pub";
    UmaskGuard strict(077);  // the mode is set explicitly, not left to the umask
    auto written = crypto::write_public_key_file(path, key.public_key());
    ASSERT_TRUE(written.has_value()) << written.error().message;
    EXPECT_EQ(mode_of(path), 0644u);
    auto read = crypto::read_public_key_file(path);
    ASSERT_TRUE(read.has_value()) << read.error().message;
    EXPECT_EQ(*read, key.public_key());
  }
}

TEST_F(KeyFile, OverwriteReplacesAtomicallyAndLeavesNoTempFiles) {
  const fs::path path = dir_ / "node.key";
  PrivateKey first = generate(SigAlg::ed25519);
  PrivateKey second = generate(SigAlg::ecdsa_p256_sha256);
  ASSERT_TRUE(crypto::write_private_key_file(path, first).has_value());
  ASSERT_TRUE(crypto::write_private_key_file(path, second).has_value());
  auto read = crypto::read_private_key_file(path);
  ASSERT_TRUE(read.has_value()) << read.error().message;
  EXPECT_EQ(read->public_key(), second.public_key());

  int entries = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    ++entries;
    EXPECT_EQ(entry.path().filename(), "node.key");
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(KeyFile, RefusesPrivateKeyReadableByOthers) {
  const fs::path path = dir_ / "node.key";
  ASSERT_TRUE(crypto::write_private_key_file(path, generate(SigAlg::ed25519)).has_value());
  for (mode_t mode : {0644u, 0640u, 0604u, 0660u}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto read = crypto::read_private_key_file(path);
    ASSERT_FALSE(read.has_value()) << std::oct << mode;
    const std::string& message = read.error().message;
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    EXPECT_NE(message.find(octal), std::string::npos) << message;
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("chmod 600"), std::string::npos) << message;
  }
  // Owner-only modes are fine.
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);
  EXPECT_TRUE(crypto::read_private_key_file(path).has_value());
}

TEST_F(KeyFile, MissingFile) {
  const fs::path path = dir_ / "absent.key";
  auto priv = crypto::read_private_key_file(path);
  ASSERT_FALSE(priv.has_value());
  EXPECT_NE(priv.error().message.find(path.string()), std::string::npos);
  EXPECT_NE(priv.error().message.find("does not exist"), std::string::npos) << priv.error().message;
  auto pub = crypto::read_public_key_file(path);
  ASSERT_FALSE(pub.has_value());
  EXPECT_NE(pub.error().message.find("does not exist"), std::string::npos);
}

TEST_F(KeyFile, GarbageFile) {
  const fs::path path = dir_ / "garbage.key";
  write_text(path, "this is not a key\n", 0600);
  auto priv = crypto::read_private_key_file(path);
  ASSERT_FALSE(priv.has_value());
  EXPECT_NE(priv.error().message.find(path.string()), std::string::npos);
  EXPECT_NE(priv.error().message.find("PEM"), std::string::npos) << priv.error().message;
  auto pub = crypto::read_public_key_file(path);
  ASSERT_FALSE(pub.has_value());
  EXPECT_NE(pub.error().message.find("PEM"), std::string::npos) << pub.error().message;
}

TEST_F(KeyFile, WrongKeyKind) {
  PrivateKey key = generate(SigAlg::ecdsa_p256_sha256);
  const fs::path pub_path = dir_ / "node.pub";
  const fs::path key_path = dir_ / "node.key";
  ASSERT_TRUE(crypto::write_public_key_file(pub_path, key.public_key()).has_value());
  ASSERT_TRUE(crypto::write_private_key_file(key_path, key).has_value());
  ASSERT_EQ(::chmod(pub_path.c_str(), 0600), 0);  // pass the mode check to reach the type check

  auto priv = crypto::read_private_key_file(pub_path);
  ASSERT_FALSE(priv.has_value());
  EXPECT_NE(priv.error().message.find("PUBLIC KEY"), std::string::npos) << priv.error().message;
  auto pub = crypto::read_public_key_file(key_path);
  ASSERT_FALSE(pub.has_value());
  EXPECT_NE(pub.error().message.find("PRIVATE KEY"), std::string::npos) << pub.error().message;
}

TEST_F(KeyFile, WriteIntoMissingDirectoryFails) {
  const fs::path path = dir_ / "no-such-dir" / "node.key";
  auto written = crypto::write_private_key_file(path, generate(SigAlg::ed25519));
  ASSERT_FALSE(written.has_value());
  EXPECT_NE(written.error().message.find(path.string()), std::string::npos)
      << written.error().message;
}

TEST_F(KeyFile, DirectoryIsNotAKeyFile) {
  auto read = crypto::read_public_key_file(dir_);
  ASSERT_FALSE(read.has_value());
  EXPECT_NE(read.error().message.find("not a regular file"), std::string::npos)
      << read.error().message;
}
