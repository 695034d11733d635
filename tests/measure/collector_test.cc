// The collectors against a real qemu-ga on a private socket, measuring a tree the test builds
// on the host: every reported property is checked against lstat(2) and an independent hash,
// then the tree is changed in every way the issue lists and the report must say exactly that.
#include "measure/collect/collector.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "ground_truth.h"
#include "host_agent.h"
#include "measure/measurement.h"
#include "measure/report/report.h"
#include "run_shell.h"
#include "temp_dir.h"

namespace mchain::measure {
namespace {

using testing::HostAgent;
using testing::TempDir;

void write_file(const std::filesystem::path& p, const std::string& content,
                std::ios::openmode mode = std::ios::trunc) {
  std::ofstream(p, std::ios::binary | mode) << content;
}

std::string policy_text(const std::filesystem::path& root) {
  const std::string r = root.string();
  return "TREE = " + r +
         ";\n"
         "$(TREE) -> $(IgnoreNone) -a (rulename = tree, severity = 100);\n"
         "$(TREE)/logs -> $(Growing) (rulename = logs, severity = 20);\n"
         "$(TREE)/etc/hosts -> +s+sha256 (rulename = hosts, severity = 80);\n"
         "!$(TREE)/skip;\n";
}

class CollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path() / "agent");
    agent_ = HostAgent::start(dir_.path() / "agent", blocked());
    if (!agent_) GTEST_SKIP() << HostAgent::unavailable_reason();
    root_ = dir_.path() / "tree";
    for (const char* d : {"etc/ssh", "logs", "skip", "bin"}) {
      std::filesystem::create_directories(root_ / d);
    }
    write_file(root_ / "etc" / "passwd", "root:x:0:0:root:/root:/bin/sh\n");
    write_file(root_ / "etc" / "hosts", "127.0.0.1 localhost\n");
    write_file(root_ / "etc" / "ssh" / "sshd_config", "PermitRootLogin no\n");
    write_file(root_ / "etc" / "old-name", "renamed later\n");
    write_file(root_ / "etc" / "remove-me", "removed later\n");
    write_file(root_ / "logs" / "app.log", std::string(1000, 'a'));
    write_file(root_ / "logs" / "audit.log", std::string(1000, 'b'));
    write_file(root_ / "skip" / "ignored", "never measured\n");
    write_file(root_ / "bin" / "tool", std::string(3 << 20, 'x'));  // several chunks
    std::filesystem::create_symlink("passwd", root_ / "etc" / "link");
    auto policy = parse_policy(policy_text(root_), "test.pol");
    ASSERT_TRUE(policy) << policy.error().message;
    policy_ = std::move(*policy);
  }

  virtual std::vector<std::string> blocked() const { return {}; }

  qga::Client client() {
    auto transport = qga::connect_unix_socket(agent_->socket());
    EXPECT_TRUE(transport) << transport.error().message;
    return qga::Client(std::move(*transport));
  }

  Snapshot collect(BulkOptions options = {}) {
    qga::Client c = client();
    EXPECT_TRUE(c.begin_session());
    auto collector = choose_collector(c, std::move(options));
    EXPECT_TRUE(collector) << collector.error().message;
    auto snap = (*collector)->collect(policy_);
    EXPECT_TRUE(snap) << snap.error().message;
    return snap ? *snap : Snapshot{};
  }

  // Every path the policy governs in the tree, as a host walk sees it.
  std::set<std::string> governed_paths() const {
    std::set<std::string> out;
    if (policy_.governing_rule(root_.string())) out.insert(root_.string());
    for (auto it = std::filesystem::recursive_directory_iterator(root_);
         it != std::filesystem::recursive_directory_iterator(); ++it) {
      if (policy_.governing_rule(it->path().string())) out.insert(it->path().string());
    }
    return out;
  }

  TempDir dir_{"collector"};
  std::optional<HostAgent> agent_;
  std::filesystem::path root_;
  Policy policy_;
};

