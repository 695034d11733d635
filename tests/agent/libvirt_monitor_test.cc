// LibvirtMonitor against libvirt's test driver (test:///default and test:///FILE), in-process:
// resync, lifecycle and metadata events with their details, owners, stop, and bad URIs.
// The test driver's state lives in this process (shared by its connections while any is open),
// so every change goes through the monitor's own connection (with_connection).
#include "agent/libvirt_monitor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libvirt/virterror.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "monitor_recorder.h"
#include "temp_dir.h"

namespace {

using mchain::agent::DomainState;
using mchain::agent::LibvirtConnection;
using mchain::agent::LibvirtDomain;
using mchain::agent::LibvirtMonitor;
using mchain::agent::LibvirtMonitorOptions;
using mchain::agent::Lifecycle;
using mchain::agent::MonitorEvent;
using mchain::agent::MonitorEventKind;
using mchain::agent::OwnerSource;
using mchain::testing::is_kind;
using mchain::testing::is_lifecycle;
using mchain::testing::MonitorRecorder;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

LibvirtMonitorOptions test_options(std::string uri = "test:///default") {
  LibvirtMonitorOptions options;
  options.uri = std::move(uri);
  options.initial_backoff = 50ms;
  options.max_backoff = 400ms;
  return options;
}

std::string last_libvirt_error() {
  virErrorPtr error = virGetLastError();
  return error != nullptr && error->message != nullptr ? error->message : "?";
}

// Runs `action` on domain `name` through the monitor's connection; fails the test if libvirt does.
void on_domain(const LibvirtMonitor& monitor, const std::string& name,
               const std::function<int(virDomainPtr)>& action, const std::string& what) {
  auto done = monitor.with_connection([&](virConnectPtr connection) -> mchain::Status {
    LibvirtDomain domain{virDomainLookupByName(connection, name.c_str())};
    if (!domain) return mchain::fail("lookup " + name + ": " + last_libvirt_error());
    if (action(domain.get()) != 0)
      return mchain::fail(what + " " + name + ": " + last_libvirt_error());
    return {};
  });
  ASSERT_TRUE(done) << done.error().message;
}

const std::string kMchainNs(mchain::agent::kMetadataNamespace);
const std::string kNova11(mchain::agent::kNovaNamespace11);

class LibvirtMonitorTest : public ::testing::Test {
 protected:
  void start(LibvirtMonitorOptions options = test_options()) {
    monitor_ = std::make_unique<LibvirtMonitor>(std::move(options), recorder_.consumer());
    auto started = monitor_->start();
    ASSERT_TRUE(started) << started.error().message;
    auto complete = recorder_.next(is_kind(MonitorEventKind::kResyncComplete));
    ASSERT_TRUE(complete) << "no resync; last error: " << monitor_->last_error() << "\n"
                          << recorder_.dump();
  }

