#include "agent/libvirt_monitor.h"

#include <libvirt/virterror.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>
#include <vector>

#include "measure/qga/libvirt_glue.h"

namespace mchain::agent {

using measure::qga::ignore_libvirt_error;
using measure::qga::initialize_libvirt;
using measure::qga::LibvirtError;
using measure::qga::take_last_libvirt_error;

namespace {

MonitorEvent make_event(MonitorEventKind kind, std::uint64_t connection) {
  MonitorEvent event;
  event.kind = kind;
  event.connection = connection;
  return event;
}

void name_thread(const char* name) {
  ::pthread_setname_np(::pthread_self(), name);  // best effort, for ps/gdb
}

// libvirt's default event loop is one per process: registered once, ever, and run by one thread
// that lives while some monitor needs it.
class EventLoop {
 public:
  static EventLoop& instance() {
    // Never destroyed: a static destructor could run while a detached monitor still uses it.
    static auto* loop = new EventLoop;
    return *loop;
  }

  Status acquire() {
    std::lock_guard lock(mutex_);
    if (!registered_) {
      initialize_libvirt();
      if (virEventRegisterDefaultImpl() != 0) {
        return fail("cannot set up libvirt's event loop: " + take_last_libvirt_error().message);
      }
      registered_ = true;
    }
    if (users_ == 0) {
      quit_ = false;
      try {
        thread_ = std::thread([this] { run(); });
      } catch (const std::system_error& e) {
        return fail(std::string("cannot start libvirt's event-loop thread: ") + e.what());
      }
    }
    ++users_;
    return {};
  }

  void release() {
    std::lock_guard lock(mutex_);
    if (users_ == 0 || --users_ > 0) return;
    quit_ = true;
    // The loop blocks until something happens: a timeout that fires at once makes it return
    // and see quit_. It removes itself; if the loop had already left, the next start fires it.
    if (virEventAddTimeout(0, wake, nullptr, nullptr) < 0) {
      take_last_libvirt_error();
      thread_.detach();  // cannot wake it: leave it, rather than hang stop()
      return;
    }
    thread_.join();
  }

 private:
  static void wake(int timer, void* /*opaque*/) noexcept { virEventRemoveTimeout(timer); }

  void run() {
    name_thread("mchain-lv-loop");
    while (!quit_.load()) {
      if (virEventRunDefaultImpl() < 0) {
        take_last_libvirt_error();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // no busy loop on errors
      }
    }
  }