TEST_F(CollectorTest, BulkRecordsMatchLstatAndIndependentHashes) {
  Snapshot snap = collect();
  EXPECT_EQ(snap.collector, "bulk");
  EXPECT_TRUE(snap.warnings.empty()) << snap.warnings.front();
  std::set<std::string> got;
  for (const auto& [path, record] : snap.files) got.insert(path);
  EXPECT_EQ(got, governed_paths());
  EXPECT_FALSE(got.contains((root_ / "skip").string()));

  for (const auto& [path, record] : snap.files) {
    SCOPED_TRACE(path);
    const Rule* rule = policy_.governing_rule(path);
    ASSERT_NE(rule, nullptr);
    auto truth = testing::ground_truth(path);
    ASSERT_TRUE(truth);
    PropertySet want = rule->mask & truth->collected;
    if (want.has(Property::kGrowing)) want.add(Property::kSize);
    EXPECT_EQ(record.collected, want);
    EXPECT_TRUE(record.error.empty()) << record.error;
    for (std::size_t i = 0; i < kPropertyCount; ++i) {
      auto p = static_cast<Property>(i);
      if (!want.has(p) || p == Property::kAtime) continue;
      EXPECT_EQ(property_text(record, p), property_text(*truth, p)) << property_code(p);
    }
  }
}

TEST_F(CollectorTest, EveryKindOfChangeIsReportedAgainstTheBaseline) {
  Snapshot baseline = collect();
  // Second granularity: make sure times move.
  ::sleep(1);
  write_file(root_ / "etc" / "new-file", "added\n");
  std::filesystem::remove(root_ / "etc" / "remove-me");
  ASSERT_EQ(::chmod((root_ / "etc" / "passwd").c_str(), 0600), 0);
  ASSERT_EQ(::lchown((root_ / "etc" / "ssh" / "sshd_config").c_str(), 1234, 4321), 0);
  write_file(root_ / "etc" / "hosts", "10.66.6.6 evil-host\n");  // same size, other content
  std::filesystem::rename(root_ / "etc" / "old-name", root_ / "etc" / "new-name");
  write_file(root_ / "logs" / "app.log", "grown\n", std::ios::app);
  std::filesystem::resize_file(root_ / "logs" / "audit.log", 10);
  std::filesystem::remove(root_ / "etc" / "link");
  std::filesystem::create_symlink("ssh", root_ / "etc" / "link");
  write_file(root_ / "skip" / "ignored", "changed, but stopped\n");

  Snapshot now = collect();
  Report report = compare(policy_, &baseline, now);
  std::map<std::string, const ObjectChange*> by_path;
  for (const auto& c : report.changes) by_path[c.path.substr(root_.string().size())] = &c;

  auto kind = [&](const std::string& p) {
    EXPECT_TRUE(by_path.contains(p)) << p << " not reported";
    return by_path.contains(p) ? by_path[p]->kind : ChangeKind::kChanged;
  };
  auto changed = [&](const std::string& p) {
    std::set<Property> props;
    if (by_path.contains(p)) {
      for (const auto& pc : by_path[p]->changes) {
        props.insert(pc.property);
        // The new value is what the host sees now.
        auto truth = testing::ground_truth(root_.string() + p);
        if (truth) {
          EXPECT_EQ(pc.new_value, property_text(*truth, pc.property)) << p;
        }
      }
    }
    return props;
  };
  EXPECT_EQ(kind("/etc/new-file"), ChangeKind::kAdded);
  EXPECT_EQ(kind("/etc/remove-me"), ChangeKind::kRemoved);
  EXPECT_EQ(kind("/etc/old-name"), ChangeKind::kRemoved);
  EXPECT_EQ(kind("/etc/new-name"), ChangeKind::kAdded);
  EXPECT_TRUE(changed("/etc/passwd").contains(Property::kPermissions));
  auto owner = changed("/etc/ssh/sshd_config");
  EXPECT_TRUE(owner.contains(Property::kUid) && owner.contains(Property::kGid));
  // hosts has its own rule: size and SHA-256 only; same size, so only the hash.
  EXPECT_EQ(changed("/etc/hosts"), (std::set<Property>{Property::kSha256}));
  EXPECT_EQ(by_path["/etc/hosts"]->rule, "hosts");
  EXPECT_EQ(by_path["/etc/hosts"]->severity, 80u);
  EXPECT_FALSE(by_path.contains("/logs/app.log")) << "a growing log that grew is fine";
  EXPECT_EQ(changed("/logs/audit.log"), (std::set<Property>{Property::kGrowing}));
  auto link = changed("/etc/link");
  EXPECT_TRUE(link.contains(Property::kSha256) && link.contains(Property::kSize));
  EXPECT_FALSE(by_path.contains("/skip/ignored"));
  EXPECT_EQ(report.exit_code(), 1 | 2 | 4);
  EXPECT_TRUE(report.errors.empty()) << report.errors.front();

  // Nothing else changed: a third run against the second is clean.
  Report again = compare(policy_, &now, collect());
  for (const auto& c : again.changes) ADD_FAILURE() << "unexpected change at " << c.path;
}

