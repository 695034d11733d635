// The bulk collector's guest script, run by a real /bin/sh on the host with GNU coreutils
// and with busybox, against lstat(2) and independent hashes; and its parser against hostile
// and cut output.
#include "measure/collect/bulk_script.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "ground_truth.h"
#include "run_shell.h"
#include "temp_dir.h"

namespace mchain::measure {
namespace {

using testing::TempDir;

void write_file(const std::filesystem::path& p, const std::string& content) {
  std::ofstream(p, std::ios::binary) << content;
}

struct Tools {
  const char* name;
  bool busybox;
};

class BulkScriptTest : public ::testing::TestWithParam<Tools> {
 protected:
  void SetUp() override {
    if (GetParam().busybox && !std::filesystem::exists("/bin/busybox")) {
      GTEST_SKIP() << "busybox is not installed";
    }
    path_env_ =
        GetParam().busybox ? testing::busybox_tools(dir_.path() / "bin").string() : "/usr/bin:/bin";
    shell_ = GetParam().busybox ? (dir_.path() / "bin" / "sh").string() : "/bin/sh";
    root_ = dir_.path() / "tree";
    std::filesystem::create_directories(root_ / "dir" / "sub" / "deeper");
    std::filesystem::create_directories(root_ / "a*b" / "hidden");
    write_file(root_ / "plain.conf", "key = value\n");
    write_file(root_ / "with space", "spaces\n");
    write_file(root_ / "new\nline", "newline in the name\n");
    // Names that would read as a record for /etc/shadow if names were parsed from lines.
    std::filesystem::create_directories(root_ / kForged / "etc");
    write_file(root_ / kForged / "etc" / "shadow", "forged\n");
    write_file(root_ / "back\\slash", "backslash\n");
    write_file(root_ / "quote'd", "quote\n");
    write_file(root_ / "empty", "");
    write_file(root_ / "dir" / "sub" / "deep.txt", "deep\n");
    write_file(root_ / "dir" / "sub" / "deeper" / "too-deep.txt", "beyond the rule\n");
    write_file(root_ / "a*b" / "hidden" / "secret", "stopped\n");
    std::filesystem::create_symlink("plain.conf", root_ / "link");
    std::filesystem::create_symlink("target\nwith a newline", root_ / "odd-link");
    ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0600), 0);
    ASSERT_EQ(::chmod((root_ / "plain.conf").c_str(), 04751), 0);

    Rule everything;
    everything.path = root_.string();
    everything.mask = PropertySet::all();
    everything.name = "tree";
    Rule inner;
    inner.path = (root_ / "dir").string();
    inner.mask = PropertySet().add(Property::kSize).add(Property::kSha256);
    inner.name = "inner";
    inner.depth = 2;
    auto policy = Policy::from_parts({everything, inner}, {(root_ / "a*b").string()});
    ASSERT_TRUE(policy) << policy.error().message;
    policy_ = std::move(*policy);
  }

  Result<bulk::ParsedOutput> run(const std::vector<bulk::WalkRoot>& roots, std::size_t cap) {
    testing::ShellRun r =
        testing::run_shell(shell_, bulk::script(roots, cap, path_env_), path_env_);
    EXPECT_EQ(r.status, 0) << r.err;
    return bulk::parse(roots, r.out);
  }

  TempDir dir_{"bulk-script"};
  std::filesystem::path root_;
  std::string path_env_;
  std::string shell_;
  Policy policy_;
  static constexpr const char* kForged = "x\n81a4 1 1 0 0 0 0 0 0 0 0 0 0 ";
};

