// Measuring files inside a real guest: the test guest (tests/guest/build-guest.sh) boots under
// QEMU with TCG, and mchain measures its fixture tree through qemu-ga on the chardev socket,
// checked against the manifest the guest was built from.
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <map>
#include <sstream>

#include "chain/crypto/hash.h"
#include "guest/guest_vm.h"
#include "guest/libvirt_host.h"
#include "measure/measurement.h"
#include "temp_dir.h"

namespace mchain::measure {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::GuestVm;
using testing::TempDir;

// Generous: TCG on a loaded CI machine, possibly next to another test's guest.
constexpr auto kAgentTimeout = 60s;

class GuestMeasureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::test_guest_dir();
    if (!dir) GTEST_SKIP() << "the test guest was not built (target test_guest)";
    guest_dir_ = *dir;
    manifest_ = mchain::testing::read_guest_manifest(guest_dir_ / "manifest.txt");
    ASSERT_FALSE(manifest_.empty());
    auto vm = GuestVm::boot(guest_dir_, run_.path());
    ASSERT_TRUE(vm) << vm.error();
    vm_.emplace(std::move(*vm));
    ASSERT_TRUE(vm_->wait_for_agent(kAgentTimeout))
        << "agent did not answer; console:\n"
        << testing::guest_detail::file_tail(vm_->console_log());
  }

  qga::Client client(qga::ClientOptions options = {}) {
    auto transport = qga::connect_unix_socket(vm_->qga_socket());
    EXPECT_TRUE(transport) << transport.error().message;
    return qga::Client(std::move(*transport), options);
  }

  static MeasureOptions named() {
    MeasureOptions options;
    options.vm = "test-guest";
    return options;
  }

  Policy policy(const std::string& text) {
    auto p = parse_policy(text, "guest.pol");
    EXPECT_TRUE(p) << p.error().message;
    return p ? std::move(*p) : Policy{};
  }

  std::string exec(qga::Client& c, const std::string& script) {
    auto run = c.exec("/bin/sh", {"-c", script});
    EXPECT_TRUE(run) << run.error().message;
    if (!run) return {};
    EXPECT_EQ(run->exit_code, 0) << std::string(run->err.begin(), run->err.end());
    return std::string(run->out.begin(), run->out.end());
  }

  TempDir run_{"guest-measure"};
  fs::path guest_dir_;
  std::map<std::string, std::vector<std::string>> manifest_;
  std::optional<GuestVm> vm_;
};

TEST_F(GuestMeasureTest, BulkCollectorSeesTheManifestAndEveryLaterChange) {
  Policy p = policy(
      "/etc -> $(IgnoreNone) -a (rulename = config, severity = 100);\n"
      "/var/log -> $(Growing) (rulename = logs, severity = 10);\n"
      "/opt -> +pinugtsdbm+sha256 (rulename = opt, severity = 50);\n");
  qga::Client c = client();
  Measurement first = measure_guest(c, p, nullptr, named());
  ASSERT_TRUE(first.snapshot) << first.report.errors.front();
  const Snapshot& base = *first.snapshot;
  EXPECT_EQ(base.collector, "bulk");
  EXPECT_TRUE(first.report.baseline_created);
  EXPECT_TRUE(first.report.errors.empty()) << first.report.errors.front();

  // Exactly the manifest's paths, with its types, modes, owners, sizes and hashes.
  std::set<std::string> expected, got;
  for (const auto& [path, row] : manifest_) expected.insert(path);
  for (const auto& [path, record] : base.files) got.insert(path);
  EXPECT_EQ(got, expected);
  for (const auto& [path, row] : manifest_) {
    SCOPED_TRACE(path);
    auto it = base.files.find(path);
    if (it == base.files.end()) continue;
    const FileRecord& r = it->second;
    const std::string& type = row[1];
    EXPECT_EQ(r.type, type == "f"   ? FileType::kRegular
                      : type == "d" ? FileType::kDirectory
                                    : FileType::kSymlink);
    EXPECT_EQ(property_text(r, Property::kPermissions), row[2]);
    EXPECT_EQ(std::to_string(r.uid), row[3]);
    EXPECT_EQ(std::to_string(r.gid), row[4]);
    if (type == "f") {
      EXPECT_EQ(std::to_string(r.size), row[5]);
      if (!path.starts_with("/var/log")) {
        EXPECT_EQ(to_hex(r.sha256), row[6]);
      }
    } else if (type == "l") {
      EXPECT_EQ(r.link_target, row[6]);
      EXPECT_EQ(r.sha256, crypto::sha256(as_bytes(row[6])));
    }
  }

  // Change the guest the way an intruder or an update would, from inside.
  exec(c,
       "echo 'evil:x:0:0::/:/bin/sh' >> /etc/passwd && chmod 0666 /etc/shadow && "
       "chown 1000:1000 /etc/sudoers && rm /etc/issue.net && echo new > /etc/cron.d/backdoor && "
       "mv /etc/motd /etc/motd.old && ln -sf /tmp/x /etc/localtime && "
       "echo more >> /var/log/app.log && head -c 100 /var/log/app.log > /tmp/l && cat /tmp/l > "
       "/var/log/app.log");
  Measurement second = measure_guest(c, p, &base, named());
  ASSERT_TRUE(second.snapshot) << second.report.errors.front();
  std::map<std::string, std::set<Property>> changed;
  std::map<std::string, ChangeKind> kinds;
  for (const ObjectChange& ch : second.report.changes) {
    kinds[ch.path] = ch.kind;
    for (const PropertyChange& pc : ch.changes) changed[ch.path].insert(pc.property);
  }
  EXPECT_EQ(kinds["/etc/issue.net"], ChangeKind::kRemoved);
  EXPECT_EQ(kinds["/etc/motd"], ChangeKind::kRemoved);
  EXPECT_EQ(kinds["/etc/motd.old"], ChangeKind::kAdded);
  EXPECT_EQ(kinds["/etc/cron.d/backdoor"], ChangeKind::kAdded);
  EXPECT_TRUE(changed["/etc/passwd"].contains(Property::kSha256));
  EXPECT_TRUE(changed["/etc/passwd"].contains(Property::kSize));
  EXPECT_TRUE(changed["/etc/shadow"].contains(Property::kPermissions));
  EXPECT_TRUE(changed["/etc/sudoers"].contains(Property::kUid));
  EXPECT_TRUE(changed["/etc/localtime"].contains(Property::kSha256));
  // The log grew, then shrank below its baseline size: flagged as a growing file that shrank.
  EXPECT_EQ(changed["/var/log/app.log"], (std::set<Property>{Property::kGrowing}));
  EXPECT_EQ(second.report.exit_code(), 1 | 2 | 4);
}

