// The agent's byte stream over a unix socket: newline-framed JSON, resynchronised with
// guest-sync-delimited, every wait bounded by a deadline.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "chain/crypto/hash.h"
#include "chain/file_io.h"
#include "measure/qga/transport.h"

namespace mchain::measure::qga {

namespace {

using Clock = std::chrono::steady_clock;

// The reply to guest-sync-delimited is `{"return": <id>}`; a longer line after a sentinel is
// not ours.
constexpr std::size_t kMaxSyncReply = 256;
constexpr std::size_t kReadChunk = 64 * 1024;
// guest-sync-delimited's sentinel; it never occurs in the agent's JSON, which is UTF-8.
constexpr char kSentinel = '\xff';

// poll()'s timeout for the time left until `deadline`, rounded up so that a wait never ends
// just before the deadline; 0 once it has passed (poll then still reports what is ready).
int poll_timeout(Clock::time_point deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<Milliseconds>(left).count();
  return static_cast<int>(std::min<long long>(ms, INT_MAX));
}

std::string ms_text(Milliseconds d) { return std::to_string(d.count()) + " ms"; }

std::string command_name(const Json& command) {
  if (command.is_object()) {
    auto it = command.find("execute");
    if (it != command.end() && it->is_string()) return it->get<std::string>();
  }
  return "<unnamed command>";
}

// The start of a bad reply for a message, with control bytes escaped.
std::string excerpt(std::string_view text) {
  constexpr std::size_t kMax = 80;
  std::string out;
  for (char c : text.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  if (text.size() > kMax) out += "...";
  return out;
}

// Random, so that a reply to a sync sent by an earlier connection or client cannot match;
// 63 bits because the agent parses the id as a signed 64-bit integer.
std::uint64_t random_sync_id() {
  std::array<std::uint8_t, 8> bytes{};
  crypto::random_bytes(bytes);
  std::uint64_t id = 0;
  for (std::uint8_t b : bytes) id = (id << 8) | b;
  id &= 0x7fff'ffff'ffff'ffffULL;
  return id == 0 ? 1 : id;
}

// The reply to guest-file-read carries up to 1.4 MB of base64, which a general JSON parser
// reads one character at a time; it dominated the cost of streaming a file. qemu-ga writes
// that reply in one fixed shape, so recognise exactly that shape here and build the same
// JSON value directly. Anything else, even valid JSON in another layout, goes to the
// general parser.
std::optional<Json> parse_file_read_reply(std::string_view line) {
  auto take = [&line](std::string_view expected) {
    if (!line.starts_with(expected)) return false;
    line.remove_prefix(expected.size());
    return true;
  };
  if (!take(R"({"return": {"count": )")) return std::nullopt;
  std::uint64_t count = 0;
  auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), count);
  if (ec != std::errc() || end == line.data() || (line[0] == '0' && end - line.data() > 1)) {
    return std::nullopt;
  }
  line.remove_prefix(static_cast<std::size_t>(end - line.data()));
  if (!take(R"(, "buf-b64": ")")) return std::nullopt;
  const std::size_t quote = line.find('"');
  if (quote == std::string_view::npos) return std::nullopt;
  const std::string_view text = line.substr(0, quote);
  // Base64 only: no escapes, nothing a JSON string would have to decode.
  for (char c : text) {
    const bool b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '+' || c == '/' || c == '=';
    if (!b64) return std::nullopt;
  }
  line.remove_prefix(quote + 1);
  bool eof = false;
  if (take(R"(, "eof": true}})")) {
    eof = true;
  } else if (!take(R"(, "eof": false}})")) {
    return std::nullopt;
  }
  if (!line.empty()) return std::nullopt;
  Json reply = Json::object();
  reply["return"] = {{"count", count}, {"buf-b64", std::string(text)}, {"eof", eof}};
  return reply;
}

Result<Fd> open_connection(const std::filesystem::path& path, Milliseconds timeout) {
  const std::string name = path.string();
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (name.size() >= sizeof address.sun_path) {
    return fail(Errc::kIo, "unix socket path longer than " +
                               std::to_string(sizeof address.sun_path - 1) + " bytes: " + name);
  }
  std::memcpy(address.sun_path, name.c_str(), name.size() + 1);

  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd)
    return fail(Errc::kIo, std::string("cannot create a unix socket: ") + std::strerror(errno));

  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
      return fd;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EISCONN) return fd;  // an interrupted connect() completed meanwhile
    if (err == EAGAIN || err == EINPROGRESS || err == EALREADY) {
      // A unix socket answers EAGAIN while the listener's backlog is full: retry until the
      // deadline (EINPROGRESS would be the same wait for other families).
      if (Clock::now() >= deadline) {
        return fail(Errc::kNotConnected,
                    "agent socket " + name + " did not accept within " + ms_text(timeout));
      }
      std::this_thread::sleep_for(Milliseconds(5));
      continue;
    }
    const Errc code =
        (err == ENOENT || err == ECONNREFUSED || err == ENOTSOCK) ? Errc::kNotConnected : Errc::kIo;
    return fail(code, "cannot connect to agent socket " + name + ": " + std::strerror(err));
  }
}

