// A fresh directory under GoogleTest's temporary directory, removed with everything in it when
// the object goes. Declare it before anything that keeps files open in it (stores), so that
// those close first.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace mchain::testing {

class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "mchain") {
    std::string pattern =
        (std::filesystem::path(::testing::TempDir()) / (std::string(prefix) + ".XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << pattern << " failed";
      return;
    }
    path_ = pattern;
  }
  // MCHAIN_KEEP_FAILED=1 keeps the directory of a failed test (logs, stores) for reading.
  ~TempDir() {
    std::error_code ec;
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    if (std::getenv("MCHAIN_KEEP_FAILED") != nullptr && test != nullptr &&
        test->result()->Failed()) {
      std::fprintf(stderr, "kept %s\n", path_.c_str());
      return;
    }
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace mchain::testing