  MonitorRecorder recorder_;
  std::unique_ptr<LibvirtMonitor> monitor_;  // after recorder_: stopped before it goes
};

TEST_F(LibvirtMonitorTest, InitialResyncSeesTheTestDomain) {
  start();
  EXPECT_TRUE(monitor_->connected());
  auto resync = recorder_.resync_of(1);
  ASSERT_EQ(resync.size(), 1u) << recorder_.dump();
  const auto& domain = resync[0].domain;
  EXPECT_EQ(domain.name, "test");
  EXPECT_EQ(domain.id, 1);
  EXPECT_FALSE(domain.uuid.is_nil());
  ASSERT_TRUE(domain.state);
  EXPECT_EQ(*domain.state, DomainState::kRunning);
  EXPECT_FALSE(domain.owner);
  EXPECT_EQ(domain.owner_error, "");

  auto events = recorder_.all();
  ASSERT_EQ(events.size(), 2u) << recorder_.dump();
  EXPECT_EQ(events.back().kind, MonitorEventKind::kResyncComplete);
  EXPECT_EQ(events.back().domains, 1u);
  EXPECT_EQ(events.back().connection, 1u);

  auto metrics = monitor_->metrics();
  EXPECT_EQ(metrics.connect_attempts, 1u);
  EXPECT_EQ(metrics.connects, 1u);
  EXPECT_EQ(metrics.reconnects, 0u);
  EXPECT_EQ(metrics.resyncs, 1u);
  EXPECT_EQ(metrics.resync_domains, 1u);
  EXPECT_EQ(metrics.connect_failures, 0u);
  EXPECT_FALSE(metrics.keepalive);  // the test driver has none; tolerated
  EXPECT_EQ(monitor_->last_error(), "");
}

TEST_F(LibvirtMonitorTest, LifecycleEventsCarryTypeAndDetail) {
  start();
  struct Step {
    std::string what;
    std::function<int(virDomainPtr)> action;
    Lifecycle type;
    int detail;
    DomainState state;
  };
  const Step steps[] = {
      {"destroy", [](virDomainPtr d) { return virDomainDestroy(d); }, Lifecycle::kStopped,
       VIR_DOMAIN_EVENT_STOPPED_DESTROYED, DomainState::kShutoff},
      {"create", [](virDomainPtr d) { return virDomainCreate(d); }, Lifecycle::kStarted,
       VIR_DOMAIN_EVENT_STARTED_BOOTED, DomainState::kRunning},
      {"suspend", [](virDomainPtr d) { return virDomainSuspend(d); }, Lifecycle::kSuspended,
       VIR_DOMAIN_EVENT_SUSPENDED_PAUSED, DomainState::kPaused},
      {"resume", [](virDomainPtr d) { return virDomainResume(d); }, Lifecycle::kResumed,
       VIR_DOMAIN_EVENT_RESUMED_UNPAUSED, DomainState::kRunning},
  };
  for (const Step& step : steps) {
    on_domain(*monitor_, "test", step.action, step.what);
    auto event = recorder_.next(is_lifecycle("test", step.type));
    ASSERT_TRUE(event) << step.what << ":\n" << recorder_.dump();
    EXPECT_EQ(event->detail, step.detail) << step.what;
    EXPECT_FALSE(event->migration) << step.what;
    EXPECT_EQ(event->connection, 1u);
    ASSERT_TRUE(event->domain.state) << step.what;
    EXPECT_EQ(*event->domain.state, step.state) << step.what;
    EXPECT_FALSE(event->domain.uuid.is_nil());
  }

  // save/restore: STOPPED/SAVED and STARTED/RESTORED.
  mchain::testing::TempDir tmp("mchain-monitor");
  const std::string image = (tmp.path() / "test.save").string();
  on_domain(
      *monitor_, "test", [&](virDomainPtr d) { return virDomainSave(d, image.c_str()); }, "save");
  auto saved = recorder_.next(is_lifecycle("test", Lifecycle::kStopped));
  ASSERT_TRUE(saved) << recorder_.dump();
  EXPECT_EQ(saved->detail, VIR_DOMAIN_EVENT_STOPPED_SAVED);
  auto restored = monitor_->with_connection(
      [&](virConnectPtr c) { return virDomainRestore(c, image.c_str()); });
  ASSERT_TRUE(restored);
  EXPECT_EQ(*restored, 0) << last_libvirt_error();
  auto started = recorder_.next(is_lifecycle("test", Lifecycle::kStarted));
  ASSERT_TRUE(started) << recorder_.dump();
  EXPECT_EQ(started->detail, VIR_DOMAIN_EVENT_STARTED_RESTORED);

  // define (with an owner in its XML) and undefine.
  const std::string xml =
      "<domain type='test'><name>extra</name><memory>8192</memory><os><type>hvm</type></os>"
      "<metadata><mchain:owner xmlns:mchain='" +
      kMchainNs + "'>carol</mchain:owner></metadata></domain>";
  auto defined = monitor_->with_connection(
      [&](virConnectPtr c) { return LibvirtDomain(virDomainDefineXML(c, xml.c_str())); });
  ASSERT_TRUE(defined && *defined) << last_libvirt_error();
  auto define_event = recorder_.next(is_lifecycle("extra", Lifecycle::kDefined));
  ASSERT_TRUE(define_event) << recorder_.dump();
  EXPECT_EQ(define_event->detail, VIR_DOMAIN_EVENT_DEFINED_ADDED);
  ASSERT_TRUE(define_event->domain.owner) << define_event->domain.owner_error;
  EXPECT_EQ(define_event->domain.owner->user, "carol");
  EXPECT_EQ(define_event->domain.id, -1);
  ASSERT_TRUE(define_event->domain.state);
  EXPECT_EQ(*define_event->domain.state, DomainState::kShutoff);

  ASSERT_EQ(virDomainUndefine(defined->get()), 0) << last_libvirt_error();
  auto undefine_event = recorder_.next(is_lifecycle("extra", Lifecycle::kUndefined));
  ASSERT_TRUE(undefine_event) << recorder_.dump();
  EXPECT_EQ(undefine_event->detail, VIR_DOMAIN_EVENT_UNDEFINED_REMOVED);
  EXPECT_EQ(undefine_event->domain.uuid, define_event->domain.uuid);
  EXPECT_FALSE(undefine_event->domain.state);  // gone: nothing to read
  EXPECT_FALSE(undefine_event->domain.owner);

  EXPECT_GE(monitor_->metrics().events, 8u);
}

TEST_F(LibvirtMonitorTest, OwnerFromMetadataAndItsChanges) {
  start();
  on_domain(
      *monitor_, "test",
      [](virDomainPtr d) { return mchain::agent::write_domain_owner(d, "alice") ? 0 : -1; },
      "write owner");
  auto changed = recorder_.next(is_kind(MonitorEventKind::kMetadataChange));
  ASSERT_TRUE(changed) << recorder_.dump();
  EXPECT_EQ(changed->domain.name, "test");
  EXPECT_EQ(changed->metadata_type, VIR_DOMAIN_METADATA_ELEMENT);
  EXPECT_EQ(changed->metadata_namespace, kMchainNs);
  ASSERT_TRUE(changed->domain.owner) << changed->domain.owner_error;
  EXPECT_EQ(changed->domain.owner->user, "alice");
  EXPECT_EQ(changed->domain.owner->source, OwnerSource::kMchain);

  // Later events carry it too.
  on_domain(*monitor_, "test", virDomainSuspend, "suspend");
  auto suspended = recorder_.next(is_lifecycle("test", Lifecycle::kSuspended));
  ASSERT_TRUE(suspended && suspended->domain.owner) << recorder_.dump();
  EXPECT_EQ(suspended->domain.owner->user, "alice");

  // Nova's element loses to ours while ours is there, and counts once ours is removed.
  const std::string nova =
      "<instance><name>vm1</name><owner><user uuid='85bd'>bob</user>"
      "<project uuid='0d8e'>demo</project></owner></instance>";
  on_domain(
      *monitor_, "test",
      [&](virDomainPtr d) {
        return virDomainSetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, nova.c_str(), "nova",
                                    kNova11.c_str(), 0);
      },
      "set Nova metadata");
  auto nova_set = recorder_.next(is_kind(MonitorEventKind::kMetadataChange));
  ASSERT_TRUE(nova_set && nova_set->domain.owner) << recorder_.dump();
  EXPECT_EQ(nova_set->metadata_namespace, kNova11);
  EXPECT_EQ(nova_set->domain.owner->user, "alice");

