// LibvirtMonitor: follows one libvirt connection (SPEC §10) and reports what happens to its
// domains: a full resync of every domain at each (re)connect, then lifecycle, guest-agent and
// metadata events as they come. See docs/libvirt-monitor.md.
//
//   LibvirtMonitor monitor({.uri = "qemu:///system"}, [&](const MonitorEvent& event) {
//     queue.push(event);  // must not block: see Consumer
//   });
//   if (auto started = monitor.start(); !started) ...
//
// Threads: libvirt's default event loop runs on one thread per process, shared by all monitors
// (started with the first, stopped with the last). Each monitor has its own worker thread that
// connects, resyncs, reconnects with backoff, and calls the consumer; libvirt's callbacks only
// queue for the worker, so the consumer never runs on libvirt's loop and sees resyncs and events
// in one order.
#pragma once

#include <libvirt/libvirt.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "agent/domain_metadata.h"
#include "chain/error.h"
#include "chain/types.h"
#include "measure/qga/libvirt_glue.h"

namespace mchain::agent {

// RAII for libvirt handles (both are reference counted by libvirt: Close/Free drop one reference).
using LibvirtConnection = measure::qga::Connection;
using LibvirtDomain = measure::qga::Domain;

// virDomainState.
enum class DomainState : int {
  kNoState = VIR_DOMAIN_NOSTATE,
  kRunning = VIR_DOMAIN_RUNNING,
  kBlocked = VIR_DOMAIN_BLOCKED,
  kPaused = VIR_DOMAIN_PAUSED,
  kShutdown = VIR_DOMAIN_SHUTDOWN,  // being shut down
  kShutoff = VIR_DOMAIN_SHUTOFF,
  kCrashed = VIR_DOMAIN_CRASHED,
  kPMSuspended = VIR_DOMAIN_PMSUSPENDED,
};
std::string_view domain_state_name(DomainState state);  // "running", …; "unknown" beyond

// virDomainEventType (VIR_DOMAIN_EVENT_ID_LIFECYCLE).
enum class Lifecycle : int {
  kDefined = VIR_DOMAIN_EVENT_DEFINED,
  kUndefined = VIR_DOMAIN_EVENT_UNDEFINED,
  kStarted = VIR_DOMAIN_EVENT_STARTED,
  kSuspended = VIR_DOMAIN_EVENT_SUSPENDED,
  kResumed = VIR_DOMAIN_EVENT_RESUMED,
  kStopped = VIR_DOMAIN_EVENT_STOPPED,
  kShutdown = VIR_DOMAIN_EVENT_SHUTDOWN,
  kPMSuspended = VIR_DOMAIN_EVENT_PMSUSPENDED,
  kCrashed = VIR_DOMAIN_EVENT_CRASHED,
};
std::string_view lifecycle_name(Lifecycle type);  // "defined", …; "unknown" beyond
// Whether a lifecycle detail means migration: STARTED_MIGRATED (incoming), SUSPENDED_MIGRATED,
// SUSPENDED_POSTCOPY(_FAILED), RESUMED_MIGRATED, RESUMED_POSTCOPY(_FAILED), STOPPED_MIGRATED
// (gone to another host).
bool is_migration_detail(Lifecycle type, int detail);

// One domain as the monitor saw it.
struct DomainInfo {
  Uuid uuid;
  std::string name;
  int id = -1;  // -1 when not running
  // Read from libvirt when the event is delivered (so possibly newer than the event itself);
  // nullopt when it could not be (e.g. the domain is gone).
  std::optional<DomainState> state;
  int state_reason = 0;  // virDomain<State>Reason for `state`
  // nullopt and owner_error empty: no ownership metadata. owner_error set: present but unusable,
  // or it could not be read (domain_metadata.h).
  std::optional<DomainOwner> owner;
  std::string owner_error;
};

// Reads a domain's identity (local), then its state and owner (calls to the daemon). Fails only
// when the domain is gone or libvirt cannot say its state; owner problems go to owner_error.
Result<DomainInfo> describe_domain(virDomainPtr domain);

enum class MonitorEventKind {
  kResync,          // a domain that exists now (one per domain at each (re)connect)
  kResyncComplete,  // the resync of this connection is complete: forget domains it did not name
  kLifecycle,       // VIR_DOMAIN_EVENT_ID_LIFECYCLE
  kAgentLifecycle,  // VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE: the guest agent (dis)connected
  kMetadataChange,  // VIR_DOMAIN_EVENT_ID_METADATA_CHANGE (domain.owner re-read)
  kDisconnected,    // the connection was lost; a resync follows the reconnect
};
std::string_view monitor_event_kind_name(MonitorEventKind kind);

struct MonitorEvent {
  MonitorEventKind kind = MonitorEventKind::kResync;
  // 1 for the first connection, one more for each reconnect (failed attempts do not count).
  // A connection's events come after its kResyncComplete; nothing of an old connection comes
  // after its kDisconnected.
  std::uint64_t connection = 0;
  DomainInfo domain;  // all kinds but kResyncComplete and kDisconnected

  // kLifecycle: type and detail as libvirt sent them (detail: virDomainEvent<Type>DetailType).
  Lifecycle lifecycle = Lifecycle::kDefined;
  int detail = 0;
  bool migration = false;  // is_migration_detail(lifecycle, detail)