  std::mutex mutex_;
  bool registered_ = false;
  unsigned users_ = 0;
  std::thread thread_;
  std::atomic<bool> quit_{false};
};

// libvirt declares one generic callback type for all event ids and casts; going through
// void(*)() keeps GCC's -Wcast-function-type quiet about the intended cast.
template <class Function>
virConnectDomainEventGenericCallback generic_callback(Function* function) {
  return reinterpret_cast<virConnectDomainEventGenericCallback>(
      reinterpret_cast<void (*)()>(function));
}

std::string close_reason_text(int reason) {
  switch (reason) {
    case VIR_CONNECT_CLOSE_REASON_ERROR: return "the connection failed";
    case VIR_CONNECT_CLOSE_REASON_EOF: return "the daemon closed the connection";
    case VIR_CONNECT_CLOSE_REASON_KEEPALIVE: return "the daemon stopped answering keepalives";
    case VIR_CONNECT_CLOSE_REASON_CLIENT: return "the connection was closed by this process";
    default: return "the connection closed (reason " + std::to_string(reason) + ")";
  }
}

// Identity (local to the handle: no call to the daemon), then state and owner (calls). Returns
// the error of a failed state read (code VIR_ERR_OK when there was none); the owner is not read
// then, the domain being gone or out of reach.
LibvirtError describe(virDomainPtr domain, DomainInfo& info) {
  std::array<char, VIR_UUID_STRING_BUFLEN> uuid{};
  if (virDomainGetUUIDString(domain, uuid.data()) == 0) {
    if (auto parsed = Uuid::parse(uuid.data())) info.uuid = *parsed;
  } else {
    take_last_libvirt_error();
  }
  if (const char* name = virDomainGetName(domain); name != nullptr) info.name = name;
  const unsigned int id = virDomainGetID(domain);
  info.id = id == static_cast<unsigned int>(-1) ? -1 : static_cast<int>(id);

  int state = 0;
  int reason = 0;
  if (virDomainGetState(domain, &state, &reason, 0) != 0) return take_last_libvirt_error();
  info.state = static_cast<DomainState>(state);
  info.state_reason = reason;
  if (auto owner = read_domain_owner(domain)) {
    info.owner = std::move(*owner);
  } else {
    info.owner_error = owner.error().message;
  }
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Names

std::string_view domain_state_name(DomainState state) {
  switch (state) {
    case DomainState::kNoState: return "nostate";
    case DomainState::kRunning: return "running";
    case DomainState::kBlocked: return "blocked";
    case DomainState::kPaused: return "paused";
    case DomainState::kShutdown: return "shutdown";
    case DomainState::kShutoff: return "shutoff";
    case DomainState::kCrashed: return "crashed";
    case DomainState::kPMSuspended: return "pmsuspended";
  }
  return "unknown";
}

std::string_view lifecycle_name(Lifecycle type) {
  switch (type) {
    case Lifecycle::kDefined: return "defined";
    case Lifecycle::kUndefined: return "undefined";
    case Lifecycle::kStarted: return "started";
    case Lifecycle::kSuspended: return "suspended";
    case Lifecycle::kResumed: return "resumed";
    case Lifecycle::kStopped: return "stopped";
    case Lifecycle::kShutdown: return "shutdown";
    case Lifecycle::kPMSuspended: return "pmsuspended";
    case Lifecycle::kCrashed: return "crashed";
  }
  return "unknown";
}

bool is_migration_detail(Lifecycle type, int detail) {
  switch (type) {
    case Lifecycle::kStarted: return detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED;
    case Lifecycle::kSuspended:
      return detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED ||
             detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY ||
             detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED;
    case Lifecycle::kResumed:
      return detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED ||
             detail == VIR_DOMAIN_EVENT_RESUMED_POSTCOPY ||
             detail == VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED;
    case Lifecycle::kStopped: return detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED;
    default: return false;
  }
}

std::string_view monitor_event_kind_name(MonitorEventKind kind) {
  switch (kind) {
    case MonitorEventKind::kResync: return "resync";
    case MonitorEventKind::kResyncComplete: return "resync-complete";
    case MonitorEventKind::kLifecycle: return "lifecycle";
    case MonitorEventKind::kAgentLifecycle: return "agent-lifecycle";
    case MonitorEventKind::kMetadataChange: return "metadata-change";
    case MonitorEventKind::kDisconnected: return "disconnected";
  }
  return "unknown";
}

Result<DomainInfo> describe_domain(virDomainPtr domain) {
  DomainInfo info;
  if (LibvirtError error = describe(domain, info); error.code != VIR_ERR_OK) {
    return fail("cannot read the state of domain " + (info.name.empty() ? "?" : info.name) + ": " +
                error.message);
  }
  return info;
}

std::chrono::milliseconds reconnect_delay(const LibvirtMonitorOptions& options, unsigned attempt,
                                          double unit) {
  const double initial =
      static_cast<double>(std::max<long long>(options.initial_backoff.count(), 1));
  const double most =
      std::max(initial, static_cast<double>(std::max<long long>(options.max_backoff.count(), 1)));
  const double base = std::min(most, std::ldexp(initial, static_cast<int>(std::min(attempt, 60u))));
  const double within = std::isfinite(unit) ? std::clamp(unit, 0.0, 1.0) : 1.0;
  const double delay = base / 2 + within * base / 2;
  return std::chrono::milliseconds(std::max<long long>(std::llround(delay), 1));
}

// ---------------------------------------------------------------------------------------------
// The monitor's state: shared between the monitor object, its worker thread and (weakly) the
// libvirt callbacks, which may run on libvirt's loop thread after the monitor let go.

struct LibvirtMonitor::State : std::enable_shared_from_this<State> {
  // What a libvirt callback hands the worker. The domain is a new reference.
  struct Pending {
    MonitorEventKind kind = MonitorEventKind::kLifecycle;
    std::uint64_t generation = 0;  // the session attempt whose callback queued it
    LibvirtDomain domain;
    int type = 0;
    int detail = 0;
    std::string ns;
  };

  // The opaque of each registration. libvirt deletes those of event callbacks (free_context)
  // when they go; the close callback's belongs to its Session.
  struct CallbackContext {
    CallbackContext(std::weak_ptr<State> state_in, std::uint64_t generation_in)
        : state(std::move(state_in)), generation(generation_in) {}
    const std::weak_ptr<State> state;
    const std::uint64_t generation;
    // The close callback ran: libvirt calls it at most once and forgets the pointer after.
    std::atomic<bool> fired{false};
  };

  // One open connection and its registrations, undone in reverse on destruction.
  struct Session {
    LibvirtConnection connection;
    std::vector<int> callbacks;
    // Ours, not libvirt's: drivers without close callbacks (test:///) accept the registration
    // and drop it without ever calling a free function.
    std::unique_ptr<CallbackContext> close_context;
    bool close_callback = false;
    bool keepalive = false;

    Session() = default;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    ~Session() {
      if (!connection) return;
      // On a dead connection these fail (after dropping the callbacks locally): fine.
      for (int id : callbacks) {
        if (virConnectDomainEventDeregisterAny(connection.get(), id) != 0)
          take_last_libvirt_error();
      }
      if (close_callback && virConnectUnregisterCloseCallback(connection.get(), on_close) != 0) {
        take_last_libvirt_error();
        // It fails on a connection that died (the RPC cannot go out), after the callback ran and
        // libvirt dropped the pointer. Otherwise libvirt may still hold it: a few bytes leaked
        // beat a use after free.
        if (!close_context->fired.load()) static_cast<void>(close_context.release());
      }
      connection.reset();
      take_last_libvirt_error();
    }
  };

  State(LibvirtMonitorOptions options_in, Consumer consumer_in)
      : options(std::move(options_in)), consumer(std::move(consumer_in)) {}

  // --- libvirt callbacks: any thread, C callers, so noexcept; they only queue. ---------------

  static void push(void* opaque, MonitorEventKind kind, virDomainPtr domain, int type, int detail,
                   const char* ns) noexcept {
    try {
      auto* context = static_cast<CallbackContext*>(opaque);
      std::shared_ptr<State> state = context->state.lock();
      if (!state || domain == nullptr) return;
      Pending pending;
      pending.kind = kind;
      pending.generation = context->generation;
      pending.type = type;
      pending.detail = detail;
      if (ns != nullptr) pending.ns = ns;
      if (virDomainRef(domain) == 0) pending.domain.reset(domain);
      if (!pending.domain) return;
      std::lock_guard lock(state->mutex);
      if (state->stopping) return;
      state->queue.push_back(std::move(pending));
      state->wake.notify_all();
    } catch (...) {
      // Out of memory: the event is lost, the next resync repairs the consumer's view.
    }
  }

  static int on_lifecycle(virConnectPtr /*connection*/, virDomainPtr domain, int event, int detail,
                          void* opaque) noexcept {
    push(opaque, MonitorEventKind::kLifecycle, domain, event, detail, nullptr);
    return 0;
  }

  static void on_agent(virConnectPtr /*connection*/, virDomainPtr domain, int state, int reason,
                       void* opaque) noexcept {
    push(opaque, MonitorEventKind::kAgentLifecycle, domain, state, reason, nullptr);
  }

  static void on_metadata(virConnectPtr /*connection*/, virDomainPtr domain, int type,
                          const char* ns, void* opaque) noexcept {
    push(opaque, MonitorEventKind::kMetadataChange, domain, type, 0, ns);
  }

  // May run on any thread, even inside another thread's libvirt call on this connection (the
  // remote driver reports a dead socket from wherever it notices): it takes only the state's
  // mutex, which no libvirt call is ever made under.
  static void on_close(virConnectPtr /*connection*/, int reason, void* opaque) noexcept {
    try {
      auto* context = static_cast<CallbackContext*>(opaque);
      std::shared_ptr<State> state = context->state.lock();
      const std::uint64_t generation = context->generation;
      // The last use of `context`: once the worker hears of the loss it may free it.
      context->fired.store(true);
      if (!state) return;
      std::lock_guard lock(state->mutex);
      state->lost_generation = generation;
      state->lost_reason = close_reason_text(reason);
      state->wake.notify_all();
    } catch (...) {
      // The worker's virConnectIsAlive check notices as well.
    }
  }

  static void free_context(void* opaque) noexcept { delete static_cast<CallbackContext*>(opaque); }

  // --- the worker -----------------------------------------------------------------------------

  void run() noexcept {
    name_thread("mchain-lv-mon");
    try {
      loop();
    } catch (...) {
      // Out of memory or a broken invariant: stop following rather than take the process down.
      std::lock_guard lock(mutex);
      last_error = "the libvirt monitor stopped on an internal error";
    }
    unpublish();
    bool release = false;
    {
      std::lock_guard lock(mutex);
      release = release_loop_on_exit;
    }
    if (release) EventLoop::instance().release();
  }

  void loop() {
    std::mt19937_64 random{std::random_device{}()};
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::unique_ptr<Session> session;
    int backoff_step = -1;         // the next attempt's place in the backoff series; -1: try now
    std::uint64_t generation = 0;  // per attempt: tags the callbacks of one session
    std::uint64_t connection = 0;  // per successful open: what events carry

    while (!should_stop()) {
      if (!session) {
        if (backoff_step >= 0 && sleep_unless_stopped(reconnect_delay(
                                     options, static_cast<unsigned>(backoff_step), unit(random)))) {
          break;
        }
        ++generation;
        note_attempt();
        auto opened = open_session(generation);
        if (!opened) {
          note_failure(opened.error().message);
          backoff_step = std::min(backoff_step + 1, 60);
          continue;
        }
        session = std::move(*opened);
        ++connection;
        publish(session->connection.get(), session->keepalive);
        if (auto synced = resync(session->connection.get(), connection); !synced) {
          unpublish();
          session.reset();
          note_failure(synced.error().message);
          backoff_step = std::min(backoff_step + 1, 60);
          continue;
        }
        backoff_step = -1;
        continue;
      }

      std::deque<Pending> batch;
      std::optional<std::string> lost;
      {
        std::unique_lock lock(mutex);
        wake.wait_for(lock, options.alive_check,
                      [&] { return stopping || !queue.empty() || lost_generation == generation; });
        if (stopping) break;
        batch.swap(queue);
        if (lost_generation == generation) lost = lost_reason;
      }
      for (Pending& pending : batch) {
        if (should_stop()) break;
        if (pending.generation == generation) deliver_pending(pending, connection);
      }
      if (should_stop()) break;  // e.g. the consumer called stop(): deliver nothing more
      if (!lost && virConnectIsAlive(session->connection.get()) == 0) {
        lost = "the connection is no longer alive";
      }
      take_last_libvirt_error();
      if (lost) {
        unpublish();
        session.reset();
        {
          std::lock_guard lock(mutex);
          ++metrics.disconnects;
          last_error = "lost the connection to " + options.uri + ": " + *lost;
        }
        log("lost the connection to " + options.uri + ": " + *lost);
        MonitorEvent event = make_event(MonitorEventKind::kDisconnected, connection);
        event.reason = *lost;
        deliver(event);
        backoff_step = 0;  // the daemon is likely restarting: give it a moment first
      }
    }
    if (session) unpublish();
    session.reset();
  }

  Result<std::unique_ptr<Session>> open_session(std::uint64_t generation) {
    const std::string& uri = options.uri;
    LibvirtConnection connection{virConnectOpen(uri.empty() ? nullptr : uri.c_str())};
    if (!connection) {
      return fail("cannot connect to libvirt at " +
                  (uri.empty() ? std::string("the default URI") : uri) + ": " +
                  take_last_libvirt_error().message);
    }
    virConnSetErrorFunc(connection.get(), nullptr, ignore_libvirt_error);
    auto session = std::make_unique<Session>();
    session->connection = std::move(connection);
    virConnectPtr raw = session->connection.get();

    if (options.keepalive_interval > 0) {
      const int set =
          virConnectSetKeepAlive(raw, options.keepalive_interval, options.keepalive_count);
      session->keepalive = set == 0;
      if (set != 0) {
        // -1: the driver has none (test:///, local drivers); 1: the daemon does not support it.
        const std::string why = set < 0 ? take_last_libvirt_error().message
                                        : std::string("the daemon does not support it");
        log("no keepalive on " + uri + ": " + why);
      }
    }

    session->close_context = std::make_unique<CallbackContext>(weak_from_this(), generation);
    if (virConnectRegisterCloseCallback(raw, on_close, session->close_context.get(), nullptr) ==
        0) {
      session->close_callback = true;
    } else {
      log("no close callback on " + uri + ": " + take_last_libvirt_error().message);
    }

    struct Registration {
      int id;
      virConnectDomainEventGenericCallback callback;
      bool required;
      const char* what;
    };
    const std::array<Registration, 3> registrations = {{
        {VIR_DOMAIN_EVENT_ID_LIFECYCLE, generic_callback(on_lifecycle), true, "lifecycle"},
        {VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE, generic_callback(on_agent), false, "agent lifecycle"},
        {VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, generic_callback(on_metadata), false,
         "metadata change"},
    }};
    for (const Registration& registration : registrations) {
      auto* context = new CallbackContext{weak_from_this(), generation};
      const int id = virConnectDomainEventRegisterAny(raw, nullptr, registration.id,
                                                      registration.callback, context, free_context);
      if (id >= 0) {
        session->callbacks.push_back(id);
        continue;
      }
      delete context;  // not taken on failure
      const std::string message = "cannot register for " + std::string(registration.what) +
                                  " events on " + uri + ": " + take_last_libvirt_error().message;
      if (registration.required) return fail(message);
      log(message);
    }
    return session;
  }

  // Every domain now, then the marker. Built completely before anything is delivered, so that
  // a failed resync (the daemon went away again) delivers nothing of it.
  Status resync(virConnectPtr connection, std::uint64_t number) {
    virDomainPtr* listed = nullptr;
    const int count = virConnectListAllDomains(connection, &listed, 0);
    if (count < 0) {
      return fail("cannot list the domains on " + options.uri + ": " +
                  take_last_libvirt_error().message);
    }
    std::vector<LibvirtDomain> domains;
    domains.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) domains.emplace_back(listed[i]);
    std::free(listed);

    std::vector<MonitorEvent> events;
    events.reserve(domains.size());
    for (const LibvirtDomain& domain : domains) {
      MonitorEvent event = make_event(MonitorEventKind::kResync, number);
      const LibvirtError error = describe(domain.get(), event.domain);
      if (error.code == VIR_ERR_NO_DOMAIN) continue;  // gone since the listing; its event is queued
      if (error.code != VIR_ERR_OK && virConnectIsAlive(connection) != 1) break;
      // Otherwise listed with the state unknown: leaving it out would make it look deleted.
      events.push_back(std::move(event));
    }
    if (virConnectIsAlive(connection) != 1) {
      take_last_libvirt_error();
      return fail("lost the connection to " + options.uri + " during the resync");
    }

    for (MonitorEvent& event : events) {
      if (should_stop()) return {};
      deliver(event);
    }
    if (should_stop()) return {};
    // Counted before the marker goes out, so that a consumer seeing it finds connected() true.
    {
      std::lock_guard lock(mutex);
      ++metrics.connects;
      if (number > 1) ++metrics.reconnects;
      ++metrics.resyncs;
      metrics.resync_domains = events.size();
      is_connected = true;
    }
    changed.notify_all();
    MonitorEvent complete = make_event(MonitorEventKind::kResyncComplete, number);
    complete.domains = events.size();
    deliver(complete);
    log("connected to " + options.uri + " (connection " + std::to_string(number) + ", " +
        std::to_string(events.size()) + " domains)");
    return {};
  }

  void deliver_pending(Pending& pending, std::uint64_t number) {
    MonitorEvent event = make_event(pending.kind, number);
    if (pending.kind == MonitorEventKind::kAgentLifecycle) {
      // Identity only: the agent's state is the news, and the domain is busy starting.
      std::array<char, VIR_UUID_STRING_BUFLEN> uuid{};
      if (virDomainGetUUIDString(pending.domain.get(), uuid.data()) == 0) {
        if (auto parsed = Uuid::parse(uuid.data())) event.domain.uuid = *parsed;
      }
      if (const char* name = virDomainGetName(pending.domain.get()); name != nullptr) {
        event.domain.name = name;
      }
      const unsigned int id = virDomainGetID(pending.domain.get());
      event.domain.id = id == static_cast<unsigned int>(-1) ? -1 : static_cast<int>(id);
      event.agent_connected =
          pending.type == VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED;
      event.agent_reason = pending.detail;
    } else {
      describe(pending.domain.get(), event.domain);  // best effort: the domain may be gone
      if (pending.kind == MonitorEventKind::kLifecycle) {
        event.lifecycle = static_cast<Lifecycle>(pending.type);
        event.detail = pending.detail;
        event.migration = is_migration_detail(event.lifecycle, event.detail);
      } else {
        event.metadata_type = pending.type;
        event.metadata_namespace = pending.ns;
      }
    }
    take_last_libvirt_error();
    {
      std::lock_guard lock(mutex);
      ++metrics.events;
    }
    deliver(event);
  }

  void deliver(const MonitorEvent& event) {
    try {
      if (consumer) consumer(event);
    } catch (...) {
      std::lock_guard lock(mutex);
      ++metrics.consumer_exceptions;
    }
  }

  void log(const std::string& message) {
    if (!options.log) return;
    try {
      options.log(message);
    } catch (...) {
      // Diagnostics must not stop the monitor.
    }
  }

  bool should_stop() {
    std::lock_guard lock(mutex);
    return stopping;
  }

  // True when stop() was asked for during the wait.
  bool sleep_unless_stopped(std::chrono::milliseconds delay) {
    std::unique_lock lock(mutex);
    return wake.wait_for(lock, delay, [&] { return stopping; });
  }

  void note_attempt() {
    std::lock_guard lock(mutex);
    ++metrics.connect_attempts;
  }

  void note_failure(const std::string& message) {
    {
      std::lock_guard lock(mutex);
      ++metrics.connect_failures;
      last_error = message;
    }
    changed.notify_all();
    log(message);
  }

  void publish(virConnectPtr connection, bool keepalive) {
    std::lock_guard lock(mutex);
    live = connection;
    metrics.keepalive = keepalive;
  }

  // Before the session closes: no new references are handed out, and connected() is false.
  void unpublish() {
    {
      std::lock_guard lock(mutex);
      live = nullptr;
      is_connected = false;
      metrics.keepalive = false;
    }
    changed.notify_all();
  }

  const LibvirtMonitorOptions options;
  const Consumer consumer;

  mutable std::mutex
      mutex;  // everything below; never held across a blocking libvirt call or the consumer
  std::condition_variable wake;             // the worker: queue, loss, stop
  mutable std::condition_variable changed;  // wait_connected: connected or failed
  std::deque<Pending> queue;
  std::uint64_t lost_generation = 0;  // the session the close callback reported lost
  std::string lost_reason;
  bool started = false;
  bool stopping = false;
  bool is_connected = false;
  bool release_loop_on_exit = false;
  virConnectPtr live = nullptr;  // the worker's connection while its session is open
  LibvirtMonitorMetrics metrics;
  std::string last_error;

  std::mutex stop_mutex;  // serializes start() and stop()
  std::thread worker;
  bool holds_loop = false;
};

// ---------------------------------------------------------------------------------------------

LibvirtMonitor::LibvirtMonitor(LibvirtMonitorOptions options, Consumer consumer)
    : state_(std::make_shared<State>(std::move(options), std::move(consumer))) {}

LibvirtMonitor::~LibvirtMonitor() { stop(); }

Status LibvirtMonitor::start() {
  std::lock_guard serial(state_->stop_mutex);
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopping)
      return fail("the libvirt monitor of " + state_->options.uri + " was stopped");
    if (state_->started)
      return fail("the libvirt monitor of " + state_->options.uri + " is already started");
  }
  // Before the first connection: the remote driver sets up events and keepalive only when an
  // event loop is registered at open time.
  if (auto loop = EventLoop::instance().acquire(); !loop) return loop;
  state_->holds_loop = true;
  try {
    state_->worker = std::thread([state = state_] { state->run(); });
  } catch (const std::system_error& e) {
    EventLoop::instance().release();
    state_->holds_loop = false;
    return fail(std::string("cannot start the libvirt monitor's thread: ") + e.what());
  }
  std::lock_guard lock(state_->mutex);
  state_->started = true;
  return {};
}