class UnixSocketTransport final : public Transport {
 public:
  UnixSocketTransport(std::filesystem::path path, UnixSocketOptions options, Fd fd)
      : path_(std::move(path)), options_(options), fd_(std::move(fd)) {}

  Result<Json> round_trip(const Json& command, Milliseconds timeout) override;
  Status pipeline(std::size_t depth, const std::function<std::optional<Json>()>& next,
                  const std::function<bool(Json)>& on_reply, Milliseconds timeout) override;
  std::size_t max_reply_bytes() const override { return options_.max_reply_bytes; }
  std::string describe() const override { return "unix socket " + path_.string(); }

 private:
  // Connects if the last connection was lost, and resynchronises the stream if its state is
  // unknown.
  Status prepare();
  // One command's text, or kCommandFailed for a command JSON cannot carry.
  static Result<std::string> encode(const Json& command, const std::string& name);
  Status send_command(const std::string& text, const std::string& name, Milliseconds timeout);
  // The next reply line, parsed; on any failure the stream is left for resynchronisation.
  Result<Json> receive(const std::string& name, Milliseconds timeout);
  Status sync();
  Status send_all(std::string_view data, Clock::time_point deadline);
  // Appends what the socket has to buffer_, waiting until `deadline`.
  Status fill(Clock::time_point deadline);
  // The next line from the stream, without its newline; kOversizeReply once more than `cap`
  // bytes came without one.
  Result<std::string> read_line(std::size_t cap, Clock::time_point deadline);
  void disconnect();

  std::filesystem::path path_;
  UnixSocketOptions options_;
  Fd fd_;
  std::string buffer_;       // received, not yet consumed
  std::size_t scanned_ = 0;  // buffer_[0, scanned_) holds no newline
  bool synced_ = false;      // the next line is the reply to the next command we send
};

void UnixSocketTransport::disconnect() {
  fd_.reset();
  buffer_.clear();
  scanned_ = 0;
  synced_ = false;
}

Status UnixSocketTransport::send_all(std::string_view data, Clock::time_point deadline) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    // MSG_NOSIGNAL: an agent that went away must be an EPIPE, not a SIGPIPE for the process.
    const ssize_t n = ::send(fd_.get(), data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      pollfd p{fd_.get(), POLLOUT, 0};
      const int ready = ::poll(&p, 1, poll_timeout(deadline));
      if (ready < 0 && errno != EINTR) {
        const int poll_err = errno;
        disconnect();
        return fail(Errc::kIo, "poll on " + describe() + ": " + std::strerror(poll_err));
      }
      if (ready == 0) return fail(Errc::kTimeout, "agent on " + describe() + " is not reading");
      continue;
    }
    disconnect();
    const Errc code =
        (err == EPIPE || err == ECONNRESET || err == ENOTCONN) ? Errc::kNotConnected : Errc::kIo;
    return fail(code, "cannot write to " + describe() + ": " + std::strerror(err));
  }
  return {};
}

