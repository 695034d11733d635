// Golden vectors: fixed inputs whose canonical encodings are stored under
// tests/fixtures/golden/. Any change of encoding breaks a test; to accept an intended change,
// bump the format version and regenerate with MCHAIN_UPDATE_GOLDEN=1.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "chain/types.h"

namespace mchain::testing {

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