  on_domain(
      *monitor_, "test",
      [](virDomainPtr d) { return mchain::agent::remove_domain_owner(d) ? 0 : -1; },
      "remove owner");
  auto removed = recorder_.next(is_kind(MonitorEventKind::kMetadataChange));
  ASSERT_TRUE(removed && removed->domain.owner) << recorder_.dump();
  EXPECT_EQ(removed->domain.owner->user, "bob");
  EXPECT_EQ(removed->domain.owner->source, OwnerSource::kNova);
  EXPECT_EQ(removed->domain.owner->nova_namespace, kNova11);
  EXPECT_EQ(removed->domain.owner->user_uuid, "85bd");
  EXPECT_EQ(removed->domain.owner->project, "demo");

  // A name that is not a valid id shows as owner_error, not as an owner.
  on_domain(
      *monitor_, "test",
      [](virDomainPtr d) {
        return virDomainSetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, "<owner>a b</owner>", "mchain",
                                    kMchainNs.c_str(), 0);
      },
      "set a bad owner");
  auto bad = recorder_.next(is_kind(MonitorEventKind::kMetadataChange));
  ASSERT_TRUE(bad) << recorder_.dump();
  EXPECT_FALSE(bad->domain.owner);
  EXPECT_THAT(bad->domain.owner_error, HasSubstr("not a valid user id"));

  // describe_domain, as the daemon would use it for a look-up.
  auto described = monitor_->with_connection([](virConnectPtr c) {
    LibvirtDomain domain{virDomainLookupByName(c, "test")};
    return mchain::agent::describe_domain(domain.get());
  });
  ASSERT_TRUE(described) << described.error().message;
  EXPECT_EQ(described->name, "test");
  EXPECT_THAT(described->owner_error, HasSubstr("not a valid user id"));
}

