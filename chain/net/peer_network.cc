#include "chain/net/peer_network.h"

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "chain/crypto/hash.h"
#include "chain/net/framing.h"
#include "chain/net/tls_identity.h"

namespace mchain::net {

namespace {

using asio::ip::tcp;
using SharedFrame = std::shared_ptr<const Bytes>;

constexpr auto kAskAgainAfter = std::chrono::seconds(1);
constexpr std::size_t kMaxAsked = 4096;

struct HashOfHash {
  std::size_t operator()(const Hash256& h) const noexcept {
    std::size_t out;
    std::memcpy(&out, h.data(), sizeof out);
    return out;
  }
};

// The last `capacity` message hashes seen, oldest forgotten first. Forgetting only risks one
// more delivery of a message older than `capacity` others, which the layers above tolerate
// (consensus messages are idempotent).
class RecentHashes {
 public:
  explicit RecentHashes(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {}

  // False if `h` was already remembered.
  bool insert(const Hash256& h) {
    if (!set_.insert(h).second) return false;
    order_.push_back(h);
    if (order_.size() > capacity_) {
      set_.erase(order_.front());
      order_.pop_front();
    }
    return true;
  }
  bool contains(const Hash256& h) const { return set_.contains(h); }

 private:
  std::size_t capacity_;
  std::unordered_set<Hash256, HashOfHash> set_;
  std::deque<Hash256> order_;
};

// Gossip frames of the large messages this node announced, kept to answer requests: newest
// kept, up to a byte budget.
class AnnouncedFrames {
 public:
  explicit AnnouncedFrames(std::size_t budget) : budget_(budget) {}

  void keep(const Hash256& h, SharedFrame frame) {
    if (frame->size() > budget_ || !frames_.emplace(h, frame).second) return;
    bytes_ += frame->size();
    order_.push_back(h);
    while (bytes_ > budget_) {
      auto oldest = frames_.find(order_.front());
      bytes_ -= oldest->second->size();
      frames_.erase(oldest);
      order_.pop_front();
    }
  }
  SharedFrame find(const Hash256& h) const {
    auto it = frames_.find(h);
    return it == frames_.end() ? nullptr : it->second;
  }

 private:
  std::size_t budget_;
  std::size_t bytes_ = 0;
  std::unordered_map<Hash256, SharedFrame, HashOfHash> frames_;
  std::deque<Hash256> order_;
};

// One TLS connection, owned by the handlers in flight on it and by the Impl's link maps.
struct Link : std::enable_shared_from_this<Link> {
  Link(asio::io_context& io, asio::ssl::context& ssl, std::size_t max_frame)
      : stream(io, ssl), resolver(io), deadline(io), decoder(max_frame) {}
  Link(tcp::socket socket, asio::ssl::context& ssl, std::size_t max_frame)
      : stream(std::move(socket), ssl),
        resolver(stream.get_executor()),
        deadline(stream.get_executor()),
        decoder(max_frame) {}

  asio::ssl::stream<tcp::socket> stream;
  tcp::resolver resolver;
  asio::steady_timer deadline;  // handshake and hello
  bool outbound = false;
  bool established = false;
  bool closed = false;
  std::string peer_id;  // the dialled id for outbound links, the hello's id for inbound ones
  std::optional<crypto::PublicKey> cert_key;
  std::array<std::uint8_t, 64 * 1024> read_buffer{};
  FrameDecoder decoder;
  std::deque<SharedFrame> queue;  // front() is being written while `writing`
  std::size_t queued_bytes = 0;
  bool writing = false;
};

}  // namespace

struct PeerNetwork::Impl {
  Impl(Options o, Admission a, Deliver d, SslCtxPtr ctx)
      : options(std::move(o)),
        admission(std::move(a)),
        deliver(std::move(d)),
        ssl(ctx.release()),  // asio::ssl::context owns the handle from here
        acceptor(io),
        seen(options.dedup_capacity),
        announced(options.announced_bytes),
        rng(std::random_device{}()) {}

  struct Dialer {
    Dialer(asio::io_context& io, PeerAddress a, std::chrono::milliseconds b)
        : address(std::move(a)), timer(io), backoff(b) {}
    PeerAddress address;
    asio::steady_timer timer;
    std::chrono::milliseconds backoff;
    bool dialled_before = false;
    std::shared_ptr<Link> link;  // the current attempt or established link
  };

