// The peer wire format, below TLS: every frame is a 4-byte big-endian payload length, then the
// payload. A payload starts with one kind byte:
//   kHello   the sender's node id (UTF-8); the first frame each side sends after the handshake
//   kGossip    an opaque message to deliver and flood
//   kDirect    an opaque message for this peer only: delivered, neither deduplicated nor flooded
//   kAnnounce  the SHA-256 of a large gossip message the sender holds (32 bytes)
//   kRequest   asks the announcer for that message (32 bytes); it answers with kGossip
//   kAgent     an opaque application message for this peer only (not consensus): handed to
//              the agent callback, never to consensus, never deduplicated or relayed
// Kept free of sockets so that it can be tested byte by byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>

#include "chain/error.h"
#include "chain/types.h"

namespace mchain::net {

inline constexpr std::size_t kFrameHeaderSize = 4;
inline constexpr std::size_t kDefaultMaxFrame = std::size_t{16} << 20;

enum class FrameKind : std::uint8_t {
  kHello = 1,
  kGossip = 2,
  kDirect = 3,
  kAnnounce = 4,
  kRequest = 5,
  kAgent = 6,
};

// Length prefix + payload. The caller keeps payload.size() below 2^32 (and below the cap its
// peers use).
Bytes encode_frame(ByteView payload);
Bytes encode_hello(std::string_view node_id);
Bytes encode_gossip(ByteView message);
Bytes encode_direct(ByteView message);
Bytes encode_announce(const Hash256& message_hash);
Bytes encode_request(const Hash256& message_hash);
Bytes encode_agent(ByteView message);

// Splits a byte stream into frame payloads. A length above `max_payload` is an error at once,
// from the header alone, so a peer cannot make us buffer a huge frame. After an error the
// decoder stays failed.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_payload = kDefaultMaxFrame) : max_payload_(max_payload) {}

  // Appends received bytes and splits off every complete frame.
  Status feed(ByteView data);
  // The oldest complete payload not yet taken, if any.
  std::optional<Bytes> next();
  bool failed() const { return failed_; }

 private:
  std::size_t max_payload_;
  Bytes buffer_;  // bytes of the incomplete frame at the end of the stream
  std::deque<Bytes> ready_;
  bool failed_ = false;
};

}  // namespace mchain::net