TEST_F(LibvirtMonitorTest, ResyncReportsOwnersFromADriverFile) {
  mchain::testing::TempDir tmp("mchain-monitor");
  const auto node = tmp.path() / "node.xml";
  std::ofstream(node) << "<node>\n"
                         "  <domain type='test'><name>owned</name><memory>8192</memory>"
                         "<os><type>hvm</type></os><metadata><mchain:owner xmlns:mchain='"
                      << kMchainNs
                      << "'>alice</mchain:owner></metadata></domain>\n"
                         "  <domain type='test'><name>nova</name><memory>8192</memory>"
                         "<os><type>hvm</type></os><metadata><nova:instance xmlns:nova='"
                      << kNova11
                      << "'><nova:owner><nova:user uuid='85bd'>bob</nova:user></nova:owner>"
                         "</nova:instance></metadata></domain>\n"
                         "  <domain type='test'><name>broken</name><memory>8192</memory>"
                         "<os><type>hvm</type></os><metadata><mchain:owner xmlns:mchain='"
                      << kMchainNs
                      << "'>x&amp;y</mchain:owner></metadata></domain>\n"
                         "  <domain type='test'><name>nobody</name><memory>8192</memory>"
                         "<os><type>hvm</type></os></domain>\n"
                         "</node>\n";
  start(test_options("test://" + node.string()));
  auto resync = recorder_.resync_of(1);
  ASSERT_EQ(resync.size(), 4u) << recorder_.dump();
  std::map<std::string, MonitorEvent> by_name;
  for (const auto& event : resync) by_name[event.domain.name] = event;
  ASSERT_TRUE(by_name["owned"].domain.owner) << by_name["owned"].domain.owner_error;
  EXPECT_EQ(by_name["owned"].domain.owner->user, "alice");
  ASSERT_TRUE(by_name["nova"].domain.owner) << by_name["nova"].domain.owner_error;
  EXPECT_EQ(by_name["nova"].domain.owner->user, "bob");
  EXPECT_EQ(by_name["nova"].domain.owner->source, OwnerSource::kNova);
  EXPECT_FALSE(by_name["broken"].domain.owner);
  EXPECT_THAT(by_name["broken"].domain.owner_error, HasSubstr("'x&y'"));
  EXPECT_FALSE(by_name["nobody"].domain.owner);
  EXPECT_EQ(by_name["nobody"].domain.owner_error, "");
}

