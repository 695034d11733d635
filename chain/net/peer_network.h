// The peer network (SPEC §6 "Network"): TLS 1.3 links with mutual authentication between
// nodes, length-prefixed frames, and gossip of opaque messages (deduplicated by SHA-256 and
// flooded to every other peer).
//
// Admission. A link is used only after both checks pass: the TLS handshake, which proves the
// peer holds the private key of its certificate (see tls_identity.h), and a hello frame naming
// the peer's node id, whose admitted key must equal the certificate key. An unknown id, a key
// that is not the one admitted for the claimed id, or a failed handshake closes the link and
// is counted. Admission is asked again on every new link, so a membership change takes effect
// on reconnect; recheck_admission() also closes live links that are no longer admitted.
//
// One link per peer. The node with the lexicographically lower id dials; the higher one only
// accepts — except a node that joined after the genesis (dial_every_peer), which the members
// may not know the address of: it dials every peer, and pauses a dialer while a link to that
// peer exists in either direction. If an inbound link arrives for a peer that already has one, the newer link replaces
// the older (the dialer only starts a new link after it gave up on the old one, so the newer
// is the live one). A dial that fails, or a dialled link that drops, is retried with
// exponential backoff (initial_backoff doubling to max_backoff, each wait drawn uniformly from
// its upper half for jitter), reset once a link is established.
//
// Relaying. By default a gossip message is flooded on as soon as it arrives. With
// relay_after_check, it is only delivered, and flooded on when the application calls relay()
// after checking it (validate before relay, as Bitcoin Core does): honest nodes then never pass
// bad data on, so a peer that sends some made it, and the application may hold it to that.
// A message above announce_above bytes is passed on by announcing its hash; a peer that has
// not seen it asks for it (from the first announcer, again from a later one if no copy came
// within a second), and gets it as gossip. In a full mesh every node has the message from its
// originator already, so a large message crosses each link once instead of once per relay.
//
// Direct messages. send_to() queues a message for one linked peer only; it is delivered there
// and not flooded or remembered, so the same bytes may be sent again (catch-up replies, and the
// packages a node still buffers, re-sent to a peer whose link just came up).
//
// Agent messages. send_agent() queues an application message (not consensus: VM migration
// secrets, sealed to the addressee) for one linked peer, in a frame kind of its own. The peer
// hands it to on_agent_message, never to Deliver, so consensus never sees it and cannot count
// it as a malformed message from that peer; it is neither deduplicated (against gossip or
// anything else) nor relayed. Like every frame after the hello, it is accepted only from an
// authenticated, admitted peer. Without an on_agent_message callback such frames are dropped
// with a log line; the link stays up.
//
// Send queues. Each link has a bounded queue (messages and bytes). A peer that does not keep
// up must not hold back the others, so when its queue is full the link is closed (counted as a
// queue overflow); it reconnects later and catches up through the chain's own sync. Messages
// are not stored for peers that are not connected.
//
// Threading. One thread of our own runs the event loop. broadcast(), send_to(), send_agent(),
// recheck_admission(), snapshot() and stop() may be called from any thread; Deliver,
// Admission and on_agent_message are called on the network thread and must not block for
// long or call stop().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chain/crypto/sign.h"
#include "chain/error.h"
#include "chain/node/transport.h"
#include "chain/types.h"

namespace mchain::net {

struct PeerAddress {
  std::string id;
  std::string host;  // name or IP literal
  std::uint16_t port = 0;
};

struct NetMetrics {
  std::uint64_t frames_in = 0, frames_out = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;  // frame bytes above TLS, headers included
  std::uint64_t delivered = 0;
  std::uint64_t duplicates = 0;         // gossip already seen, dropped
  std::uint64_t refused_unknown = 0;    // peer id not admitted (or no longer)
  std::uint64_t refused_wrong_key = 0;  // certificate key is not the one admitted for the id
  std::uint64_t refused_handshake = 0;  // TLS failure, timeout, missing or malformed hello
  std::uint64_t oversize_frames = 0;    // links closed for a frame above the cap
  std::uint64_t queue_overflows = 0;    // links closed because their send queue was full
  std::uint64_t reconnects = 0;         // dials after the first one to a peer
  std::uint64_t announced = 0;          // large messages passed on as a hash
  std::uint64_t requested = 0;          // announced messages asked for
  std::uint64_t served = 0;             // announced messages sent on request
  std::uint64_t agent_in = 0;           // agent frames received on established links
  std::uint64_t agent_out = 0;          // agent frames written to a link
  std::uint64_t agent_dropped = 0;      // received with no callback or above the cap, or
                                        // sent but the link was gone before it was queued
  std::set<std::string> connected;      // peers with an established link
};

class PeerNetwork {
 public:
  // `from_node` is the neighbour that relayed the message, not necessarily its originator
  // (messages are opaque here; consensus messages carry their own signed sender).
  using Deliver = std::function<void(const std::string& from_node, const Bytes& message)>;
  // The key admitted for a node id, or nullopt if the node is not (or no longer) a member.
  using Admission = std::function<std::optional<crypto::PublicKey>(const std::string& node_id)>;
  using Log = std::function<void(std::string_view line)>;
  // An agent message from the linked peer `from_peer` (who sent it, not relayed).
  using AgentDeliver = std::function<void(const std::string& from_peer, Bytes message)>;