TEST_P(BulkScriptTest, EveryRecordMatchesLstatAndAnIndependentHash) {
  auto roots = bulk::plan(policy_);
  ASSERT_EQ(roots.size(), 2u);
  EXPECT_EQ(roots[0].prunes,
            (std::vector<std::string>{(root_ / "a*b").string(), (root_ / "dir").string()}));
  auto parsed = run(roots, 1 << 20);
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_TRUE(parsed->complete);
  ASSERT_EQ(parsed->roots.size(), 2u);

  std::map<std::string, const bulk::RawEntry*> seen;
  for (const auto& root : parsed->roots) {
    EXPECT_EQ(root.find_status, 0);
    for (const auto& e : root.entries) {
      EXPECT_TRUE(seen.emplace(e.path, &e).second) << "listed twice: " << e.path;
    }
  }
  std::set<std::string> expected;
  for (const char* p : {"", "/plain.conf", "/with space", "/new\nline", "/back\\slash", "/quote'd",
                        "/empty", "/link", "/odd-link", "/fifo", "/dir", "/dir/sub",
                        "/dir/sub/deep.txt", "/dir/sub/deeper"}) {
    expected.insert(root_.string() + p);
  }
  for (const char* p : {"", "/etc", "/etc/shadow"}) expected.insert((root_ / kForged).string() + p);
  std::set<std::string> got;
  for (const auto& [path, e] : seen) got.insert(path);
  EXPECT_EQ(got, expected);
  EXPECT_FALSE(seen.contains("/etc/shadow"));

  for (const auto& [path, e] : seen) {
    SCOPED_TRACE(path);
    auto truth = testing::ground_truth(path);
    ASSERT_TRUE(truth);
    ASSERT_TRUE(e->stat_ok);
    const FileRecord& r = e->record;
    EXPECT_EQ(r.type, truth->type);
    EXPECT_EQ(r.mode, truth->mode);
    EXPECT_EQ(r.inode, truth->inode);
    EXPECT_EQ(r.links, truth->links);
    EXPECT_EQ(r.uid, truth->uid);
    EXPECT_EQ(r.gid, truth->gid);
    EXPECT_EQ(r.size, truth->size);
    EXPECT_EQ(r.device, truth->device);
    EXPECT_EQ(r.rdev_major, truth->rdev_major);
    EXPECT_EQ(r.rdev_minor, truth->rdev_minor);
    EXPECT_EQ(r.blocks, truth->blocks);
    EXPECT_EQ(r.mtime, truth->mtime);
    EXPECT_EQ(r.ctime, truth->ctime);
    EXPECT_EQ(r.link_target, truth->link_target);
    bool regular = truth->type == FileType::kRegular;
    bool in_inner = path.starts_with((root_ / "dir").string());
    EXPECT_EQ(e->has_sha256, regular);
    EXPECT_EQ(e->has_sha512, regular && !in_inner);
    if (e->has_sha256) {
      EXPECT_EQ(to_hex(r.sha256), to_hex(truth->sha256));
    }
    if (e->has_sha512) {
      EXPECT_EQ(to_hex(r.sha512), to_hex(truth->sha512));
    }
  }
}

TEST_P(BulkScriptTest, OutputCutAtTheCapIsReportedAsIncomplete) {
  auto roots = bulk::plan(policy_);
  for (std::size_t cap : {1u, 10u, 200u, 700u}) {
    auto parsed = run(roots, cap);
    ASSERT_TRUE(parsed) << "cap " << cap << ": " << parsed.error().message;
    EXPECT_FALSE(parsed->complete) << "cap " << cap;
  }
}

TEST_P(BulkScriptTest, ChildrenListingSplitsATree) {
  bulk::WalkRoot root{root_.string(), -1, true, false, {(root_ / "a*b").string()}};
  testing::ShellRun r =
      testing::run_shell(shell_, bulk::children_script(root, 1 << 20, path_env_), path_env_);
  ASSERT_EQ(r.status, 0) << r.err;
  auto children = bulk::parse_children(root, r.out);
  ASSERT_TRUE(children) << children.error().message;
  ASSERT_TRUE(*children);
  std::set<std::string> got((*children)->begin(), (*children)->end());
  EXPECT_EQ(got.size(), 11u);  // every entry below the root but the stop point
  EXPECT_TRUE(got.contains((root_ / "new\nline").string()));
  EXPECT_FALSE(got.contains((root_ / "a*b").string()));

  testing::ShellRun cut =
      testing::run_shell(shell_, bulk::children_script(root, 40, path_env_), path_env_);
  auto incomplete = bulk::parse_children(root, cut.out);
  ASSERT_TRUE(incomplete);
  EXPECT_FALSE(*incomplete);
}

