// Baselines and reports: the comparison rules, the exit bitmask, the encodings and the text.
#include "measure/report/report.h"

#include <gtest/gtest.h>

namespace mchain::measure {
namespace {

Rule rule(std::string path, PropertySet mask, std::string name, std::uint32_t severity) {
  Rule r;
  r.path = std::move(path);
  r.mask = mask;
  r.name = std::move(name);
  r.severity = severity;
  return r;
}

PropertySet letters(std::string_view s) {
  PropertySet set;
  for (char c : s) {
    for (std::size_t i = 0; i < kPropertyCount; ++i) {
      auto p = static_cast<Property>(i);
      if (property_code(p).size() == 1 && property_code(p)[0] == c) set.add(p);
    }
  }
  return set;
}

FileRecord file(std::uint64_t size, std::uint32_t mode, std::uint8_t content) {
  FileRecord r;
  r.type = FileType::kRegular;
  r.size = size;
  r.mode = mode;
  r.inode = 100;
  r.mtime = 1'700'000'000;
  r.sha256.fill(content);
  r.collected = PropertySet::all();
  return r;
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p =
        Policy::from_parts({rule("/etc", letters("pinugtsm").add(Property::kSha256), "config", 100),
                            rule("/var/log", letters("pugtl"), "logs", 30)},
                           {});
    ASSERT_TRUE(p) << p.error().message;
    policy_ = std::move(*p);
    base_ = snapshot();
    base_.files["/etc/passwd"] = file(100, 0644, 1);
    base_.files["/etc/gone"] = file(5, 0644, 2);
    base_.files["/var/log/app.log"] = file(1000, 0640, 3);
    base_.files["/var/log/shrinks.log"] = file(1000, 0640, 4);
  }

  Snapshot snapshot() const {
    Snapshot s;
    s.vm = "web1";
    s.collector = "bulk";
    s.collectable = PropertySet::all();
    s.policy_hash = policy_.hash();
    s.started = 1'700'000'000'000'000;
    s.finished = s.started + 250'000;
    return s;
  }

  Policy policy_;
  Snapshot base_;
};

TEST_F(ReportTest, FirstRunRecordsABaseline) {
  Report r = compare(policy_, nullptr, base_);
  EXPECT_TRUE(r.baseline_created);
  EXPECT_TRUE(r.changes.empty());
  EXPECT_EQ(r.objects_scanned, 4u);
  EXPECT_EQ(r.exit_code(), 0);
}

TEST_F(ReportTest, AddedRemovedChangedWithRuleAndSeverity) {
  Snapshot now = base_;
  now.files.erase("/etc/gone");
  now.files["/etc/new"] = file(1, 0600, 9);
  now.files["/etc/passwd"].mode = 0666;
  now.files["/etc/passwd"].sha256.fill(7);
  now.files["/etc/passwd"].atime = 5;           // not in the mask: not a change
  now.files["/var/log/app.log"].size = 5000;    // growing: fine
  now.files["/var/log/shrinks.log"].size = 10;  // growing file shrank: flagged
  Report r = compare(policy_, &base_, now);
  ASSERT_EQ(r.changes.size(), 4u);
  EXPECT_EQ(r.changes[0], (ObjectChange{ChangeKind::kRemoved, "/etc/gone", "config", 100, {}}));
  EXPECT_EQ(r.changes[1], (ObjectChange{ChangeKind::kAdded, "/etc/new", "config", 100, {}}));
  ASSERT_EQ(r.changes[2].path, "/etc/passwd");
  EXPECT_EQ(r.changes[2].kind, ChangeKind::kChanged);
  ASSERT_EQ(r.changes[2].changes.size(), 2u);
  EXPECT_EQ(r.changes[2].changes[0], (PropertyChange{Property::kPermissions, "0644", "0666"}));
  EXPECT_EQ(r.changes[2].changes[1].property, Property::kSha256);
  EXPECT_EQ(r.changes[2].changes[1].old_value, to_hex(file(0, 0, 1).sha256));
  EXPECT_EQ(r.changes[3], (ObjectChange{ChangeKind::kChanged,
                                        "/var/log/shrinks.log",
                                        "logs",
                                        30,
                                        {{Property::kGrowing, "1000", "10"}}}));
  EXPECT_EQ(r.count(ChangeKind::kAdded), 1u);
  EXPECT_EQ(r.exit_code(), 1 | 2 | 4);
}

TEST_F(ReportTest, OnlyPropertiesBothRunsCollectedAreCompared) {
  Snapshot now = base_;
  FileRecord& f = now.files["/etc/passwd"];
  f.size = 999;
  restrict_to(f, PropertySet().add(Property::kSha256));  // size not collected this time
  Report r = compare(policy_, &base_, now);
  EXPECT_TRUE(r.changes.empty());
}

TEST_F(ReportTest, BaselineUnderAnotherPolicyOrCollectorIsAnErrorNotAComparison) {
  Snapshot other = base_;
  other.policy_hash.fill(0xee);
  Report r = compare(policy_, &other, base_);
  EXPECT_TRUE(r.changes.empty());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("another policy"), std::string::npos);
  EXPECT_EQ(r.exit_code(), 8);