  Options options;
  Admission admission;
  Deliver deliver;
  // Declared before everything holding sockets or timers, so it is destroyed after them.
  asio::io_context io;
  asio::ssl::context ssl;
  tcp::acceptor acceptor;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::mutex stop_mutex;
  std::uint16_t port = 0;

  // Network thread only.
  bool stopping = false;
  std::map<std::string, std::shared_ptr<Link>> established;
  std::set<std::shared_ptr<Link>> pending;  // handshake or hello not finished
  std::map<std::string, std::unique_ptr<Dialer>> dialers;
  RecentHashes seen;
  AnnouncedFrames announced;
  // Announced messages asked for, and when: asked again of another announcer only later.
  std::unordered_map<Hash256, std::chrono::steady_clock::time_point, HashOfHash> asked;
  std::mt19937_64 rng;

  struct Counters {
    std::atomic<std::uint64_t> frames_in{0}, frames_out{0}, bytes_in{0}, bytes_out{0}, delivered{0},
        duplicates{0}, refused_unknown{0}, refused_wrong_key{0}, refused_handshake{0},
        oversize_frames{0}, queue_overflows{0}, reconnects{0}, announced{0}, requested{0},
        served{0}, agent_in{0}, agent_out{0}, agent_dropped{0};
  } counters;
  mutable std::mutex connected_mutex;
  std::set<std::string> connected;

  void log(const std::string& line) const {
    std::string full = "net[" + options.node_id + "]: " + line;
    if (options.log) {
      try {
        options.log(full);
      } catch (...) {
        // A failing logger must not take the network thread down.
      }
    } else {
      std::fprintf(stderr, "%s\n", full.c_str());
    }
  }

  std::optional<crypto::PublicKey> admitted(const std::string& id) const {
    try {
      return admission(id);
    } catch (const std::exception& e) {
      log("admission callback failed for " + id + ": " + e.what() + "; refusing");
    } catch (...) {
      log("admission callback failed for " + id + "; refusing");
    }
    return std::nullopt;
  }

  std::string describe(const Link& link) const {
    std::string who = link.peer_id.empty() ? std::string("unidentified peer") : link.peer_id;
    asio::error_code ec;
    auto endpoint = link.stream.lowest_layer().remote_endpoint(ec);
    if (!ec)
      who += " (" + endpoint.address().to_string() + ":" + std::to_string(endpoint.port()) + ")";
    return who;
  }

  // --- lifecycle ---------------------------------------------------------------------------

  void run() {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        log(std::string("internal error in a handler: ") + e.what());
      } catch (...) {
        log("internal error in a handler");
      }
    }
  }

  void begin() {
    accept_next();
    for (auto& [id, dialer] : dialers) dial(*dialer);
  }

  void shutdown() {
    stopping = true;
    asio::error_code ec;
    acceptor.close(ec);
    for (auto& [id, dialer] : dialers) dialer->timer.cancel();
    std::vector<std::shared_ptr<Link>> all(pending.begin(), pending.end());
    for (auto& [id, link] : established) all.push_back(link);
    for (auto& link : all) close(link, "shutting down");
    work.reset();
  }

  // --- links -------------------------------------------------------------------------------

  void arm_deadline(const std::shared_ptr<Link>& link) {
    link->deadline.expires_after(options.handshake_timeout);
    link->deadline.async_wait([this, link](const asio::error_code& ec) {
      if (ec || link->closed || link->established) return;
      refuse(link, counters.refused_handshake, "handshake timed out");
    });
  }

  void close(const std::shared_ptr<Link>& link, const std::string& reason) {
    if (link->closed) return;
    link->closed = true;
    std::string who = describe(*link);  // while the socket still knows its peer address
    // Closing the socket aborts the read, the write and the TLS state in one step; a
    // close_notify would need the peer to cooperate, which a stuck peer does not.
    asio::error_code ec;
    link->resolver.cancel();
    link->deadline.cancel();
    link->stream.lowest_layer().close(ec);
    pending.erase(link);
    if (link->established) {
      auto it = established.find(link->peer_id);
      if (it != established.end() && it->second == link) {
        established.erase(it);
        std::lock_guard lock(connected_mutex);
        connected.erase(link->peer_id);
      }
    }
    if (stopping) return;
    log("closed link to " + who + ": " + reason);
    if (link->outbound) {
      auto it = dialers.find(link->peer_id);
      if (it != dialers.end() && it->second->link == link) {
        it->second->link.reset();
        schedule_redial(*it->second);
      }
    }
  }