  // kAgentLifecycle: connected or disconnected, and why
  // (virConnectDomainEventAgentLifecycleReason).
  bool agent_connected = false;
  int agent_reason = 0;

  // kMetadataChange: virDomainMetadataType and, for elements, the namespace URI.
  int metadata_type = 0;
  std::string metadata_namespace;

  std::size_t domains = 0;  // kResyncComplete: how many kResync preceded it
  std::string reason;       // kDisconnected: why
};

struct LibvirtMonitorOptions {
  std::string uri = "qemu:///system";
  // Reconnect delays: initial_backoff, doubled per failed attempt up to max_backoff, each drawn
  // at random from [d/2, d] so that agents restarted together do not reconnect in step.
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30'000};
  // libvirt keepalive: a probe after `keepalive_interval` s of silence, the connection dropped
  // after `keepalive_count` unanswered ones. 0: off. Drivers without it (test:///) are fine.
  int keepalive_interval = 5;
  unsigned keepalive_count = 5;
  // Besides the close callback, the worker asks virConnectIsAlive this often while idle.
  std::chrono::milliseconds alive_check{1000};
  // Diagnostics (connects, failures, unsupported features), on the worker thread; may be empty.
  std::function<void(std::string_view)> log;
};

struct LibvirtMonitorMetrics {
  std::uint64_t connect_attempts = 0;
  std::uint64_t connect_failures = 0;  // attempts that failed (incl. a failed resync)
  std::uint64_t connects = 0;          // connections that completed their resync
  std::uint64_t reconnects = 0;        // connects after the first
  std::uint64_t disconnects = 0;       // kDisconnected delivered
  std::uint64_t events = 0;            // libvirt events delivered (lifecycle, agent, metadata)
  std::uint64_t resyncs = 0;           // kResyncComplete delivered
  std::uint64_t resync_domains = 0;    // domains in the last resync
  std::uint64_t consumer_exceptions = 0;
  bool keepalive = false;  // the current connection runs libvirt keepalive
};

// Reconnect delay before attempt `attempt` (0-based) of a series; `unit` in [0, 1] picks within
// the jitter range. Exposed for tests.
std::chrono::milliseconds reconnect_delay(const LibvirtMonitorOptions& options, unsigned attempt,
                                          double unit);

class LibvirtMonitor {
 public:
  // Called on the monitor's worker thread, one event at a time, in order. It must not block
  // (hand work to another thread): while it runs, no other event of this monitor is delivered
  // and a lost connection is not noticed. It may call connected(), metrics(), connection(),
  // with_connection() and stop() (the worker then ends after this event, on its own); it must
  // not destroy the monitor. Exceptions it throws are counted (metrics().consumer_exceptions)
  // and dropped.
  using Consumer = std::function<void(const MonitorEvent&)>;

  LibvirtMonitor(LibvirtMonitorOptions options, Consumer consumer);
  ~LibvirtMonitor();  // stop()
  LibvirtMonitor(const LibvirtMonitor&) = delete;
  LibvirtMonitor& operator=(const LibvirtMonitor&) = delete;

  // Starts the worker (and the process's libvirt event loop). Returns at once: the first
  // connection is made on the worker, and failures are retried with backoff (see
  // wait_connected and last_error). Fails only when already started or stopped, or when
  // libvirt's event loop cannot be set up.
  Status start();
  // Stops the worker, closes the connection and releases the event loop; returns as soon as the
  // worker finishes its current libvirt call, if any. Idempotent; no events after it returns.
  void stop();

  // True from the end of a connection's resync until the connection is found lost.
  bool connected() const;
  // Waits until connected(); on timeout the error says why not (the last connect failure).
  Status wait_connected(std::chrono::milliseconds timeout) const;
  LibvirtMonitorMetrics metrics() const;
  std::string last_error() const;  // the last connect or connection failure; "" if none
  const std::string& uri() const;

  // A new reference to the live connection (from the start of its resync), or an Error when
  // there is none. Usable from any thread; stays valid if the monitor drops the connection, but
  // libvirt calls on it fail once the daemon is gone.
  Result<LibvirtConnection> connection() const;

  // fn(virConnectPtr) on the live connection, on the calling thread. Returns fn's result as a
  // Result (fn's own Result/Status is passed through), or an Error when not connected.
  template <class F>
  auto with_connection(F&& fn) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

namespace monitor_detail {
template <class T>
struct IsResult : std::false_type {};
template <class T>
struct IsResult<std::expected<T, Error>> : std::true_type {};
}  // namespace monitor_detail

template <class F>
auto LibvirtMonitor::with_connection(F&& fn) const {
  using R = std::invoke_result_t<F&, virConnectPtr>;
  using Out = std::conditional_t<monitor_detail::IsResult<R>::value, R, Result<R>>;
  auto live = connection();
  if (!live) return Out(std::unexpected(live.error()));
  if constexpr (std::is_void_v<R>) {
    std::invoke(fn, live->get());
    return Out();
  } else {
    return Out(std::invoke(fn, live->get()));
  }
}

}  // namespace mchain::agent