TEST_F(LibvirtMonitorTest, StopIsPromptAndIdempotent) {
  start();
  auto before = Clock::now();
  monitor_->stop();
  EXPECT_LT(Clock::now() - before, 500ms);
  EXPECT_FALSE(monitor_->connected());
  const std::size_t seen = recorder_.size();
  monitor_->stop();
  monitor_->stop();
  EXPECT_EQ(recorder_.size(), seen);  // nothing after stop
  auto after = monitor_->with_connection([](virConnectPtr) {});
  ASSERT_FALSE(after);
  EXPECT_THAT(after.error().message, HasSubstr("not connected"));
  auto again = monitor_->start();
  ASSERT_FALSE(again);
  EXPECT_THAT(again.error().message, HasSubstr("stopped"));
  auto waited = monitor_->wait_connected(10ms);
  ASSERT_FALSE(waited);
}

TEST(LibvirtMonitor, StopWithoutStartAndDoubleStart) {
  LibvirtMonitor never(test_options(), {});
  never.stop();
  never.stop();
  LibvirtMonitor twice(test_options(), {});
  ASSERT_TRUE(twice.start());
  auto second = twice.start();
  ASSERT_FALSE(second);
  EXPECT_THAT(second.error().message, HasSubstr("already started"));
}

TEST(LibvirtMonitor, BadUriIsAClearErrorRetriedWithBackoff) {
  MonitorRecorder recorder;
  LibvirtMonitor monitor(test_options("bogus:///nowhere"), recorder.consumer());
  ASSERT_TRUE(monitor.start());
  auto waited = monitor.wait_connected(300ms);
  ASSERT_FALSE(waited);
  EXPECT_THAT(waited.error().message, HasSubstr("cannot connect to libvirt at bogus:///nowhere"));
  EXPECT_THAT(monitor.last_error(), HasSubstr("bogus:///nowhere"));
  EXPECT_FALSE(monitor.connected());

  std::this_thread::sleep_for(1200ms);
  // Delays 25-50, 50-100, 100-200, 200-400, then 200-400 ms: about 6-10 attempts in 1.5 s.
  auto metrics = monitor.metrics();
  EXPECT_GE(metrics.connect_attempts, 4u);
  EXPECT_LE(metrics.connect_attempts, 12u) << "not backing off";
  EXPECT_EQ(metrics.connect_failures, metrics.connect_attempts);
  EXPECT_EQ(metrics.connects, 0u);
  EXPECT_EQ(recorder.size(), 0u);  // no events without a connection

  // stop() interrupts a backoff wait.
  auto before = Clock::now();
  monitor.stop();
  EXPECT_LT(Clock::now() - before, 200ms);
}

TEST(LibvirtMonitor, MissingDriverFileIsAnErrorToo) {
  LibvirtMonitor monitor(test_options("test:///nonexistent/mchain-node.xml"), {});
  ASSERT_TRUE(monitor.start());
  auto waited = monitor.wait_connected(300ms);
  ASSERT_FALSE(waited);
  EXPECT_THAT(waited.error().message, HasSubstr("test:///nonexistent/mchain-node.xml"));
}

TEST(LibvirtMonitor, ConsumerExceptionsAreCountedAndDropped) {
  MonitorRecorder recorder;
  auto record = recorder.consumer();
  LibvirtMonitor monitor(test_options(), [&](const MonitorEvent& event) {
    record(event);
    if (event.kind == MonitorEventKind::kResync) throw std::runtime_error("consumer bug");
  });
  ASSERT_TRUE(monitor.start());
  ASSERT_TRUE(recorder.next(is_kind(MonitorEventKind::kResyncComplete))) << recorder.dump();
  EXPECT_EQ(monitor.metrics().consumer_exceptions, 1u);
  EXPECT_TRUE(monitor.connected());
}

