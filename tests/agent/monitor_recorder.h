// Records what a LibvirtMonitor delivers, for tests: the consumer appends, the test waits for
// events in order (each wait starts after the last event it matched).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "agent/libvirt_monitor.h"

namespace mchain::testing {

class MonitorRecorder {
 public:
  using Event = agent::MonitorEvent;
  using Predicate = std::function<bool(const Event&)>;

  agent::LibvirtMonitor::Consumer consumer() {
    return [this](const Event& event) {
      std::lock_guard lock(mutex_);
      events_.push_back(event);
      changed_.notify_all();
    };
  }

  // The first event after the last match that satisfies `predicate`, waiting up to `timeout`.
  std::optional<Event> next(const Predicate& predicate,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    std::optional<Event> found;
    changed_.wait_for(lock, timeout, [&] {
      for (; scanned_ < events_.size(); ++scanned_) {
        if (predicate(events_[scanned_])) {
          found = events_[scanned_];
          cursor_ = ++scanned_;
          return true;
        }
      }
      return false;
    });
    if (!found) scanned_ = cursor_;  // a later wait looks at the same events again
    return found;
  }

  // The kResync events of `connection` (after its kResyncComplete arrived, or as far as seen).
  std::vector<Event> resync_of(std::uint64_t connection) const {
    std::lock_guard lock(mutex_);
    std::vector<Event> out;
    for (const Event& event : events_) {
      if (event.connection == connection && event.kind == agent::MonitorEventKind::kResync)
        out.push_back(event);
    }
    return out;
  }

  std::vector<Event> all() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return events_.size();
  }

  // For failure messages.
  std::string dump() const {
    std::lock_guard lock(mutex_);
    std::ostringstream out;
    for (const Event& event : events_) out << describe(event) << "\n";
    return out.str();
  }

  static std::string describe(const Event& event) {
    std::ostringstream out;
    out << "#" << event.connection << " " << agent::monitor_event_kind_name(event.kind);
    if (!event.domain.name.empty()) out << " " << event.domain.name;
    switch (event.kind) {
      case agent::MonitorEventKind::kLifecycle:
        out << " " << agent::lifecycle_name(event.lifecycle) << "/" << event.detail
            << (event.migration ? " (migration)" : "");
        break;
      case agent::MonitorEventKind::kAgentLifecycle:
        out << (event.agent_connected ? " agent connected" : " agent disconnected") << "/"
            << event.agent_reason;
        break;
      case agent::MonitorEventKind::kMetadataChange:
        out << " type " << event.metadata_type << " " << event.metadata_namespace;
        break;
      case agent::MonitorEventKind::kResyncComplete:
        out << " " << event.domains << " domains";
        break;
      case agent::MonitorEventKind::kDisconnected: out << " " << event.reason; break;
      case agent::MonitorEventKind::kResync: break;
    }
    if (event.domain.state) out << " state=" << agent::domain_state_name(*event.domain.state);
    if (event.domain.owner) out << " owner=" << event.domain.owner->user;
    if (!event.domain.owner_error.empty()) out << " owner_error=" << event.domain.owner_error;
    return out.str();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Event> events_;
  std::size_t cursor_ = 0;   // just after the last match
  std::size_t scanned_ = 0;  // how far the current wait has looked
};

inline MonitorRecorder::Predicate is_kind(agent::MonitorEventKind kind) {
  return [kind](const agent::MonitorEvent& event) { return event.kind == kind; };
}

inline MonitorRecorder::Predicate is_lifecycle(std::string name, agent::Lifecycle type) {
  return [name = std::move(name), type](const agent::MonitorEvent& event) {
    return event.kind == agent::MonitorEventKind::kLifecycle && event.domain.name == name &&
           event.lifecycle == type;
  };
}

}  // namespace mchain::testing
