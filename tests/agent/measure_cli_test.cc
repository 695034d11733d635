// `mchainctl measure` as an operator runs it, against a real qemu-ga on a private socket:
// the baseline file's life cycle, Tripwire's exit bitmask, and every way it can go wrong.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "measure/host_agent.h"
#include "temp_dir.h"

namespace {

namespace fs = std::filesystem;

struct Outcome {
  int status;
  std::string out;
  std::string err;
};

Outcome run(const std::string& command, const fs::path& dir) {
  const fs::path err_file = dir / "stderr.txt";
  std::string full = command + " 2>" + err_file.string();
  FILE* pipe = ::popen(full.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) out.append(buffer.data(), n);
  int status = ::pclose(pipe);
  std::ifstream in(err_file);
  std::string err((std::istreambuf_iterator<char>(in)), {});
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, err};
}

const std::string kCtl = std::string(MCHAIN_BINARY_DIR) + "/agent/mchainctl";

class MeasureCli : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "agent");
    agent_ = mchain::testing::HostAgent::start(dir_ / "agent");
    if (!agent_) GTEST_SKIP() << mchain::testing::HostAgent::unavailable_reason();
    fs::create_directories(dir_ / "tree" / "etc");
    std::ofstream(dir_ / "tree" / "etc" / "passwd") << "root:x:0:0::/root:/bin/sh\n";
    std::ofstream(dir_ / "tree" / "etc" / "hosts") << "127.0.0.1 localhost\n";
    std::ofstream(dir_ / "policy.pol")
        << "ROOT = " << (dir_ / "tree").string() << ";\n"
        << "$(ROOT) -> $(ReadOnly) (rulename = config, severity = 100);\n";
  }

  Outcome measure(const std::string& extra) {
    return run(kCtl + " measure --qga-socket " + agent_->socket().string() + " --policy " +
                   (dir_ / "policy.pol").string() + " " + extra,
               dir_);
  }

  mchain::testing::TempDir tmp_{"measure-cli"};
  const fs::path dir_ = tmp_.path();
  std::optional<mchain::testing::HostAgent> agent_;
};

TEST_F(MeasureCli, BaselineThenChangesWithTripwireExitBits) {
  const std::string baseline = "--baseline " + (dir_ / "base.cbor").string();
  Outcome first = measure(baseline);
  ASSERT_EQ(first.status, 0) << first.out << first.err;
  EXPECT_NE(first.out.find("Baseline recorded"), std::string::npos) << first.out;
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "base.cbor").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  Outcome clean = measure(baseline + " --json");
  ASSERT_EQ(clean.status, 0) << clean.out << clean.err;
  auto json = nlohmann::json::parse(clean.out);
  EXPECT_EQ(json["violations"], 0);
  EXPECT_EQ(json["collector"], "bulk");
  EXPECT_EQ(json["objects_scanned"], 4);  // tree, etc, passwd, hosts

  ASSERT_EQ(::chmod((dir_ / "tree" / "etc" / "passwd").c_str(), 0600), 0);
  Outcome changed = measure(baseline);
  EXPECT_EQ(changed.status, 4) << changed.out;
  EXPECT_NE(changed.out.find("Modified Object: \"" + (dir_ / "tree/etc/passwd").string()),
            std::string::npos)
      << changed.out;

  std::ofstream(dir_ / "tree" / "etc" / "new") << "x";
  fs::remove(dir_ / "tree" / "etc" / "hosts");
  Outcome all = measure(baseline + " --summary");
  EXPECT_EQ(all.status, 1 | 2 | 4) << all.out;
  EXPECT_EQ(all.out.find("Object Detail"), std::string::npos);

  // Accept the current state: the next run compares against it.
  EXPECT_EQ(measure(baseline + " --update-baseline").status, 1 | 2 | 4);
  EXPECT_EQ(measure(baseline).status, 0);
}

TEST_F(MeasureCli, ReportOutIsTheCanonicalPayload) {
  Outcome run = measure("--report-out " + (dir_ / "report.cbor").string());
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_GT(fs::file_size(dir_ / "report.cbor"), 40u);
}

TEST_F(MeasureCli, ErrorsAreBitEightAndLeaveTheBaselineAlone) {
  const fs::path base = dir_ / "base.cbor";
  ASSERT_EQ(measure("--baseline " + base.string()).status, 0);
  const auto before = fs::last_write_time(base);

  // The agent is gone: a failed run, reported, and the baseline untouched.
  agent_->kill_agent();
  Outcome gone = measure("--baseline " + base.string() + " --update-baseline --json");
  EXPECT_EQ(gone.status, 8) << gone.out << gone.err;
  auto json = nlohmann::json::parse(gone.out);
  EXPECT_NE(json["errors"][0].get<std::string>().find("not-connected"), std::string::npos);
  EXPECT_EQ(fs::last_write_time(base), before);

  // A damaged baseline file is refused, not overwritten.
  std::ofstream(dir_ / "bad.cbor") << "not a baseline";
  Outcome bad = measure("--baseline " + (dir_ / "bad.cbor").string());
  EXPECT_EQ(bad.status, 8);
  EXPECT_NE(bad.err.find("is not a baseline file"), std::string::npos) << bad.err;

  // A policy with a mistake names where it is.
  std::ofstream(dir_ / "broken.pol") << "/etc -> +pq;\n";
  Outcome broken = run(kCtl + " measure --qga-socket " + agent_->socket().string() +
                           " --policy " + (dir_ / "broken.pol").string(),
                       dir_);
  EXPECT_EQ(broken.status, 8);
  EXPECT_NE(broken.err.find("broken.pol:1:"), std::string::npos) << broken.err;

  // Usage problems are errors too, in measure's bitmask.
  EXPECT_EQ(run(kCtl + " measure --policy x", dir_).status, 8);
  EXPECT_EQ(measure("--collector fastest").status, 8);
  EXPECT_EQ(measure("--update-baseline").status, 8);
}

}  // namespace
