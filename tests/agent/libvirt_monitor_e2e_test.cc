// LibvirtMonitor against a private libvirtd (tests/guest/libvirt_host.h, needs root): events over
// a real remote connection, the daemon killed and restarted, changes made while the monitor was
// cut off found by the resync, and the test guest's agent connecting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "agent/libvirt_monitor.h"
#include "guest/libvirt_host.h"
#include "monitor_recorder.h"
#include "temp_dir.h"

namespace {

namespace fs = std::filesystem;
using mchain::agent::DomainState;
using mchain::agent::LibvirtMonitor;
using mchain::agent::LibvirtMonitorOptions;
using mchain::agent::Lifecycle;
using mchain::agent::MonitorEventKind;
using mchain::testing::is_kind;
using mchain::testing::is_lifecycle;
using mchain::testing::LibvirtHost;
using mchain::testing::MonitorRecorder;
using mchain::testing::TempDir;
using namespace std::chrono_literals;

// A domain that can be defined (not started): the QEMU driver checks the emulator only.
std::string small_domain_xml(const std::string& name, const std::string& owner) {
  return "<domain type='qemu'>\n  <name>" + name +
         "</name>\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n"
         "  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
         "  <metadata><mchain:owner xmlns:mchain='" +
         std::string(mchain::agent::kMetadataNamespace) + "'>" + owner +
         "</mchain:owner></metadata>\n</domain>\n";
}

void define(const LibvirtHost& host, const fs::path& dir, const std::string& name,
            const std::string& owner) {
  const fs::path xml = dir / (name + ".xml");
  std::ofstream(xml) << small_domain_xml(name, owner);
  auto defined = host.virsh({"define", xml.string()});
  ASSERT_EQ(defined.status, 0) << defined.output << host.logs();
}

LibvirtMonitorOptions options_for(const fs::path& socket) {
  LibvirtMonitorOptions options;
  options.uri = "qemu+unix:///system?socket=" + socket.string();
  options.initial_backoff = 100ms;
  options.max_backoff = 500ms;
  return options;
}

TEST(LibvirtMonitorE2e, ReconnectsAfterTheDaemonRestartsAndResyncs) {
  if (auto why = mchain::testing::libvirt_host_unavailable(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp("mchain-lvmon");
  auto host = LibvirtHost::start(tmp.path() / "h1", "h1");
  ASSERT_TRUE(host) << host.error();

  // The monitor reaches the daemon through a symlink, so that the test can keep it away while
  // it changes things behind its back.
  const fs::path link = tmp.path() / "monitor.sock";
  fs::create_symlink(host->socket(), link);
  MonitorRecorder recorder;
  LibvirtMonitor monitor(options_for(link), recorder.consumer());
  ASSERT_TRUE(monitor.start());
  auto first = recorder.next(is_kind(MonitorEventKind::kResyncComplete), 60s);
  ASSERT_TRUE(first) << monitor.last_error();
  EXPECT_EQ(first->connection, 1u);
  EXPECT_EQ(first->domains, 0u);
  EXPECT_TRUE(monitor.metrics().keepalive);  // a remote connection supports it

  define(*host, tmp.path(), "d1", "alice");
  auto d1 = recorder.next(is_lifecycle("d1", Lifecycle::kDefined));
  ASSERT_TRUE(d1) << recorder.dump();
  EXPECT_EQ(d1->detail, VIR_DOMAIN_EVENT_DEFINED_ADDED);
  ASSERT_TRUE(d1->domain.owner) << d1->domain.owner_error;
  EXPECT_EQ(d1->domain.owner->user, "alice");
  ASSERT_TRUE(d1->domain.state);
  EXPECT_EQ(*d1->domain.state, DomainState::kShutoff);
  define(*host, tmp.path(), "d2", "bob");
  ASSERT_TRUE(recorder.next(is_lifecycle("d2", Lifecycle::kDefined))) << recorder.dump();

  // The daemon dies; the monitor notices at once (EOF on its socket) and keeps trying, in vain
  // while the link is gone.
  fs::remove(link);
  ASSERT_EQ(::kill(host->pid(), SIGKILL), 0);
  auto lost = recorder.next(is_kind(MonitorEventKind::kDisconnected), 30s);
  ASSERT_TRUE(lost) << recorder.dump();
  EXPECT_EQ(lost->connection, 1u);
  EXPECT_FALSE(monitor.connected());
  host->stop();  // reaps it
  const std::size_t seen = recorder.size();

  auto restarted = LibvirtHost::start(tmp.path() / "h1", "h1");  // same dir: same definitions
  ASSERT_TRUE(restarted) << restarted.error();
  auto undefined = restarted->virsh({"undefine", "d2"});
  ASSERT_EQ(undefined.status, 0) << undefined.output;
  define(*restarted, tmp.path(), "d3", "carol");
  std::this_thread::sleep_for(300ms);  // a few failed attempts
  EXPECT_FALSE(monitor.connected());
  EXPECT_GE(monitor.metrics().connect_failures, 1u);
  EXPECT_EQ(recorder.size(), seen) << recorder.dump();  // nothing while disconnected

  fs::create_symlink(restarted->socket(), link);
  auto second = recorder.next(is_kind(MonitorEventKind::kResyncComplete), 30s);
  ASSERT_TRUE(second) << recorder.dump() << monitor.last_error();
  EXPECT_EQ(second->connection, 2u);
  EXPECT_EQ(second->domains, 2u);
  std::map<std::string, std::string> owners;
  for (const auto& event : recorder.resync_of(second->connection)) {
    owners[event.domain.name] = event.domain.owner ? event.domain.owner->user : "?";
  }
  EXPECT_EQ(owners, (std::map<std::string, std::string>{{"d1", "alice"}, {"d3", "carol"}}))
      << recorder.dump();
  EXPECT_TRUE(monitor.connected());
  auto metrics = monitor.metrics();
  EXPECT_EQ(metrics.connects, 2u);
  EXPECT_EQ(metrics.reconnects, 1u);
  EXPECT_EQ(metrics.disconnects, 1u);
  EXPECT_EQ(metrics.resyncs, 2u);

  // Events flow on the new connection.
  auto undefine_d1 = restarted->virsh({"undefine", "d1"});
  ASSERT_EQ(undefine_d1.status, 0) << undefine_d1.output;
  auto gone = recorder.next(is_lifecycle("d1", Lifecycle::kUndefined));
  ASSERT_TRUE(gone) << recorder.dump();
  EXPECT_EQ(gone->connection, second->connection);
  EXPECT_EQ(gone->domain.uuid, d1->domain.uuid);

  auto before = std::chrono::steady_clock::now();
  monitor.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
  std::cout << "events:\n" << recorder.dump();
}

TEST(LibvirtMonitorE2e, GuestStartAndItsAgentConnecting) {
  if (auto why = mchain::testing::libvirt_host_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto guest_dir = mchain::testing::test_guest_dir();
  if (!guest_dir) GTEST_SKIP() << "test guest not built (the test_guest target)";
  TempDir tmp("mchain-lvmon");
  auto host = LibvirtHost::start(tmp.path() / "h1", "h1");
  ASSERT_TRUE(host) << host.error();

  MonitorRecorder recorder;
  LibvirtMonitor monitor(options_for(host->socket()), recorder.consumer());
  ASSERT_TRUE(monitor.start());
  ASSERT_TRUE(recorder.next(is_kind(MonitorEventKind::kResyncComplete), 60s))
      << monitor.last_error();

  const fs::path xml = tmp.path() / "guest.xml";
  std::ofstream(xml) << mchain::testing::test_guest_domain_xml("guest", *guest_dir,
                                                               tmp.path() / "console.log");
  ASSERT_EQ(host->virsh({"define", xml.string()}).status, 0) << host->logs();
  auto owner = host->virsh({"metadata", "guest", std::string(mchain::agent::kMetadataNamespace),
                            "--key", "mchain", "--set", "<owner>dave</owner>", "--config"});
  ASSERT_EQ(owner.status, 0) << owner.output;
  auto start = host->virsh({"start", "guest"});
  ASSERT_EQ(start.status, 0) << start.output << host->logs();

  auto started = recorder.next(is_lifecycle("guest", Lifecycle::kStarted), 60s);
  ASSERT_TRUE(started) << recorder.dump();
  EXPECT_EQ(started->detail, VIR_DOMAIN_EVENT_STARTED_BOOTED);
  EXPECT_GT(started->domain.id, 0);
  ASSERT_TRUE(started->domain.owner) << started->domain.owner_error;
  EXPECT_EQ(started->domain.owner->user, "dave");

  // The guest boots under TCG and its qemu-ga opens the channel.
  auto agent = recorder.next(
      [](const mchain::agent::MonitorEvent& event) {
        return event.kind == MonitorEventKind::kAgentLifecycle && event.domain.name == "guest" &&
               event.agent_connected;
      },
      180s);
  ASSERT_TRUE(agent) << recorder.dump() << "\nconsole:\n"
                     << mchain::testing::guest_detail::file_tail(tmp.path() / "console.log");
  EXPECT_EQ(agent->agent_reason, VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_REASON_CHANNEL);

  ASSERT_EQ(host->virsh({"destroy", "guest"}).status, 0);
  auto stopped = recorder.next(is_lifecycle("guest", Lifecycle::kStopped), 30s);
  ASSERT_TRUE(stopped) << recorder.dump();
  EXPECT_EQ(stopped->detail, VIR_DOMAIN_EVENT_STOPPED_DESTROYED);
  monitor.stop();
  std::cout << "events:\n" << recorder.dump();
}

}  // namespace