TEST_F(GuestMeasureTest, ContentCollectorStreamsALargeFileAndARebootIsNotData) {
  Policy p = policy("/opt/blob.bin -> +s+sha256+sha512;\n/etc/passwd -> $(ReadOnly);\n");
  MeasureOptions content = named();
  content.collector = CollectorChoice::kContent;
  qga::ClientOptions options;
  // Long enough for the guest to come back within one timeout after a reset under TCG.
  options.command_timeout = 15s;
  qga::Client c = client(options);
  Measurement m = measure_guest(c, p, nullptr, content);
  ASSERT_TRUE(m.snapshot) << m.report.errors.front();
  const FileRecord& blob = m.snapshot->files.at("/opt/blob.bin");
  EXPECT_EQ(std::to_string(blob.size), manifest_["/opt/blob.bin"][5]);
  EXPECT_EQ(to_hex(blob.sha256), manifest_["/opt/blob.bin"][6]);
  EXPECT_EQ(to_hex(m.snapshot->files.at("/etc/passwd").sha256), manifest_["/etc/passwd"][6]);
  EXPECT_TRUE(m.report.not_collected.has(Property::kPermissions));

  // Reset the guest while the 24 MiB file streams in: the run must fail as a reboot, and
  // leave no snapshot that could become a baseline.
  auto reset = std::async(std::launch::async, [this] {
    std::this_thread::sleep_for(700ms);
    return vm_->qmp(R"({"execute": "system_reset"})");
  });
  Measurement during = measure_guest(c, p, &*m.snapshot, content);
  ASSERT_TRUE(reset.get());
  EXPECT_FALSE(during.snapshot);
  ASSERT_FALSE(during.report.errors.empty());
  EXPECT_NE(during.report.errors[0].find("guest-rebooted"), std::string::npos)
      << during.report.errors[0];
  EXPECT_EQ(during.report.exit_code(), 8);

  // After the reboot a new session measures again, and the guest's files are as before. (The
  // reboot check above already saw the new agent answer.)
  Measurement after = measure_guest(c, p, &*m.snapshot, content);
  ASSERT_TRUE(after.snapshot) << after.report.errors.front();
  EXPECT_TRUE(after.report.changes.empty());
}

