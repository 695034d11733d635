// mchaind's control socket (SPEC §10): a unix stream socket carrying one JSON object per line
// each way. A request names its command, {"command": "status", ...}; its response is
// {"ok": true, ...} or {"ok": false, "error": "..."}. A client may send several requests on
// one connection; they are answered in order.
//
// Who may talk to it is decided from the kernel's account of the peer (SO_PEERCRED), not from
// anything the client says: root, mchaind's own user, and members of the configured group.
// Anyone else gets one error line, the connection is closed, and the refusal is logged with
// the peer's uid and pid. The socket file is made mode 0660 and owned by that group (0600
// without one); a socket file left by a crashed daemon is replaced, one a live daemon is
// listening on is not.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "chain/error.h"

namespace mchain::agent {

struct ControlPeer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

class ControlServer {
 public:
  // Answers one request: call `reply` exactly once, from any thread, now or later (a request
  // may wait for a confirmation). Called on the server's thread: hand long work elsewhere.
  using Reply = std::function<void(nlohmann::json response)>;
  using Handler =
      std::function<void(const ControlPeer& peer, const nlohmann::json& request, Reply reply)>;

  struct Options {
    std::filesystem::path socket;
    std::string group;  // empty: root and this process's user only
    std::function<void(const std::string&)> log;
    std::size_t max_request_bytes = 64u << 20;  // a package to submit fits
    std::size_t max_clients = 64;
  };

  static Result<std::unique_ptr<ControlServer>> start(Options options, Handler handler);
  ~ControlServer();  // stop()
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Closes the socket and every connection, and removes the socket file. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One request to a control socket and its response, within `timeout` (connecting included).
// Fails with a message naming the socket if the daemon is not there or does not answer.
Result<nlohmann::json> control_request(const std::filesystem::path& socket,
                                       const nlohmann::json& request,
                                       std::chrono::milliseconds timeout);

}  // namespace mchain::agent
