// A scripted guest agent on a private unix socket, for what a real qemu-ga never does:
// garbage, oversize or late replies, wrong sync ids, silence, a connection cut mid-reply.
//
// One thread accepts one connection at a time, splits what it receives into lines (leading
// 0xFF sentinels dropped) and asks the handler what to send back for each. The handler runs
// on that thread: share state with the test through atomics.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>

namespace mchain::testing {

class FakeAgent {
 public:
  using Json = nlohmann::json;

  struct Reply {
    std::string bytes;                   // sent as is: include the newline
    bool close = false;                  // then drop the connection
    std::chrono::milliseconds delay{0};  // before sending
  };
  // The reply to one request (parsed; discarded if not JSON), or nullopt for silence.
  using Handler = std::function<std::optional<Reply>(const Json& request)>;

  FakeAgent(std::filesystem::path socket, Handler handler)
      : socket_(std::move(socket)), handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string name = socket_.string();
    if (listen_fd_ < 0 || name.size() >= sizeof address.sun_path) return;
    std::memcpy(address.sun_path, name.c_str(), name.size() + 1);
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listen_fd_, 4) != 0 || ::pipe2(stop_, O_CLOEXEC | O_NONBLOCK) != 0) {
      return;
    }
    ok_ = true;
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeAgent() {
    if (thread_.joinable()) {
      const char byte = 's';
      (void)!::write(stop_[1], &byte, 1);
      thread_.join();
    }
    for (int fd : {listen_fd_, stop_[0], stop_[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }
  FakeAgent(const FakeAgent&) = delete;
  FakeAgent& operator=(const FakeAgent&) = delete;

  bool ok() const { return ok_; }
  const std::filesystem::path& socket() const { return socket_; }
  int connections() const { return connections_.load(); }

  static bool is(const Json& request, std::string_view command) {
    return request.is_object() && request.contains("execute") && request["execute"] == command;
  }
  static bool is_sync(const Json& request) { return is(request, "guest-sync-delimited"); }
  static std::string line(const Json& reply) { return reply.dump() + "\n"; }
  // The correct answer to a guest-sync-delimited request.
  static Reply sync_reply(const Json& request) {
    return Reply{"\xff" + line({{"return", request["arguments"]["id"]}})};
  }
  static Reply ok_reply(const Json& value) { return Reply{line({{"return", value}})}; }
  static Reply error_reply(std::string_view klass, std::string_view desc) {
    return Reply{line({{"error", {{"class", klass}, {"desc", desc}}}})};
  }

 private:
  // Waits for `fd` to be ready for `events`; false when the agent is stopping.
  bool wait(int fd, short events, int timeout_ms = -1) {
    pollfd fds[2] = {{fd, events, 0}, {stop_[0], POLLIN, 0}};
    for (;;) {
      const int n = ::poll(fds, 2, timeout_ms);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || (fds[1].revents & POLLIN) != 0) return false;
      return true;  // ready, or timed out
    }
  }

  bool send_all(int fd, const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!wait(fd, POLLOUT)) return false;
      } else {
        return false;  // the client went away
      }
    }
    return true;
  }

  // Serves one connection until the client leaves, a reply closes it, or the agent stops.
  // Returns false when stopping.
  bool serve_connection(int fd) {
    std::string buffer;
    char chunk[65536];
    for (;;) {
      if (!wait(fd, POLLIN)) return false;
      const ssize_t got = ::read(fd, chunk, sizeof chunk);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0) return true;
      buffer.append(chunk, static_cast<std::size_t>(got));
      for (std::size_t newline; (newline = buffer.find('\n')) != std::string::npos;) {
        std::string text = buffer.substr(0, newline);
        buffer.erase(0, newline + 1);
        const std::size_t start = text.find_first_not_of('\xff');
        text.erase(0, start == std::string::npos ? text.size() : start);
        const Json request = Json::parse(text, nullptr, /*allow_exceptions=*/false);
        const std::optional<Reply> reply = handler_(request);
        if (!reply) continue;
        if (reply->delay.count() > 0 && !wait(-1, 0, static_cast<int>(reply->delay.count()))) {
          return false;
        }
        if (!send_all(fd, reply->bytes)) return true;
        if (reply->close) return true;
      }
    }
  }

  void serve() {
    for (;;) {
      if (!wait(listen_fd_, POLLIN)) return;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) continue;
      ++connections_;
      const bool go_on = serve_connection(fd);
      ::close(fd);
      if (!go_on) return;
    }
  }

  std::filesystem::path socket_;
  Handler handler_;
  int listen_fd_ = -1;
  int stop_[2] = {-1, -1};
  bool ok_ = false;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace mchain::testing