  struct Options {
    std::string node_id;
    std::string listen_host = "127.0.0.1";
    std::uint16_t listen_port = 0;      // 0: chosen by the OS, see port()
    std::vector<PeerAddress> peers;     // those with an id above ours are dialled
    bool dial_every_peer = false;       // a node that joined later: dial all of them
    std::size_t max_frame = 16u << 20;  // payload bytes; a bigger frame closes the link
    std::size_t max_queue_messages = 1024;
    std::size_t max_queue_bytes = 64u << 20;
    std::size_t dedup_capacity = 65536;       // recent message hashes remembered
    bool relay_after_check = false;           // gossip is flooded on by relay(), not on arrival
    std::size_t announce_above = 16u << 10;   // larger messages are passed on as a hash
    std::size_t announced_bytes = 64u << 20;  // copies kept to answer requests, newest kept
    std::chrono::milliseconds initial_backoff{100};
    std::chrono::milliseconds max_backoff{5000};
    std::chrono::milliseconds handshake_timeout{10000};  // TLS handshake and hello
    Log log;                                             // default: one line per event on stderr
    // Called on the network thread when a link to a peer is established (first or again).
    std::function<void(const std::string& peer_id)> on_link;
    // Agent messages (see above) are for small secrets, not bulk data: a larger one is refused
    // by send_agent() and dropped on arrival. Lowered to max_frame - 1 if above it.
    std::size_t max_agent_message = 256u << 10;
    // Called on the network thread for each agent message; unset: they are dropped.
    AgentDeliver on_agent_message;
  };

  // Binds the listening socket, makes the TLS identity and starts the network thread.
  static Result<std::unique_ptr<PeerNetwork>> start(Options options,
                                                    const crypto::PrivateKey& node_key,
                                                    Admission admission, Deliver deliver);
  ~PeerNetwork();  // stop()
  PeerNetwork(const PeerNetwork&) = delete;
  PeerNetwork& operator=(const PeerNetwork&) = delete;

  const std::string& node_id() const;
  std::uint16_t port() const;

  // Sends `message` to every connected peer and remembers it as seen, so it is not delivered
  // back here when flooded. Fails only if the message cannot fit in a frame.
  Status broadcast(Bytes message);
  // Floods a delivered gossip message on to every linked peer but `from_peer` (with
  // relay_after_check; a no-op otherwise, the network did it on arrival).
  void relay(Bytes message, const std::string& from_peer);
  // Sends `message` to `peer` only, if it is linked (dropped otherwise). Fails only if the
  // message cannot fit in a frame.
  Status send_to(const std::string& peer, Bytes message);
  // Queues the agent message `message` for `peer` (see above). Fails if `peer` has no
  // established link now or the message is above max_agent_message. Success means queued,
  // not delivered: a link that drops before the frame is written loses it, like any frame.
  Status send_agent(const std::string& peer, Bytes message);
  // Asks Admission again for every established link and closes those that fail.
  void recheck_admission();
  NetMetrics snapshot() const;
  // Closes every link and joins the network thread. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit PeerNetwork(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs consensus over the peer network: every broadcast goes out as gossip. `from` must be
// this node (the network only sends its own node's messages).
class NetTransport final : public Transport {
 public:
  explicit NetTransport(PeerNetwork& network) : network_(network) {}
  void broadcast(const std::string& from, const Bytes& message) override;
  void send_to(const std::string& from, const std::string& to, const Bytes& message) override;
  void relay(const std::string& self, const std::string& received_from,
             const Bytes& message) override;

 private:
  PeerNetwork& network_;
};

}  // namespace mchain::net