TEST_P(BulkScriptTest, MissingRootGivesAnEmptyRootAndAStatus) {
  std::vector<bulk::WalkRoot> roots{{(root_ / "absent").string(), -1, true, false, {}},
                                    {(root_ / "empty").string(), 0, true, false, {}}};
  auto parsed = run(roots, 1 << 20);
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_TRUE(parsed->complete);
  EXPECT_TRUE(parsed->roots[0].entries.empty());
  EXPECT_NE(parsed->roots[0].find_status, 0);
  ASSERT_EQ(parsed->roots[1].entries.size(), 1u);
  EXPECT_EQ(to_hex(parsed->roots[1].entries[0].record.sha256),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

INSTANTIATE_TEST_SUITE_P(Tools, BulkScriptTest,
                         ::testing::Values(Tools{"coreutils", false}, Tools{"busybox", true}),
                         [](const auto& info) { return std::string(info.param.name); });

// The parser on its own: hostile or damaged output is an error or "incomplete", never data.
class BulkParseTest : public ::testing::Test {
 protected:
  std::vector<bulk::WalkRoot> roots_{{"/r", -1, true, false, {}}};
  static std::string batch(const std::string& path, const std::string& stat_line) {
    return "B 1\n" + path + std::string(1, '\0') + "S\n" + stat_line + "\nL\n";
  }
  static constexpr const char* kStat = "81a4 7 1 0 0 3 2049 0 0 8 1700000000 1700000000 1700000000";
};

TEST_F(BulkParseTest, AcceptsAWellFormedOutput) {
  std::string digest(64, 'a');
  std::string out = "R 0\n" + batch("/r/f", kStat) + "H256\nF\n" + digest + "  /r/f\n.\nE 0 0\nX\n";
  auto parsed = bulk::parse(roots_, out);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_TRUE(parsed->complete);
  ASSERT_EQ(parsed->roots[0].entries.size(), 1u);
  EXPECT_EQ(parsed->roots[0].entries[0].record.size, 3u);
  EXPECT_EQ(parsed->roots[0].entries[0].record.mode, 0644u);
  EXPECT_TRUE(parsed->roots[0].entries[0].has_sha256);
}

TEST_F(BulkParseTest, RejectsMalformedOutput) {
  std::string digest(64, 'a');
  const std::pair<const char*, std::string> cases[] = {
      {"path outside the root", "R 0\n" + batch("/etc/shadow", kStat) + "E 0 0\nX\n"},
      {"sibling with a shared prefix", "R 0\n" + batch("/rx", kStat) + "E 0 0\nX\n"},
      {"too few stat fields", "R 0\n" + batch("/r/f", "81a4 7 1") + "E 0 0\nX\n"},
      {"non-numeric field",
       "R 0\n" + batch("/r/f", "81a4 7 1 0 0 x 2049 0 0 8 1 1 1") + "E 0 0\nX\n"},
      {"unknown file type",
       "R 0\n" + batch("/r/f", "f1a4 7 1 0 0 3 2049 0 0 8 1 1 1") + "E 0 0\nX\n"},
      {"digest names another file",
       "R 0\n" + batch("/r/f", kStat) + "H256\nF\n" + digest + "  /r/g\n.\nE 0 0\nX\n"},
      {"bad digest hex", "R 0\n" + batch("/r/f", kStat) + "H256\nF\n" + std::string(64, 'z') +
                             "  /r/f\n.\nE 0 0\nX\n"},
      {"unrequested hash", "R 0\n" + batch("/r/f", kStat) + "H512\nF\n.\nE 0 0\nX\n"},
      {"index out of range",
       "R 0\n" + batch("/r/f", kStat) + "H256\nP\n3 " + digest + "  -\n.\nE 0 0\nX\n"},
      {"digest section never ends", "R 0\n" + batch("/r/f", kStat) + "H256\nF\nE 0 0\nX\n"},
      {"symlink index out of range", "R 0\nB 1\n/r/f" + std::string(1, '\0') + "S\n" + kStat +
                                         "\nL\n5 x\n" + std::string(1, '\0') + "E 0 0\nX\n"},
      {"symlink target without its newline", "R 0\nB 1\n/r/f" + std::string(1, '\0') + "S\n" +
                                                 kStat + "\nL\n0 x" + std::string(1, '\0') +
                                                 "E 0 0\nX\n"},
      {"wrong root index", "R 0\nE 1 0\nX\n"},
      {"trailing data", "R 0\nE 0 0\nX\nmore"},
      {"empty batch", "R 0\nB 0\nS\nL\nE 0 0\nX\n"},
  };
  for (const auto& [name, out] : cases) {
    auto parsed = bulk::parse(roots_, out);
    EXPECT_FALSE(parsed) << name;
    if (!parsed) {
      EXPECT_NE(parsed.error().message.find("at byte"), std::string::npos) << name;
    }
  }
}

TEST_F(BulkParseTest, OutputThatStopsEarlyIsIncompleteNotData) {
  std::string full = "R 0\n" + batch("/r/f", kStat) + "E 0 0\nX\n";
  for (std::size_t n = 0; n < full.size(); ++n) {
    auto parsed = bulk::parse(roots_, full.substr(0, n));
    ASSERT_TRUE(parsed) << "cut at " << n << ": " << parsed.error().message;
    EXPECT_FALSE(parsed->complete) << "cut at " << n;
  }
  auto parsed = bulk::parse(roots_, full);
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(parsed->complete);
}

}  // namespace
}  // namespace mchain::measure
