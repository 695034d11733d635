// How QGA commands reach a guest: one command in, one reply out. Two transports:
//   - a unix socket connected to the agent's byte stream (a QEMU chardev, or qemu-ga's
//     unix-listen mode in tests): we frame, resynchronise and cap replies ourselves;
//   - libvirt's virDomainQemuAgentCommand, which frames and syncs for us (production).
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "measure/qga/error.h"

namespace mchain::measure::qga {

using Json = nlohmann::json;
using Milliseconds = std::chrono::milliseconds;

class Transport {
 public:
  virtual ~Transport() = default;

  // Sends `command` ({"execute": …, "arguments": …}) and returns the agent's reply object,
  // either {"return": …} or {"error": {"class": …, "desc": …}}, within `timeout`.
  // A command the agent cannot know (CommandNotFound / "has been disabled") comes back as a
  // reply, not as an Error; transport failures are Errors.
  virtual Result<Json> round_trip(const Json& command, Milliseconds timeout) = 0;

  // Several commands in flight at once, replies in order: the agent handles one command at a
  // time, and keeping it busy while we process the previous reply is what makes bulk reads
  // fast. Sends the commands `next` yields (until it yields nullopt), with at most `depth`
  // unanswered, and hands each reply to `on_reply`; once `on_reply` returns false nothing
  // more is sent and the replies still due are read and dropped. Each reply must come within
  // `timeout`. This default does one round trip at a time (libvirt, which syncs before every
  // command, can do no better).
  virtual Status pipeline(std::size_t depth, const std::function<std::optional<Json>()>& next,
                          const std::function<bool(Json)>& on_reply, Milliseconds timeout);

  // The largest reply this transport accepts, in bytes of JSON text. Callers size their
  // requests (file chunks, exec output) to stay well below it.
  virtual std::size_t max_reply_bytes() const = 0;

  // For messages: "unix socket /run/x/qga.sock" or "libvirt domain web1 (qemu:///system)".
  virtual std::string describe() const = 0;
};

struct UnixSocketOptions {
  Milliseconds connect_timeout{2000};
  Milliseconds sync_timeout{3000};  // an agent that does not answer guest-sync → kNotConnected
  std::size_t max_reply_bytes = 32u << 20;
};

// Connects to an agent's unix socket. The stream is resynchronised with
// guest-sync-delimited and a fresh random id before the first command and after any command
// whose reply did not arrive whole (timeout, oversize, malformed), so that a late reply to
// an earlier command is never taken for the answer to a later one.
Result<std::unique_ptr<Transport>> connect_unix_socket(const std::filesystem::path& socket,
                                                       const UnixSocketOptions& options = {});

// The agent of a libvirt domain (by name or UUID) on connection `uri`, through
// virDomainQemuAgentCommand. Replies are capped at libvirt's 10 MiB. The first call sets
// SIGPIPE to ignored if it was at its default, because libvirt's client writes to its socket
// in a way that would otherwise kill the process when the daemon goes away.
Result<std::unique_ptr<Transport>> connect_libvirt(const std::string& uri,
                                                   const std::string& domain);

}  // namespace mchain::measure::qga