TEST(LibvirtMonitor, TwoMonitorsShareTheEventLoop) {
  MonitorRecorder first_events;
  MonitorRecorder second_events;
  auto first = std::make_unique<LibvirtMonitor>(test_options(), first_events.consumer());
  LibvirtMonitor second(test_options(), second_events.consumer());
  ASSERT_TRUE(first->start());
  ASSERT_TRUE(second.start());
  ASSERT_TRUE(first_events.next(is_kind(MonitorEventKind::kResyncComplete)));
  ASSERT_TRUE(second_events.next(is_kind(MonitorEventKind::kResyncComplete)));
  first->stop();
  first.reset();
  // The loop still runs for the second.
  on_domain(second, "test", virDomainDestroy, "destroy");
  auto stopped = second_events.next(is_lifecycle("test", Lifecycle::kStopped));
  ASSERT_TRUE(stopped) << second_events.dump();
  EXPECT_EQ(stopped->detail, VIR_DOMAIN_EVENT_STOPPED_DESTROYED);
}

TEST(LibvirtMonitor, MonitorsComeAndGo) {
  // The shared event loop stops with the last monitor and starts again with the next.
  for (int round = 0; round < 5; ++round) {
    MonitorRecorder recorder;
    LibvirtMonitor monitor(test_options(), recorder.consumer());
    ASSERT_TRUE(monitor.start());
    ASSERT_TRUE(recorder.next(is_kind(MonitorEventKind::kResyncComplete))) << round;
    on_domain(monitor, "test", virDomainSuspend, "suspend");
    ASSERT_TRUE(recorder.next(is_lifecycle("test", Lifecycle::kSuspended))) << round;
  }
}

TEST(LibvirtMonitor, WithConnectionPassesResultsThrough) {
  MonitorRecorder recorder;
  LibvirtMonitor monitor(test_options(), recorder.consumer());
  ASSERT_TRUE(monitor.start());
  ASSERT_TRUE(monitor.wait_connected(10s));
  auto plain = monitor.with_connection([](virConnectPtr c) { return virConnectNumOfDomains(c); });
  static_assert(std::is_same_v<decltype(plain), mchain::Result<int>>);
  ASSERT_TRUE(plain);
  EXPECT_EQ(*plain, 1);
  auto nested = monitor.with_connection(
      [](virConnectPtr) -> mchain::Result<int> { return mchain::fail("inner"); });
  static_assert(std::is_same_v<decltype(nested), mchain::Result<int>>);
  ASSERT_FALSE(nested);
  EXPECT_EQ(nested.error().message, "inner");
  // A reference outlives the monitor's use of it.
  auto connection = monitor.connection();
  ASSERT_TRUE(connection);
  monitor.stop();
  EXPECT_EQ(virConnectNumOfDomains(connection->get()), 1);
}

TEST(LibvirtMonitor, ConsumerMayUseTheConnectionAndStopTheMonitor) {
  std::mutex mutex;
  std::condition_variable done;
  int domains = -1;
  bool stopped = false;
  LibvirtMonitor* self = nullptr;
  LibvirtMonitor monitor(test_options(), [&](const MonitorEvent& event) {
    if (event.kind != MonitorEventKind::kResyncComplete) return;
    auto count = self->with_connection([](virConnectPtr c) { return virConnectNumOfDomains(c); });
    self->stop();  // from the consumer: returns without joining itself
    std::lock_guard lock(mutex);
    domains = count ? *count : -2;
    stopped = true;
    done.notify_all();
  });
  self = &monitor;
  ASSERT_TRUE(monitor.start());
  std::unique_lock lock(mutex);
  ASSERT_TRUE(done.wait_for(lock, 10s, [&] { return stopped; }));
  EXPECT_EQ(domains, 1);
}

}  // namespace