Status UnixSocketTransport::fill(Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd_.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, poll_timeout(deadline));
    if (ready < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      disconnect();
      return fail(Errc::kIo, "poll on " + describe() + ": " + std::strerror(err));
    }
    if (ready == 0) return fail(Errc::kTimeout, "nothing from " + describe());
    const std::size_t old_size = buffer_.size();
    buffer_.resize(old_size + kReadChunk);
    const ssize_t got = ::read(fd_.get(), buffer_.data() + old_size, kReadChunk);
    const int err = errno;
    buffer_.resize(old_size + static_cast<std::size_t>(std::max<ssize_t>(got, 0)));
    if (got > 0) return {};
    if (got == 0) {
      disconnect();
      return fail(Errc::kNotConnected, "agent closed the connection on " + describe());
    }
    if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK) continue;
    disconnect();
    const Errc code = err == ECONNRESET ? Errc::kNotConnected : Errc::kIo;
    return fail(code, "cannot read from " + describe() + ": " + std::strerror(err));
  }
}

Result<std::string> UnixSocketTransport::read_line(std::size_t cap, Clock::time_point deadline) {
  for (;;) {
    const std::size_t newline = buffer_.find('\n', scanned_);
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      scanned_ = 0;
      return line;
    }
    scanned_ = buffer_.size();
    if (buffer_.size() > cap) return fail(Errc::kOversizeReply, "line longer than the cap");
    if (auto more = fill(deadline); !more) return std::unexpected(more.error());
  }
}

Status UnixSocketTransport::sync() {
  const auto deadline = Clock::now() + options_.sync_timeout;
  const std::uint64_t id = random_sync_id();
  const auto not_answering = [&](const Error& error) {
    if (error.code != Errc::kTimeout) return std::unexpected(error);
    return fail(Errc::kNotConnected, "agent not answering on " + describe() + " within " +
                                         ms_text(options_.sync_timeout) +
                                         " (is qemu-ga running in the guest?)");
  };

  // The leading sentinel makes the agent drop whatever partial command it holds (one we
  // gave up writing), so that our sync is parsed on its own.
  const Json request = {{"execute", "guest-sync-delimited"}, {"arguments", {{"id", id}}}};
  const std::string text = kSentinel + request.dump() + '\n';
  if (auto sent = send_all(text, deadline); !sent) return not_answering(sent.error());

  for (;;) {
    // Everything before a sentinel is stale: late replies to commands that timed out, the
    // rest of an oversize reply.
    const std::size_t sentinel = buffer_.find(kSentinel);
    if (sentinel == std::string::npos) {
      buffer_.clear();
      scanned_ = 0;
      if (auto more = fill(deadline); !more) return not_answering(more.error());
      continue;
    }
    buffer_.erase(0, sentinel + 1);
    scanned_ = 0;
    auto line = read_line(kMaxSyncReply, deadline);
    if (!line) {
      if (line.error().code == Errc::kOversizeReply) continue;  // not a sync reply: hunt on
      return not_answering(line.error());
    }
    // A sentinel inside the line starts a newer reply.
    if (const std::size_t last = line->rfind(kSentinel); last != std::string::npos) {
      line->erase(0, last + 1);
    }
    const Json reply = Json::parse(*line, nullptr, /*allow_exceptions=*/false);
    if (reply.is_object()) {
      const auto it = reply.find("return");
      if (it != reply.end() && it->is_number_unsigned() && it->get<std::uint64_t>() == id) {
        synced_ = true;
        return {};
      }
    }
    // Another id: the reply to an earlier sync that timed out; ours is still to come.
  }
}

Status UnixSocketTransport::prepare() {
  if (!fd_) {
    auto connected = open_connection(path_, options_.connect_timeout);
    if (!connected) return std::unexpected(connected.error());
    fd_ = std::move(*connected);
    buffer_.clear();
    scanned_ = 0;
    synced_ = false;
  }
  if (synced_) {
    // Anything the agent sent unasked means the stream is not where we think it is; an
    // EOF means it went away while we were idle.
    pollfd p{fd_.get(), POLLIN, 0};
    while (::poll(&p, 1, 0) < 0 && errno == EINTR) {
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      if (auto more = fill(Clock::now()); !more && more.error().code != Errc::kTimeout) {
        return more;
      }
    }
    if (!buffer_.empty()) synced_ = false;
  }
  if (!synced_) return sync();
  return {};
}