  void refuse(const std::shared_ptr<Link>& link, std::atomic<std::uint64_t>& counter,
              const std::string& reason) {
    if (link->closed) return;
    ++counter;
    close(link, "refused: " + reason);
  }

  // Marks and proposals are small and latency-bound: without this, Nagle's algorithm holds a
  // mark back until the previous segment is acknowledged, up to a delayed-ACK timeout (40 ms).
  static void no_delay(Link& link) {
    asio::error_code ec;
    link.stream.lowest_layer().set_option(asio::ip::tcp::no_delay(true), ec);
  }

  void accept_next() {
    acceptor.async_accept([this](const asio::error_code& ec, tcp::socket socket) {
      if (stopping) return;
      if (!ec) {
        auto link = std::make_shared<Link>(std::move(socket), ssl, options.max_frame);
        no_delay(*link);
        pending.insert(link);
        arm_deadline(link);
        link->stream.async_handshake(
            asio::ssl::stream_base::server,
            [this, link](const asio::error_code& hec) { on_handshake(link, hec); });
      } else {
        log("accept failed: " + ec.message());
      }
      accept_next();
    });
  }

  void schedule_redial(Dialer& d) {
    if (stopping) return;
    auto upper = d.backoff.count();
    std::uniform_int_distribution<long long> pick(upper / 2, upper);
    d.timer.expires_after(std::chrono::milliseconds(pick(rng)));
    d.backoff = std::min(d.backoff * 2, options.max_backoff);
    d.timer.async_wait([this, &d](const asio::error_code& ec) {
      if (!ec && !stopping) dial(d);
    });
  }

  void dial(Dialer& d) {
    if (established.contains(d.address.id)) {
      // Linked already (the peer dialled us): look again later, in case the link drops.
      d.backoff = options.max_backoff;
      return schedule_redial(d);
    }
    if (d.dialled_before) ++counters.reconnects;
    d.dialled_before = true;
    auto link = std::make_shared<Link>(io, ssl, options.max_frame);
    link->outbound = true;
    link->peer_id = d.address.id;
    d.link = link;
    pending.insert(link);
    arm_deadline(link);
    link->resolver.async_resolve(
        d.address.host, std::to_string(d.address.port),
        [this, link](const asio::error_code& ec, const tcp::resolver::results_type& results) {
          if (link->closed) return;
          if (ec) return close(link, "cannot resolve: " + ec.message());
          asio::async_connect(
              link->stream.lowest_layer(), results,
              [this, link](const asio::error_code& cec, const tcp::endpoint&) {
                if (link->closed) return;
                if (cec) return close(link, "cannot connect: " + cec.message());
                no_delay(*link);
                link->stream.async_handshake(
                    asio::ssl::stream_base::client,
                    [this, link](const asio::error_code& hec) { on_handshake(link, hec); });
              });
        });
  }

  void on_handshake(const std::shared_ptr<Link>& link, const asio::error_code& ec) {
    if (link->closed) return;
    if (ec) return refuse(link, counters.refused_handshake, "TLS handshake: " + ec.message());
    auto key = peer_public_key(link->stream.native_handle());
    if (!key) return refuse(link, counters.refused_handshake, key.error().message);
    link->cert_key = *std::move(key);
    if (link->outbound) {
      // We know whom we dialled: check the server's key before saying anything.
      if (!check_key(link, link->peer_id)) return;
      enqueue(link, std::make_shared<const Bytes>(encode_hello(options.node_id)));
    }
    read_next(link);
  }

  // Whether `id` is admitted with exactly the key `link` proved in its handshake; refuses the
  // link if not.
  bool check_key(const std::shared_ptr<Link>& link, const std::string& id) {
    auto key = admitted(id);
    if (!key) {
      refuse(link, counters.refused_unknown, "node " + id + " is not admitted");
      return false;
    }
    if (!(*key == *link->cert_key)) {
      refuse(link, counters.refused_wrong_key,
             "certificate key is not the key admitted for node " + id);
      return false;
    }
    return true;
  }

