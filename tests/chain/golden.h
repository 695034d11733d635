// Golden vectors: fixed inputs whose canonical encodings are stored under
// tests/fixtures/golden/. Any change of encoding breaks a test; to accept an intended change,
// bump the format version and regenerate with MCHAIN_UPDATE_GOLDEN=1.
#pragma once

#include "chain/crypto/sign.h"
#include "chain/types.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <sstream>
#include <string>

namespace mchain::testing {

// An Ed25519 key from a 32-byte seed, through its PKCS#8 form (RFC 8410), so that the
// signatures in golden vectors are deterministic.
inline crypto::PrivateKey ed25519_from_seed(std::string_view seed_hex) {
  Bytes der = *from_hex("302e020100300506032b657004220420");
  Bytes seed = *from_hex(seed_hex);
  der.insert(der.end(), seed.begin(), seed.end());
  std::string b64(4 * ((der.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), der.data(),
                          static_cast<int>(der.size()));
  b64.resize(static_cast<std::size_t>(n));
  auto key = crypto::PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\n" + b64 +
                                          "\n-----END PRIVATE KEY-----\n");
  EXPECT_TRUE(key) << key.error().message;
  return *std::move(key);
}

// Compares named hex values with a golden file, one "name hex" per line.
class GoldenFile {
 public:
  explicit GoldenFile(std::string name)
      : path_(std::string(MCHAIN_TEST_FIXTURES) + "/golden/" + std::move(name)) {
    std::ifstream in(path_);
    std::string key, value;
    while (in >> key >> value) expected_[key] = value;
  }

  ~GoldenFile() {
    if (!updating()) return;
    std::ofstream out(path_);
    for (const auto& [key, value] : actual_) out << key << ' ' << value << '\n';
  }

  void check(const std::string& key, ByteView value) {
    actual_[key] = to_hex(value);
    if (updating()) return;
    auto it = expected_.find(key);
    ASSERT_NE(it, expected_.end()) << key << " missing from " << path_;
    EXPECT_EQ(to_hex(value), it->second) << "encoding of " << key << " changed";
  }

 private:
  static bool updating() { return std::getenv("MCHAIN_UPDATE_GOLDEN") != nullptr; }

  std::string path_;
  std::map<std::string, std::string> expected_;
  std::map<std::string, std::string> actual_;
};

}  // namespace mchain::testing