void LibvirtMonitor::stop() {
  std::lock_guard serial(state_->stop_mutex);
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
    state_->queue.clear();
  }
  state_->wake.notify_all();
  state_->changed.notify_all();
  if (state_->worker.joinable()) {
    if (state_->worker.get_id() == std::this_thread::get_id()) {
      // Called from the consumer: the worker cannot join itself. It ends after this event and
      // releases the event loop on its way out.
      {
        std::lock_guard lock(state_->mutex);
        state_->release_loop_on_exit = state_->holds_loop;
      }
      state_->holds_loop = false;
      state_->worker.detach();
      return;
    }
    state_->worker.join();
  }
  if (state_->holds_loop) {
    EventLoop::instance().release();
    state_->holds_loop = false;
  }
}

bool LibvirtMonitor::connected() const {
  std::lock_guard lock(state_->mutex);
  return state_->is_connected;
}

Status LibvirtMonitor::wait_connected(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_->mutex);
  state_->changed.wait_for(lock, timeout, [&] { return state_->is_connected || state_->stopping; });
  if (state_->is_connected) return {};
  std::string message = "not connected to libvirt at " + state_->options.uri;
  if (state_->stopping) message += " (the monitor is stopped)";
  if (!state_->last_error.empty()) message += ": " + state_->last_error;
  return fail(std::move(message));
}

LibvirtMonitorMetrics LibvirtMonitor::metrics() const {
  std::lock_guard lock(state_->mutex);
  return state_->metrics;
}

std::string LibvirtMonitor::last_error() const {
  std::lock_guard lock(state_->mutex);
  return state_->last_error;
}

const std::string& LibvirtMonitor::uri() const { return state_->options.uri; }

Result<LibvirtConnection> LibvirtMonitor::connection() const {
  std::lock_guard lock(state_->mutex);
  if (state_->live == nullptr) {
    std::string message = "not connected to libvirt at " + state_->options.uri;
    if (!state_->last_error.empty()) message += ": " + state_->last_error;
    return fail(std::move(message));
  }
  // A local reference count; the worker unpublishes before it closes its own reference.
  if (virConnectRef(state_->live) != 0) return fail("cannot reference the libvirt connection");
  return LibvirtConnection(state_->live);
}

}  // namespace mchain::agent
