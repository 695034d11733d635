// mchaind and mchainctl as a user runs them: real processes, real files.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "chain/package/package.h"

namespace {

namespace fs = std::filesystem;

struct Outcome {
  int status;
  std::string out;  // stdout and stderr together
};

Outcome run(const std::string& command) {
  std::string full = command + " 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    out.append(buffer.data(), n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

const std::string kCtl = std::string(MCHAIN_BINARY_DIR) + "/agent/mchainctl";
const std::string kDaemon = std::string(MCHAIN_BINARY_DIR) + "/agent/mchaind";

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::path(::testing::TempDir()) / "mchain-cli.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(Cli, VersionAndHelp) {
  for (const auto& binary : {kCtl, kDaemon}) {
    Outcome version = run(binary + " --version");
    EXPECT_EQ(version.status, 0);
    EXPECT_NE(version.out.find("0.1.0"), std::string::npos) << version.out;
    Outcome help = run(binary + " --help");
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.out.find("usage:"), std::string::npos) << help.out;
  }
  Outcome unknown = run(kCtl + " frobnicate");
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.out.find("unknown command 'frobnicate'"), std::string::npos);
  EXPECT_EQ(run(kDaemon + " --bogus").status, 2);
}

TEST_F(Cli, DemoAcceptsTheValidPackageAndRejectsTheFlippedOne) {
  Outcome demo = run(kCtl + " demo --json --dir " + dir_.string());
  ASSERT_EQ(demo.status, 0) << demo.out;
  auto report = nlohmann::json::parse(demo.out);
  EXPECT_TRUE(report["ok"].get<bool>());
  std::map<std::string, nlohmann::json> steps;
  for (const auto& step : report["steps"]) steps[step["step"]] = step;
  EXPECT_EQ(steps["validate"]["verdict"], "ok");
  EXPECT_NE(steps["tamper"]["verdict"], "ok");
  EXPECT_FALSE(steps["tamper"]["detail"].get<std::string>().empty());
  // Keys on disk, private halves readable by the owner only.
  for (const char* name : {"node-1", "alice", "vm"}) {
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / (std::string(name) + ".key")).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
  }
  Outcome show = run(kCtl + " package show --json " + (dir_ / "data.pkg").string());
  ASSERT_EQ(show.status, 0) << show.out;
  auto shown = nlohmann::json::parse(show.out);
  EXPECT_EQ(shown["type"], "data");
  EXPECT_EQ(shown["user"], "alice");
  EXPECT_EQ(shown["signatures"]["node"]["alg"], "ecdsa-p256-sha256");
}

TEST_F(Cli, DemoFlipsAnyChosenByte) {
  // Every offset of the structure, the header, the body and the signatures: always rejected.
  for (int offset : {0, 5, 40, 150, 300, 420}) {
    Outcome demo = run(kCtl + " demo --json --flip " + std::to_string(offset) + " --dir " +
                       (dir_ / std::to_string(offset)).string());
    ASSERT_EQ(demo.status, 0) << "offset " << offset << ": " << demo.out;
  }
  Outcome beyond = run(kCtl + " demo --flip 100000 --dir " + (dir_ / "beyond").string());
  EXPECT_EQ(beyond.status, 1);
  EXPECT_NE(beyond.out.find("beyond the package"), std::string::npos) << beyond.out;
  EXPECT_EQ(run(kCtl + " demo --flip 12x").status, 2);
}

TEST_F(Cli, DemoReportsAMissingFile) {
  Outcome demo = run(kCtl + " demo --file /nonexistent/file --dir " + dir_.string());
  EXPECT_EQ(demo.status, 1);
  EXPECT_NE(demo.out.find("cannot stat /nonexistent/file"), std::string::npos) << demo.out;
}

TEST_F(Cli, KeyGenerateWritesAPrivateKeyOnlyTheOwnerReads) {
  fs::path key = dir_ / "node.key";
  Outcome gen = run(kCtl + " key generate --alg ed25519 --out " + key.string());
  ASSERT_EQ(gen.status, 0) << gen.out;
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(fs::exists(dir_ / "node.key.pub"));
  EXPECT_EQ(run(kCtl + " key generate --alg rsa --out " + key.string()).status, 2);
  EXPECT_EQ(run(kCtl + " key generate").status, 2);
}

TEST_F(Cli, PackageShowRejectsGarbage) {
  fs::path file = dir_ / "garbage.pkg";
  std::ofstream(file) << "not a package";
  Outcome show = run(kCtl + " package show " + file.string());
  EXPECT_EQ(show.status, 1);
  EXPECT_NE(show.out.find("malformed package"), std::string::npos) << show.out;
  EXPECT_EQ(run(kCtl + " package show " + (dir_ / "missing").string()).status, 1);
}

}  // namespace