  void read_next(const std::shared_ptr<Link>& link) {
    link->stream.async_read_some(
        asio::buffer(link->read_buffer), [this, link](const asio::error_code& ec, std::size_t n) {
          if (link->closed) return;
          if (ec) {
            if (!link->established) {
              return refuse(link, counters.refused_handshake,
                            "closed before hello: " + ec.message());
            }
            return close(link, "connection lost: " + ec.message());
          }
          counters.bytes_in += n;
          if (auto fed = link->decoder.feed(ByteView(link->read_buffer.data(), n)); !fed) {
            ++counters.oversize_frames;
            return close(link, fed.error().message);
          }
          while (auto frame = link->decoder.next()) {
            ++counters.frames_in;
            on_frame(link, *frame);
            if (link->closed) return;
          }
          read_next(link);
        });
  }

  void on_frame(const std::shared_ptr<Link>& link, const Bytes& payload) {
    if (payload.empty()) return refuse_or_close(link, "empty frame");
    auto kind = static_cast<FrameKind>(payload[0]);
    if (kind == FrameKind::kHello && !link->established) return on_hello(link, payload);
    if (kind == FrameKind::kGossip && link->established) return on_gossip(link, payload);
    if (kind == FrameKind::kDirect && link->established) return on_direct(link, payload);
    if (kind == FrameKind::kAnnounce && link->established) return on_announce(link, payload);
    if (kind == FrameKind::kRequest && link->established) return on_request(link, payload);
    if (kind == FrameKind::kAgent && link->established) return on_agent(link, payload);
    refuse_or_close(link, "unexpected frame kind " + std::to_string(payload[0]));
  }

  void refuse_or_close(const std::shared_ptr<Link>& link, const std::string& reason) {
    if (link->established) return close(link, "protocol error: " + reason);
    refuse(link, counters.refused_handshake, reason);
  }

  void on_hello(const std::shared_ptr<Link>& link, const Bytes& payload) {
    std::string id(payload.begin() + 1, payload.end());
    if (!valid_id(id) || id == options.node_id) {
      return refuse(link, counters.refused_handshake, "malformed hello");
    }
    if (link->outbound) {
      if (id != link->peer_id) {
        return refuse(link, counters.refused_wrong_key,
                      "dialled " + link->peer_id + " but the peer says it is " + id);
      }
    } else {
      if (!check_key(link, id)) return;
      // The lower id dials (see the header); a link from a peer we dial ourselves would only
      // make the two links replace each other forever.
      if (id > options.node_id && dialers.contains(id)) {
        return refuse(link, counters.refused_handshake,
                      "duplicate link: " + options.node_id + " dials " + id);
      }
      link->peer_id = id;
      enqueue(link, std::make_shared<const Bytes>(encode_hello(options.node_id)));
      if (link->closed) return;
    }
    establish(link);
  }

  void establish(const std::shared_ptr<Link>& link) {
    link->established = true;
    link->deadline.cancel();
    pending.erase(link);
    if (auto it = established.find(link->peer_id); it != established.end()) {
      auto old = it->second;
      close(old, "replaced by a newer link");
    }
    established[link->peer_id] = link;
    {
      std::lock_guard lock(connected_mutex);
      connected.insert(link->peer_id);
    }
    if (auto it = dialers.find(link->peer_id); it != dialers.end() && link->outbound) {
      it->second->backoff = options.initial_backoff;
    }
    log("connected to " + describe(*link) + (link->outbound ? " (dialled)" : " (accepted)"));
    if (options.on_link) {
      try {
        options.on_link(link->peer_id);
      } catch (...) {
        log("link callback failed");
      }
    }
  }

  void hand_over(const std::string& peer, const Bytes& message) {
    ++counters.delivered;
    try {
      deliver(peer, message);
    } catch (const std::exception& e) {
      log(std::string("deliver callback failed: ") + e.what());
    } catch (...) {
      log("deliver callback failed");
    }
  }

  void on_direct(const std::shared_ptr<Link>& link, const Bytes& payload) {
    hand_over(link->peer_id, Bytes(payload.begin() + 1, payload.end()));
  }

  // Agent messages go to their own callback only: consensus would take an unknown message for
  // a malformed one and exclude the peer. What is dropped is logged by size, never by content
  // (these messages carry secrets, sealed or not).
  void on_agent(const std::shared_ptr<Link>& link, const Bytes& payload) {
    ++counters.agent_in;
    const std::size_t size = payload.size() - 1;
    if (size > options.max_agent_message) {
      ++counters.agent_dropped;
      return log("dropped an agent message of " + std::to_string(size) + " bytes from " +
                 link->peer_id + ": above the cap of " + std::to_string(options.max_agent_message));
    }
    if (!options.on_agent_message) {
      ++counters.agent_dropped;
      return log("dropped an agent message of " + std::to_string(size) + " bytes from " +
                 link->peer_id + ": no agent callback here");
    }
    try {
      options.on_agent_message(link->peer_id, Bytes(payload.begin() + 1, payload.end()));
    } catch (const std::exception& e) {
      log(std::string("agent callback failed: ") + e.what());
    } catch (...) {
      log("agent callback failed");
    }
  }

