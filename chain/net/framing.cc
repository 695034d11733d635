#include "chain/net/framing.h"

#include <algorithm>
#include <string>

namespace mchain::net {

Bytes encode_frame(ByteView payload) {
  auto n = static_cast<std::uint32_t>(payload.size());
  Bytes out;
  out.reserve(kFrameHeaderSize + payload.size());
  out.push_back(static_cast<std::uint8_t>(n >> 24));
  out.push_back(static_cast<std::uint8_t>(n >> 16));
  out.push_back(static_cast<std::uint8_t>(n >> 8));
  out.push_back(static_cast<std::uint8_t>(n));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

namespace {
Bytes tagged(FrameKind kind, ByteView body) {
  Bytes payload;
  payload.reserve(1 + body.size());
  payload.push_back(static_cast<std::uint8_t>(kind));
  payload.insert(payload.end(), body.begin(), body.end());
  return encode_frame(payload);
}
}  // namespace

Bytes encode_hello(std::string_view node_id) {
  return tagged(FrameKind::kHello, as_bytes(node_id));
}

Bytes encode_gossip(ByteView message) { return tagged(FrameKind::kGossip, message); }
Bytes encode_direct(ByteView message) { return tagged(FrameKind::kDirect, message); }
Bytes encode_announce(const Hash256& message_hash) {
  return tagged(FrameKind::kAnnounce, message_hash);
}
Bytes encode_request(const Hash256& message_hash) {
  return tagged(FrameKind::kRequest, message_hash);
}
Bytes encode_agent(ByteView message) { return tagged(FrameKind::kAgent, message); }

Status FrameDecoder::feed(ByteView data) {
  if (failed_) return fail("frame stream already failed");
  buffer_.insert(buffer_.end(), data.begin(), data.end());
  std::size_t pos = 0;
  while (buffer_.size() - pos >= kFrameHeaderSize) {
    const std::uint8_t* h = buffer_.data() + pos;
    std::size_t n = (std::size_t{h[0]} << 24) | (std::size_t{h[1]} << 16) |
                    (std::size_t{h[2]} << 8) | std::size_t{h[3]};
    if (n > max_payload_) {
      failed_ = true;
      buffer_.clear();
      return fail("frame of " + std::to_string(n) + " bytes exceeds the cap of " +
                  std::to_string(max_payload_));
    }
    if (buffer_.size() - pos - kFrameHeaderSize < n) break;
    auto begin = buffer_.begin() + static_cast<std::ptrdiff_t>(pos + kFrameHeaderSize);
    ready_.emplace_back(begin, begin + static_cast<std::ptrdiff_t>(n));
    pos += kFrameHeaderSize + n;
  }
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(pos));
  return {};
}

std::optional<Bytes> FrameDecoder::next() {
  if (ready_.empty()) return std::nullopt;
  Bytes out = std::move(ready_.front());
  ready_.pop_front();
  return out;
}

}  // namespace mchain::net