// The production transport: the guest runs under a private libvirtd and every command goes
// through virDomainQemuAgentCommand, from the library and from `mchainctl measure --domain`.
TEST(LibvirtMeasureTest, BothCollectorsThroughVirDomainQemuAgentCommand) {
  if (::geteuid() != 0) GTEST_SKIP() << "a private libvirtd needs root";
  for (const char* program : {"libvirtd", "virsh"}) {
    if (testing::guest_detail::run_command({"sh", "-c", std::string("command -v ") + program})
            .status != 0) {
      GTEST_SKIP() << "needs libvirt-daemon-driver-qemu and libvirt-clients (scripts/setup.sh)";
    }
  }
  if (testing::guest_detail::run_command({"unshare", "--mount", "--uts", "true"}).status != 0) {
    GTEST_SKIP() << "no mount and UTS namespaces here";
  }
  auto guest_dir = testing::test_guest_dir();
  if (!guest_dir) GTEST_SKIP() << "the test guest was not built (target test_guest)";
  auto manifest = mchain::testing::read_guest_manifest(*guest_dir / "manifest.txt");

  TempDir tmp("libvirt-measure");
  auto host = testing::LibvirtHost::start(tmp.path() / "h1", "h1");
  ASSERT_TRUE(host) << host.error();
  const fs::path xml = tmp.path() / "guest.xml";
  std::ofstream(xml) << testing::test_guest_domain_xml("guest", *guest_dir,
                                                       tmp.path() / "console.log");
  ASSERT_EQ(host->virsh({"define", xml.string()}).status, 0);
  auto started = host->virsh({"start", "guest"});
  ASSERT_EQ(started.status, 0) << started.output;

  // Until the agent runs inside, libvirt answers that it is not connected: our error for it.
  std::optional<qga::Client> client;
  const auto deadline = std::chrono::steady_clock::now() + kAgentTimeout;
  qga::Error last{qga::Errc::kNotConnected, "not tried"};
  while (std::chrono::steady_clock::now() < deadline) {
    auto transport = qga::connect_libvirt(host->uri(), "guest");
    ASSERT_TRUE(transport) << transport.error().message;
    qga::Client c(std::move(*transport));
    auto ping = c.ping();
    if (ping) {
      client.emplace(std::move(c));
      break;
    }
    last = ping.error();
    EXPECT_TRUE(last.code == qga::Errc::kNotConnected || last.code == qga::Errc::kTimeout)
        << qga::errc_name(last.code) << ": " << last.message;
    std::this_thread::sleep_for(250ms);
  }
  ASSERT_TRUE(client) << "agent never answered through libvirt: " << last.message;

  auto p = parse_policy("/etc -> $(ReadOnly) (rulename = config);\n", "libvirt.pol");
  ASSERT_TRUE(p) << p.error().message;
  Measurement bulk = measure_guest(*client, *p, nullptr, {});
  ASSERT_TRUE(bulk.snapshot) << bulk.report.errors.front();
  EXPECT_EQ(bulk.snapshot->collector, "bulk");
  std::size_t etc_entries = 0;
  for (const auto& [path, row] : manifest) etc_entries += path.starts_with("/etc");
  EXPECT_EQ(bulk.snapshot->files.size(), etc_entries);
  EXPECT_EQ(to_hex(bulk.snapshot->files.at("/etc/passwd").sha256), manifest["/etc/passwd"][6]);

  // 24 MiB in 1 MiB reads, each a libvirt round trip under libvirt's 10 MiB reply cap.
  auto blob = parse_policy("/opt/blob.bin -> +s+sha256;\n", "blob.pol");
  ASSERT_TRUE(blob);
  MeasureOptions content;
  content.collector = CollectorChoice::kContent;
  Measurement streamed = measure_guest(*client, *blob, nullptr, content);
  ASSERT_TRUE(streamed.snapshot) << streamed.report.errors.front();
  EXPECT_EQ(to_hex(streamed.snapshot->files.at("/opt/blob.bin").sha256),
            manifest["/opt/blob.bin"][6]);

  // The operator's command, through the same daemon.
  std::ofstream(tmp.path() / "etc.pol") << "/etc -> $(ReadOnly);\n";
  auto cli = testing::guest_detail::run_command(
      {std::string(MCHAIN_BINARY_DIR) + "/agent/mchainctl", "measure", "--connect", host->uri(),
       "--domain", "guest", "--policy", (tmp.path() / "etc.pol").string(), "--baseline",
       (tmp.path() / "etc.base").string(), "--summary"});
  EXPECT_EQ(cli.status, 0) << cli.output;
  EXPECT_NE(cli.output.find("Collector:                    bulk"), std::string::npos) << cli.output;

  // A domain that does not exist is a clear error, not a hang.
  auto missing = qga::connect_libvirt(host->uri(), "no-such-guest");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no-such-guest"), std::string::npos);

  // libvirtd goes away under an open connection: an error, not a SIGPIPE for the process.
  host->stop();
  auto gone = client->ping();
  ASSERT_FALSE(gone);
  EXPECT_EQ(qga::errc_name(gone.error().code), qga::errc_name(qga::Errc::kNotConnected))
      << gone.error().message;
}

}  // namespace
}  // namespace mchain::measure