  void on_gossip(const std::shared_ptr<Link>& link, const Bytes& payload) {
    ByteView message(payload.data() + 1, payload.size() - 1);
    const Hash256 hash = crypto::sha256(message);
    if (!seen.insert(hash)) {
      ++counters.duplicates;
      return;
    }
    asked.erase(hash);
    hand_over(link->peer_id, Bytes(message.begin(), message.end()));
    if (!options.relay_after_check) {
      pass_on(hash, std::make_shared<const Bytes>(encode_frame(payload)), link.get());
    }
  }

  // Floods a gossip frame on, or for a large message its hash (see the header).
  void pass_on(const Hash256& hash, SharedFrame frame, const Link* except) {
    if (frame->size() <= kFrameHeaderSize + 1 + options.announce_above) {
      return flood(frame, except);
    }
    announced.keep(hash, std::move(frame));
    ++counters.announced;
    flood(std::make_shared<const Bytes>(encode_announce(hash)), except);
  }

  static std::optional<Hash256> hash_of(const Bytes& payload) {
    if (payload.size() != 1 + sizeof(Hash256)) return std::nullopt;
    Hash256 h;
    std::copy(payload.begin() + 1, payload.end(), h.begin());
    return h;
  }

  void on_announce(const std::shared_ptr<Link>& link, const Bytes& payload) {
    auto hash = hash_of(payload);
    if (!hash) return refuse_or_close(link, "announce of the wrong size");
    if (seen.contains(*hash)) return;
    const auto now = std::chrono::steady_clock::now();
    if (auto it = asked.find(*hash); it != asked.end() && now - it->second < kAskAgainAfter) return;
    if (asked.size() >= kMaxAsked) {  // bounded against a peer announcing junk
      std::erase_if(asked, [&](const auto& entry) { return now - entry.second >= kAskAgainAfter; });
      if (asked.size() >= kMaxAsked) asked.clear();
    }
    asked[*hash] = now;
    ++counters.requested;
    enqueue(link, std::make_shared<const Bytes>(encode_request(*hash)));
  }

  void on_request(const std::shared_ptr<Link>& link, const Bytes& payload) {
    auto hash = hash_of(payload);
    if (!hash) return refuse_or_close(link, "request of the wrong size");
    if (SharedFrame frame = announced.find(*hash)) {
      ++counters.served;
      enqueue(link, std::move(frame));
    }
  }

  void relay_delivered(Bytes message, const std::string& from_peer) {
    if (stopping || !options.relay_after_check) return;
    auto from = established.find(from_peer);
    const Link* except = from != established.end() ? from->second.get() : nullptr;
    const Hash256 hash = crypto::sha256(message);
    pass_on(hash, std::make_shared<const Bytes>(encode_gossip(message)), except);
  }

  // Queues `frame` on every established link except `except`.
  void flood(const SharedFrame& frame, const Link* except) {
    std::vector<std::shared_ptr<Link>> targets;
    for (auto& [id, link] : established) {
      if (link.get() != except) targets.push_back(link);
    }
    for (auto& link : targets) enqueue(link, frame);
  }

  void enqueue(const std::shared_ptr<Link>& link, SharedFrame frame) {
    if (link->closed) return;
    if (link->queue.size() >= options.max_queue_messages ||
        link->queued_bytes + frame->size() > options.max_queue_bytes) {
      ++counters.queue_overflows;
      return close(link, "send queue full (" + std::to_string(link->queue.size()) + " messages, " +
                             std::to_string(link->queued_bytes) + " bytes)");
    }
    link->queued_bytes += frame->size();
    link->queue.push_back(std::move(frame));
    if (!link->writing) write_next(link);
  }

  static bool is_agent_frame(const Bytes& frame) {
    return frame.size() > kFrameHeaderSize &&
           frame[kFrameHeaderSize] == static_cast<std::uint8_t>(FrameKind::kAgent);
  }

