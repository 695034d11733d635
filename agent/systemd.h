// The two things mchaind says to systemd, without linking libsystemd: readiness and watchdog
// pings over $NOTIFY_SOCKET (sd_notify(3)'s datagram protocol), and log lines that journald
// files under the right priority ("<3>" error, "<4>" warning, "<6>" info prefixes, which
// journald strips) when stderr is the journal.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mchain::agent {

// Sends `state` ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=...") to the service manager.
// False if there is none ($NOTIFY_SOCKET unset) or the datagram could not be sent.
bool notify_systemd(std::string_view state);

// How often the watchdog wants a ping ($WATCHDOG_USEC for this process), if it is on.
std::optional<std::chrono::microseconds> watchdog_interval();

enum class LogLevel { error = 3, warning = 4, info = 6 };

// Thread-safe line logging to stderr, one write(2) per line.
class Logger {
 public:
  Logger();  // decides once whether stderr is the journal ($JOURNAL_STREAM)
  void operator()(LogLevel level, std::string_view line) const;
  void info(std::string_view line) const { (*this)(LogLevel::info, line); }
  void warning(std::string_view line) const { (*this)(LogLevel::warning, line); }
  void error(std::string_view line) const { (*this)(LogLevel::error, line); }

 private:
  bool journal_ = false;
};

}  // namespace mchain::agent