  other = base_;
  other.collector = "content";
  r = compare(policy_, &other, base_);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("content collector"), std::string::npos);
}

TEST_F(ReportTest, WarningsAndUnreadableFilesAreErrors) {
  Snapshot now = base_;
  now.warnings.push_back("guest: find: '/etc/x': Permission denied");
  now.files["/etc/passwd"].error = "content could not be read";
  Report r = compare(policy_, &base_, now);
  EXPECT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.exit_code(), 8);
}

TEST_F(ReportTest, FailedRunCarriesTheErrorOnly) {
  Report r = failed_run(policy_, "web1", "bulk", 1, "not-connected: no agent");
  EXPECT_EQ(r.exit_code(), 8);
  EXPECT_EQ(r.policy_hash, policy_.hash());
}

TEST_F(ReportTest, CborRoundTripAndStrictDecoding) {
  Snapshot now = base_;
  now.files.erase("/etc/gone");
  now.files["/etc/new\nline"] = file(1, 0600, 9);
  now.files["/var/log/shrinks.log"].size = 10;
  now.warnings.push_back("w");
  Report r = compare(policy_, &base_, now);
  Bytes encoded = encode_report(r);
  auto decoded = decode_report(encoded);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(*decoded, r);
  EXPECT_EQ(encode_report(*decoded), encoded);
  for (std::size_t cut = 0; cut < encoded.size(); ++cut) {
    EXPECT_FALSE(decode_report(ByteView(encoded).first(cut))) << "cut at " << cut;
  }
  Bytes longer = encoded;
  longer.push_back(0);
  EXPECT_FALSE(decode_report(longer));
}

TEST_F(ReportTest, SnapshotCborRoundTripAndStrictDecoding) {
  base_.files["/etc/link"] = file(0, 0777, 0);
  base_.files["/etc/link"].type = FileType::kSymlink;
  base_.files["/etc/link"].link_target = "passwd";
  base_.files["/etc/odd\xff"] = file(3, 0600, 5);
  base_.files["/etc/old"] = file(3, 0600, 5);
  base_.files["/etc/old"].mtime = -86400;  // before 1970
  base_.warnings.push_back("a warning");
  Bytes encoded = encode_snapshot(base_);
  auto decoded = decode_snapshot(encoded);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->files, base_.files);
  EXPECT_EQ(decoded->warnings, base_.warnings);
  EXPECT_EQ(decoded->policy_hash, base_.policy_hash);
  EXPECT_EQ(encode_snapshot(*decoded), encoded);
  std::size_t rejected = 0;
  for (std::size_t cut = 0; cut < encoded.size(); ++cut) {
    rejected += !decode_snapshot(ByteView(encoded).first(cut));
  }
  EXPECT_EQ(rejected, encoded.size());
  auto garbage = decode_snapshot(as_bytes("not a snapshot"));
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().message.find("snapshot"), std::string::npos);
}

TEST_F(ReportTest, TextEscapesGuestNamesSoTheyCannotForgeLines) {
  Snapshot now = base_;
  now.files["/etc/x\nModified Object: \"/etc/shadow\""] = file(1, 0600, 9);
  Report r = compare(policy_, &base_, now);
  std::string text = report_to_text(r, policy_, ReportLevel::kDetail);
  EXPECT_EQ(text.find("\nModified Object: \"/etc/shadow\""), std::string::npos);
  EXPECT_NE(text.find("/etc/x\\x0aModified Object: \\x22/etc/shadow\\x22"), std::string::npos);
}

TEST_F(ReportTest, TextAndJsonSayWhatChanged) {
  Snapshot now = base_;
  now.files["/etc/passwd"].mode = 0600;
  now.files.erase("/etc/gone");
  Report r = compare(policy_, &base_, now);
  std::string summary = report_to_text(r, policy_, ReportLevel::kSummary);
  EXPECT_NE(summary.find("Total violations found:       2"), std::string::npos) << summary;
  EXPECT_NE(summary.find("* config"), std::string::npos);
  EXPECT_NE(summary.find("Removed:\n\"/etc/gone\""), std::string::npos);
  EXPECT_EQ(summary.find("Object Detail"), std::string::npos);
  std::string detail = report_to_text(r, policy_, ReportLevel::kDetail);
  EXPECT_NE(detail.find("* Permissions          0644\n                       0600"),
            std::string::npos)
      << detail;

  auto json = report_to_json(r);
  EXPECT_EQ(json["removed"], 1);
  EXPECT_EQ(json["changed"], 1);
  EXPECT_EQ(json["exit_code"], 6);
  EXPECT_EQ(json["changes"][1]["properties"][0]["code"], "p");
  EXPECT_EQ(json["changes"][1]["properties"][0]["new"], "0600");
}

}  // namespace
}  // namespace mchain::measure
