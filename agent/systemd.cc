#include "agent/systemd.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "chain/types.h"

namespace mchain::agent {

bool notify_systemd(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::size_t length = std::strlen(path);
  if (length >= sizeof address.sun_path) return false;
  std::memcpy(address.sun_path, path, length);
  if (address.sun_path[0] == '@') address.sun_path[0] = '\0';  // the abstract namespace
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&address), size);
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (usec == nullptr) return std::nullopt;
  // The watchdog may be meant for another process of the service.
  if (const char* pid = std::getenv("WATCHDOG_PID")) {
    auto p = parse_u64(pid);
    if (!p || *p != static_cast<std::uint64_t>(::getpid())) return std::nullopt;
  }
  auto value = parse_u64(usec);
  if (!value || *value == 0) return std::nullopt;
  return std::chrono::microseconds(*value);
}

Logger::Logger() {
  // systemd sets JOURNAL_STREAM to "device:inode" of the stream it connected stderr to.
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (stream == nullptr || ::fstat(STDERR_FILENO, &st) != 0) return;
  const std::string expected = std::to_string(static_cast<unsigned long long>(st.st_dev)) + ":" +
                               std::to_string(static_cast<unsigned long long>(st.st_ino));
  journal_ = expected == stream;
}

void Logger::operator()(LogLevel level, std::string_view line) const {
  std::string out;
  out.reserve(line.size() + 24);
  if (journal_) {
    out += '<';
    out += static_cast<char>('0' + static_cast<int>(level));
    out += '>';
  } else {
    out += format_time(now_us());
    out += level == LogLevel::error ? " error: " : level == LogLevel::warning ? " warning: " : " ";
  }
  out.append(line);
  out += '\n';
  // One write per line, so that lines of several threads do not interleave.
  for (std::size_t done = 0; done < out.size();) {
    const ssize_t n = ::write(STDERR_FILENO, out.data() + done, out.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace mchain::agent
