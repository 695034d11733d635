// How consensus messages reach the other nodes. Messages travel encoded, so one host, the
// in-process tests and the TLS network all exercise the same encode/decode path.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <string>

#include "chain/types.h"

namespace mchain {

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends `message` to every other node of the cluster (not back to `from`).
  virtual void broadcast(const std::string& from, const Bytes& message) = 0;
  // Sends `message` to node `to` only (catch-up requests and replies, re-sent packages).
  // Dropped if `to` cannot be reached now.
  virtual void send_to(const std::string& from, const std::string& to, const Bytes& message) = 0;
  // Passes on a message `self` received from `received_from` and found valid (validate before
  // relay: see chain/net/peer_network.h). A transport that delivers every broadcast to every
  // node itself has nothing to pass on.
  virtual void relay(const std::string& /*self*/, const std::string& /*received_from*/,
                     const Bytes& /*message*/) {}
};

// Delivers between nodes of one process, in order, when pumped: single-host operation and
// deterministic multi-node tests. Not thread-safe: one thread broadcasts and pumps.
class LocalTransport final : public Transport {
 public:
  using Deliver = std::function<void(const std::string& from, const Bytes& message)>;
  // Decides whether a message from `from` reaches `to` (tests cut links with it).
  using Filter = std::function<bool(const std::string& from, const std::string& to)>;

  void attach(std::string node, Deliver deliver);
  void set_filter(Filter filter) { filter_ = std::move(filter); }
  // Sees every broadcast as it is queued (tests watch the protocol with it).
  using Observer = std::function<void(const std::string& from, const Bytes& message)>;
  void set_observer(Observer observer) { observer_ = std::move(observer); }
  void broadcast(const std::string& from, const Bytes& message) override;
  void send_to(const std::string& from, const std::string& to, const Bytes& message) override;
  // Delivers queued messages, including those sent while delivering, until none is left.
  // Returns how many were delivered.
  std::size_t pump();

 private:
  struct Envelope {
    std::string from, to;
    Bytes message;
  };
  std::map<std::string, Deliver> nodes_;
  std::deque<Envelope> queue_;
  Filter filter_;
  Observer observer_;
};

}  // namespace mchain