TEST_F(CollectorTest, OutputCapSplitsBatchesAndTreesWithoutLosingAnything) {
  for (int i = 0; i < 120; ++i) {
    write_file(root_ / "etc" / ("file-" + std::to_string(i)), std::to_string(i));
  }
  Snapshot whole = collect();
  BulkOptions small;
  small.max_output_bytes = 8192;  // a few dozen records per run, and the listing of etc
  Snapshot split = collect(small);
  EXPECT_EQ(split.files, whole.files);
  EXPECT_GT(split.files.size(), 120u);
}

TEST_F(CollectorTest, BusyboxToolsInTheGuestGiveTheSameSnapshot) {
  auto tools = testing::busybox_tools(dir_.path() / "busybox");
  BulkOptions busybox;
  busybox.path = tools.string();
  busybox.shell = (tools / "sh").string();
  Snapshot with_busybox = collect(busybox);
  Snapshot with_coreutils = collect();
  EXPECT_EQ(with_busybox.files, with_coreutils.files);
}

TEST_F(CollectorTest, MissingGuestToolIsAnErrorWithTheGuestsMessage) {
  BulkOptions no_tools;
  no_tools.path = (dir_.path() / "empty-bin").string();
  std::filesystem::create_directories(no_tools.path);
  qga::Client c = client();
  auto collector = make_bulk_collector(c, no_tools);
  auto snap = collector->collect(policy_);
  ASSERT_FALSE(snap);
  EXPECT_EQ(snap.error().code, qga::Errc::kCommandFailed);
  EXPECT_NE(snap.error().message.find("find not found in the guest"), std::string::npos)
      << snap.error().message;
}

TEST_F(CollectorTest, NoAgentOnTheSocketIsNotConnected) {
  agent_->kill_agent();
  auto transport = qga::connect_unix_socket(agent_->socket());
  ASSERT_FALSE(transport);
  EXPECT_EQ(transport.error().code, qga::Errc::kNotConnected);
}

// guest-exec blocked, as some distributions ship qemu-ga: the file API is all there is.
class ContentCollectorTest : public CollectorTest {
 protected:
  std::vector<std::string> blocked() const override { return {"guest-exec", "guest-exec-status"}; }
};