  void write_next(const std::shared_ptr<Link>& link) {
    link->writing = true;
    // The frame stays at the front of the queue, alive, until the write completes.
    asio::async_write(link->stream, asio::buffer(*link->queue.front()),
                      [this, link](const asio::error_code& ec, std::size_t n) {
                        link->writing = false;
                        if (link->closed) return;
                        if (ec) return close(link, "send failed: " + ec.message());
                        ++counters.frames_out;
                        counters.bytes_out += n;
                        if (is_agent_frame(*link->queue.front())) ++counters.agent_out;
                        link->queued_bytes -= link->queue.front()->size();
                        link->queue.pop_front();
                        if (!link->queue.empty()) write_next(link);
                      });
  }

  void local_broadcast(Bytes message) {
    if (stopping) return;
    if (!seen.insert(crypto::sha256(message))) {
      ++counters.duplicates;
      return;
    }
    flood(std::make_shared<const Bytes>(encode_gossip(message)), nullptr);
  }

  void recheck() {
    if (stopping) return;
    std::vector<std::shared_ptr<Link>> links;
    for (auto& [id, link] : established) links.push_back(link);
    for (auto& link : links) check_key(link, link->peer_id);
  }
};

Result<std::unique_ptr<PeerNetwork>> PeerNetwork::start(Options options,
                                                        const crypto::PrivateKey& node_key,
                                                        Admission admission, Deliver deliver) {
  if (!valid_id(options.node_id)) return fail("peer network: invalid node id");
  if (!admission || !deliver) return fail("peer network: admission and deliver are required");
  if (options.max_frame < 2 || options.max_frame > 0xffffffffu) {
    return fail("peer network: max_frame must be within [2, 2^32)");
  }
  // An agent message travels in one frame, after its kind byte.
  options.max_agent_message = std::min(options.max_agent_message, options.max_frame - 1);
  if (options.initial_backoff.count() <= 0 || options.max_backoff < options.initial_backoff) {
    return fail("peer network: need 0 < initial_backoff <= max_backoff");
  }
  auto ctx = make_tls_context(node_key, options.node_id);
  if (!ctx) return fail("peer network: " + ctx.error().message);

  auto impl = std::make_unique<Impl>(std::move(options), std::move(admission), std::move(deliver),
                                     *std::move(ctx));
  const Options& opt = impl->options;

  asio::error_code ec;
  auto address = asio::ip::make_address(opt.listen_host, ec);
  if (ec) return fail("peer network: listen address " + opt.listen_host + ": " + ec.message());
  tcp::endpoint endpoint(address, opt.listen_port);
  auto& acceptor = impl->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  // A restarted node takes its port back while old connections linger in TIME_WAIT.
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail("peer network: cannot listen on " + opt.listen_host + ":" +
                std::to_string(opt.listen_port) + ": " + ec.message());
  }
  impl->port = acceptor.local_endpoint(ec).port();
  if (ec) return fail("peer network: " + ec.message());

  for (const auto& peer : opt.peers) {
    if (!valid_id(peer.id)) return fail("peer network: invalid peer id " + peer.id);
    if ((peer.id > opt.node_id || opt.dial_every_peer) && !impl->dialers.contains(peer.id)) {
      impl->dialers.emplace(peer.id,
                            std::make_unique<Impl::Dialer>(impl->io, peer, opt.initial_backoff));
    }
  }

  impl->work.emplace(impl->io.get_executor());
  Impl* raw = impl.get();
  asio::post(impl->io, [raw] { raw->begin(); });
  impl->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<PeerNetwork>(new PeerNetwork(std::move(impl)));
}