Result<std::string> UnixSocketTransport::encode(const Json& command, const std::string& name) {
  try {
    return command.dump() + '\n';
  } catch (const Json::exception& e) {
    // Strings that are not UTF-8 (odd guest paths) cannot travel as JSON.
    return fail(Errc::kCommandFailed, "cannot encode " + name + ": " + e.what());
  }
}

Status UnixSocketTransport::send_command(const std::string& text, const std::string& name,
                                         Milliseconds timeout) {
  if (auto sent = send_all(text, Clock::now() + timeout); !sent) {
    synced_ = false;
    Error error = sent.error();
    if (error.code == Errc::kTimeout) {
      error.message =
          "could not send " + name + " to " + describe() + " within " + ms_text(timeout);
    }
    return std::unexpected(std::move(error));
  }
  return {};
}

Result<Json> UnixSocketTransport::receive(const std::string& name, Milliseconds timeout) {
  auto line = read_line(options_.max_reply_bytes, Clock::now() + timeout);
  if (!line) {
    Error error = line.error();
    switch (error.code) {
      case Errc::kTimeout:
        // The reply may still come: the next command resynchronises past it.
        synced_ = false;
        error.message =
            "no reply to " + name + " from " + describe() + " within " + ms_text(timeout);
        break;
      case Errc::kOversizeReply:
        // The rest of the reply is skipped by the next resynchronisation.
        synced_ = false;
        buffer_.clear();
        scanned_ = 0;
        error.message = "reply to " + name + " from " + describe() + " exceeds " +
                        std::to_string(options_.max_reply_bytes) + " bytes";
        break;
      default: break;
    }
    return std::unexpected(std::move(error));
  }

  if (auto fast = parse_file_read_reply(*line)) return std::move(*fast);
  Json reply = Json::parse(*line, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object()) {
    synced_ = false;
    return fail(Errc::kMalformedReply, "reply to " + name + " from " + describe() + " is not " +
                                           (reply.is_discarded() ? "JSON" : "a JSON object") +
                                           ": " + excerpt(*line));
  }
  return reply;
}

Result<Json> UnixSocketTransport::round_trip(const Json& command, Milliseconds timeout) {
  const std::string name = command_name(command);
  auto text = encode(command, name);
  if (!text) return std::unexpected(text.error());
  if (auto ready = prepare(); !ready) return std::unexpected(ready.error());
  if (auto sent = send_command(*text, name, timeout); !sent) return std::unexpected(sent.error());
  return receive(name, timeout);
}

Status UnixSocketTransport::pipeline(std::size_t depth,
                                     const std::function<std::optional<Json>()>& next,
                                     const std::function<bool(Json)>& on_reply,
                                     Milliseconds timeout) {
  depth = std::max<std::size_t>(depth, 1);
  if (auto ready = prepare(); !ready) return ready;
  std::deque<std::string> due;  // names of the commands whose replies are still to come
  bool more = true;             // next() may yield another command
  bool wanted = true;           // on_reply still takes replies
  // A failure with replies still due leaves the stream mid-conversation: resynchronise.
  const auto abandon = [this](Error error) {
    synced_ = false;
    return std::unexpected(std::move(error));
  };
  for (;;) {
    while (more && wanted && due.size() < depth) {
      auto command = next();
      if (!command) {
        more = false;
        break;
      }
      std::string name = command_name(*command);
      auto text = encode(*command, name);
      if (!text) return abandon(text.error());
      if (auto sent = send_command(*text, name, timeout); !sent) return abandon(sent.error());
      due.push_back(std::move(name));
    }
    if (due.empty()) return {};
    auto reply = receive(due.front(), timeout);
    if (!reply) return abandon(reply.error());
    due.pop_front();
    if (wanted && !on_reply(std::move(*reply))) wanted = false;
  }
}

}  // namespace

Result<std::unique_ptr<Transport>> connect_unix_socket(const std::filesystem::path& socket,
                                                       const UnixSocketOptions& options) {
  auto fd = open_connection(socket, options.connect_timeout);
  if (!fd) return std::unexpected(fd.error());
  return std::make_unique<UnixSocketTransport>(socket, options, std::move(*fd));
}

}  // namespace mchain::measure::qga