TEST_F(ContentCollectorTest, HashesAndSizesMatchAndTheReportSaysWhatIsMissing) {
  auto file_policy = parse_policy("R = " + root_.string() +
                                  ";\n"
                                  "$(R)/etc/passwd -> $(ReadOnly) +sha512 (rulename = passwd);\n"
                                  "$(R)/bin/tool -> +s+sha256+sha512;\n"
                                  "$(R)/logs/audit.log -> $(Growing);\n"
                                  "$(R)/etc/link -> +sha256;\n"
                                  "$(R)/etc -> $(ReadOnly);\n"
                                  "$(R)/absent -> +sha256;\n");
  ASSERT_TRUE(file_policy) << file_policy.error().message;
  policy_ = std::move(*file_policy);
  qga::Client c = client();
  Measurement first = measure_guest(c, policy_, nullptr, {});
  ASSERT_TRUE(first.snapshot) << first.report.errors.front();
  const Snapshot& snap = *first.snapshot;
  EXPECT_EQ(snap.collector, "content");

  for (const char* name : {"/etc/passwd", "/bin/tool"}) {
    SCOPED_TRACE(name);
    auto truth = testing::ground_truth(root_.string() + name);
    const FileRecord& r = snap.files.at(root_.string() + name);
    EXPECT_EQ(r.size, truth->size);
    EXPECT_EQ(r.sha256, truth->sha256);
    EXPECT_EQ(r.sha512, truth->sha512);
    EXPECT_FALSE(r.collected.has(Property::kPermissions));
  }
  // The file API follows the link: its content is the target's.
  EXPECT_EQ(snap.files.at(root_.string() + "/etc/link").sha256,
            testing::ground_truth(root_.string() + "/etc/passwd")->sha256);
  EXPECT_NE(snap.files.at(root_.string() + "/etc").error.find("directory"), std::string::npos);
  EXPECT_FALSE(snap.files.contains(root_.string() + "/absent"));
  EXPECT_TRUE(first.report.not_collected.has(Property::kPermissions));
  EXPECT_TRUE(first.report.not_collected.has(Property::kInode));
  EXPECT_FALSE(first.report.not_collected.has(Property::kSha256));

  std::filesystem::resize_file(root_ / "logs" / "audit.log", 10);
  write_file(root_ / "bin" / "tool", "replaced");
  Measurement second = measure_guest(c, policy_, &snap, {});
  ASSERT_TRUE(second.snapshot);
  std::map<std::string, std::vector<PropertyChange>> changes;
  for (const auto& ch : second.report.changes) changes[ch.path] = ch.changes;
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[root_.string() + "/logs/audit.log"].at(0).property, Property::kGrowing);
  EXPECT_EQ(changes[root_.string() + "/bin/tool"].size(), 3u);  // size, SHA-256, SHA-512
}

TEST_F(ContentCollectorTest, ForcingTheBulkCollectorNamesTheBlockedCommand) {
  qga::Client c = client();
  MeasureOptions options;
  options.collector = CollectorChoice::kBulk;
  Measurement m = measure_guest(c, policy_, nullptr, options);
  EXPECT_FALSE(m.snapshot);
  ASSERT_EQ(m.report.errors.size(), 1u);
  EXPECT_NE(m.report.errors[0].find("command-disabled"), std::string::npos) << m.report.errors[0];
  EXPECT_NE(m.report.errors[0].find("guest-exec"), std::string::npos);
  EXPECT_EQ(m.report.exit_code(), 8);
}

// The file commands blocked but guest-exec allowed: the session reads the boot id through
// guest-exec and the bulk collector works as usual.
class NoFileCommandsTest : public CollectorTest {
 protected:
  std::vector<std::string> blocked() const override {
    return {"guest-file-open", "guest-file-read", "guest-file-close"};
  }
};

TEST_F(NoFileCommandsTest, BulkStillMeasuresAndTheSessionHasABootId) {
  qga::Client c = client();
  Measurement m = measure_guest(c, policy_, nullptr, {});
  ASSERT_TRUE(m.snapshot) << m.report.errors.front();
  EXPECT_EQ(m.snapshot->collector, "bulk");
  EXPECT_EQ(m.snapshot->files.size(), governed_paths().size());
  EXPECT_TRUE(c.check_same_boot());
}

class NothingAllowedTest : public CollectorTest {
 protected:
  std::vector<std::string> blocked() const override {
    return {"guest-exec", "guest-exec-status", "guest-file-open", "guest-file-read",
            "guest-file-close"};
  }
};

TEST_F(NothingAllowedTest, NoCollectorIsAClearError) {
  qga::Client c = client();
  auto collector = choose_collector(c);
  ASSERT_FALSE(collector);
  EXPECT_EQ(collector.error().code, qga::Errc::kCommandDisabled);
  EXPECT_NE(collector.error().message.find("neither guest-exec nor"), std::string::npos);
}

}  // namespace
}  // namespace mchain::measure