PeerNetwork::PeerNetwork(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PeerNetwork::~PeerNetwork() { stop(); }

const std::string& PeerNetwork::node_id() const { return impl_->options.node_id; }

std::uint16_t PeerNetwork::port() const { return impl_->port; }

Status PeerNetwork::send_to(const std::string& peer, Bytes message) {
  if (message.size() + 1 > impl_->options.max_frame) {
    return fail("message of " + std::to_string(message.size()) +
                " bytes does not fit the frame cap of " + std::to_string(impl_->options.max_frame));
  }
  Impl* raw = impl_.get();
  asio::post(impl_->io, [raw, peer, m = std::move(message)] {
    if (raw->stopping) return;
    auto it = raw->established.find(peer);
    if (it != raw->established.end()) {
      raw->enqueue(it->second, std::make_shared<const Bytes>(encode_direct(m)));
    }
  });
  return {};
}

Status PeerNetwork::send_agent(const std::string& peer, Bytes message) {
  const std::size_t cap = impl_->options.max_agent_message;
  if (message.size() > cap) {
    return fail("agent message of " + std::to_string(message.size()) +
                " bytes is above the cap of " + std::to_string(cap));
  }
  {
    // The set the network thread keeps for snapshot(): the caller learns now, not never, that
    // the addressee is not there.
    std::lock_guard lock(impl_->connected_mutex);
    if (!impl_->connected.contains(peer)) {
      return fail("agent message for " + peer + ": no established link to that peer");
    }
  }
  Impl* raw = impl_.get();
  asio::post(impl_->io, [raw, peer, m = std::move(message)] {
    if (raw->stopping) return;
    auto it = raw->established.find(peer);
    if (it == raw->established.end()) {
      // The link went between the check above and now.
      ++raw->counters.agent_dropped;
      return raw->log("dropped an agent message of " + std::to_string(m.size()) + " bytes for " +
                      peer + ": the link closed before it was queued");
    }
    raw->enqueue(it->second, std::make_shared<const Bytes>(encode_agent(m)));
  });
  return {};
}

void PeerNetwork::relay(Bytes message, const std::string& from_peer) {
  Impl* raw = impl_.get();
  asio::post(impl_->io, [raw, m = std::move(message), from_peer]() mutable {
    raw->relay_delivered(std::move(m), from_peer);
  });
}

Status PeerNetwork::broadcast(Bytes message) {
  if (message.size() + 1 > impl_->options.max_frame) {
    return fail("message of " + std::to_string(message.size()) +
                " bytes does not fit the frame cap of " + std::to_string(impl_->options.max_frame));
  }
  Impl* raw = impl_.get();
  asio::post(impl_->io,
             [raw, m = std::move(message)]() mutable { raw->local_broadcast(std::move(m)); });
  return {};
}

void PeerNetwork::recheck_admission() {
  Impl* raw = impl_.get();
  asio::post(impl_->io, [raw] { raw->recheck(); });
}

NetMetrics PeerNetwork::snapshot() const {
  const auto& c = impl_->counters;
  NetMetrics m;
  m.frames_in = c.frames_in;
  m.frames_out = c.frames_out;
  m.bytes_in = c.bytes_in;
  m.bytes_out = c.bytes_out;
  m.delivered = c.delivered;
  m.duplicates = c.duplicates;
  m.refused_unknown = c.refused_unknown;
  m.refused_wrong_key = c.refused_wrong_key;
  m.refused_handshake = c.refused_handshake;
  m.oversize_frames = c.oversize_frames;
  m.queue_overflows = c.queue_overflows;
  m.reconnects = c.reconnects;
  m.announced = c.announced;
  m.requested = c.requested;
  m.served = c.served;
  m.agent_in = c.agent_in;
  m.agent_out = c.agent_out;
  m.agent_dropped = c.agent_dropped;
  std::lock_guard lock(impl_->connected_mutex);
  m.connected = impl_->connected;
  return m;
}

void PeerNetwork::stop() {
  std::lock_guard lock(impl_->stop_mutex);
  if (!impl_->thread.joinable()) return;
  Impl* raw = impl_.get();
  asio::post(impl_->io, [raw] { raw->shutdown(); });
  impl_->thread.join();
}

void NetTransport::send_to(const std::string& from, const std::string& to, const Bytes& message) {
  if (from != network_.node_id()) return;
  if (auto sent = network_.send_to(to, message); !sent) {
    std::fprintf(stderr, "net[%s]: %s\n", network_.node_id().c_str(), sent.error().message.c_str());
  }
}

void NetTransport::relay(const std::string& self, const std::string& received_from,
                         const Bytes& message) {
  if (self == network_.node_id() && received_from != self) network_.relay(message, received_from);
}

void NetTransport::broadcast(const std::string& from, const Bytes& message) {
  if (from != network_.node_id()) {
    std::fprintf(stderr, "net[%s]: refusing to send a message as %s\n", network_.node_id().c_str(),
                 from.c_str());
    return;
  }
  if (auto sent = network_.broadcast(message); !sent) {
    std::fprintf(stderr, "net[%s]: %s\n", network_.node_id().c_str(), sent.error().message.c_str());
  }
}

}  // namespace mchain::net
