#include "chain/node/messages.h"

#include "chain/crypto/hash.h"
#include "chain/encoding/cbor.h"
#include "chain/encoding/fields.h"

namespace mchain {

namespace {

constexpr std::uint64_t kMessageVersion = 1;
enum class Kind : std::uint8_t {
  package = 0,
  proposal = 1,
  mark = 2,
  accusation = 3,
  status = 4,
  mined = 5,
  sync_request = 6,
  sync_reply = 7,
};
constexpr std::uint64_t kMaxKind = 7;
constexpr std::uint64_t kMaxVerdict = static_cast<std::uint64_t>(Verdict::timestamp_skew);

SemiFinishedBlock read_block(cbor::Reader& r, std::string_view field, const BlockLimits& limits) {
  const std::size_t at = r.offset();
  auto block = SemiFinishedBlock::decode(r.item(field), limits);
  if (!block) throw cbor::DecodeError(std::string(field), block.error().message, at);
  return *std::move(block);
}

Block read_mature(cbor::Reader& r, std::string_view field, const BlockLimits& limits) {
  const std::size_t at = r.offset();
  auto block = Block::decode(r.item(field), limits);
  if (!block) throw cbor::DecodeError(std::string(field), block.error().message, at);
  return *std::move(block);
}

void write_hashes(cbor::Writer& w, const std::vector<Hash256>& hashes) {
  w.array(hashes.size());
  for (const Hash256& h : hashes) w.bytes(h);
}

std::vector<Hash256> read_hashes(cbor::Reader& r, std::string_view field) {
  std::vector<Hash256> out(r.array(field, kMaxLocator));
  for (Hash256& h : out) h = r.fixed_bytes<32>(field);
  return out;
}

}  // namespace

Bytes StatusReport::signing_message() const {
  cbor::Writer w;
  w.array(8)
      .text("mchain/status/v1")
      .text(node)
      .uint(confirmed)
      .bytes(last_confirmed)
      .uint(attempt)
      .uint(height)
      .bytes(tip)
      .uint(time);
  return w.take();
}

Bytes Accusation::signing_message() const {
  cbor::Writer w;
  w.array(5)
      .text("mchain/accusation/v1")
      .text(accuser)
      .bytes(proposal.hash())
      .uint(package_index)
      .uint(static_cast<std::uint64_t>(verdict));
  return w.take();
}

Result<Accusation> Accusation::make(std::string accuser, SemiFinishedBlock proposal,
                                    std::uint32_t package_index, Verdict verdict,
                                    const crypto::Signer& signer) {
  Accusation a{std::move(accuser), std::move(proposal), package_index, verdict, {}};
  auto signature = signer.sign(a.signing_message());
  if (!signature) return fail("signing an accusation: " + signature.error().message);
  a.signature = *std::move(signature);
  return a;
}

namespace {

template <class T>
Bytes encode_one(const T& m) {
  cbor::Writer w;
  w.array(3).uint(kMessageVersion);
  if constexpr (std::is_same_v<T, PackageGossip>) {
    w.uint(static_cast<std::uint64_t>(Kind::package)).raw(m.package.encode());
  } else if constexpr (std::is_same_v<T, Proposal>) {
    w.uint(static_cast<std::uint64_t>(Kind::proposal)).raw(m.block.encode());
  } else if constexpr (std::is_same_v<T, Mark>) {
    w.uint(static_cast<std::uint64_t>(Kind::mark)).array(3).bytes(m.candidate).text(m.mark.node);
    cbor::write_signature(w, m.mark.signature);
  } else if constexpr (std::is_same_v<T, Accusation>) {
    w.uint(static_cast<std::uint64_t>(Kind::accusation))
        .array(5)
        .text(m.accuser)
        .raw(m.proposal.encode());
    w.uint(m.package_index).uint(static_cast<std::uint64_t>(m.verdict));
    cbor::write_signature(w, m.signature);
  } else if constexpr (std::is_same_v<T, StatusReport>) {
    w.uint(static_cast<std::uint64_t>(Kind::status))
        .array(8)
        .text(m.node)
        .uint(m.confirmed)
        .bytes(m.last_confirmed)
        .uint(m.attempt)
        .uint(m.height)
        .bytes(m.tip)
        .uint(m.time);
    cbor::write_signature(w, m.signature);
  } else if constexpr (std::is_same_v<T, MinedBlock>) {
    w.uint(static_cast<std::uint64_t>(Kind::mined)).raw(m.block.encode());
  } else if constexpr (std::is_same_v<T, SyncRequest>) {
    w.uint(static_cast<std::uint64_t>(Kind::sync_request)).array(3).text(m.node);
    write_hashes(w, m.confirmed);
    write_hashes(w, m.mature);
  } else {
    static_assert(std::is_same_v<T, SyncReply>);
    w.uint(static_cast<std::uint64_t>(Kind::sync_reply)).array(3);
    w.array(m.confirmed.size());
    for (const SemiFinishedBlock& b : m.confirmed) w.raw(b.encode());
    w.array(m.mature.size());
    for (const Block& b : m.mature) w.raw(b.encode());
    w.uint(m.more ? 1 : 0);
  }
  return w.take();
}

}  // namespace

Bytes encode_message(const Message& message) {
  return std::visit([](const auto& m) { return encode_one(m); }, message);
}

Bytes encode_message(const Proposal& proposal) { return encode_one(proposal); }

Result<Message> decode_message(ByteView encoded, const BlockLimits& limits) {
  return cbor::decode(encoded, "message", [&](cbor::Reader& r) -> Message {
    r.array_exact("message", 3);
    cbor::expect_version(r, "message.version", kMessageVersion, "message format");
    switch (static_cast<Kind>(r.uint("message.kind", kMaxKind))) {
      case Kind::package: {
        const std::size_t at = r.offset();
        auto package = Package::decode(r.item("package"), limits.package);
        if (!package) throw cbor::DecodeError("package", package.error().message, at);
        return PackageGossip{*std::move(package)};
      }
      case Kind::proposal: {
        const std::size_t at = r.offset();
        Hash256 hash{};
        auto block = SemiFinishedBlock::decode(r.item("proposal"), limits, hash);
        if (!block) throw cbor::DecodeError("proposal", block.error().message, at);
        return Proposal{*std::move(block), hash};
      }
      case Kind::mark: {
        r.array_exact("mark", 3);
        Mark m;
        m.candidate = r.fixed_bytes<32>("mark.candidate");
        m.mark.node = cbor::read_id(r, "mark.node");
        m.mark.signature = cbor::read_signature(r, "mark.signature");
        return m;
      }
      case Kind::accusation: {
        r.array_exact("accusation", 5);
        Accusation a;
        a.accuser = cbor::read_id(r, "accusation.accuser");
        a.proposal = read_block(r, "accusation.proposal", limits);
        a.package_index =
            static_cast<std::uint32_t>(r.uint("accusation.package_index", UINT32_MAX));
        a.verdict = static_cast<Verdict>(r.uint("accusation.verdict", kMaxVerdict));
        a.signature = cbor::read_signature(r, "accusation.signature");
        return a;
      }
      case Kind::status: {
        r.array_exact("status", 8);
        StatusReport s;
        s.node = cbor::read_id(r, "status.node");
        s.confirmed = r.uint("status.confirmed");
        s.last_confirmed = r.fixed_bytes<32>("status.last_confirmed");
        s.attempt = r.uint("status.attempt");
        s.height = r.uint("status.height");
        s.tip = r.fixed_bytes<32>("status.tip");
        s.time = r.uint("status.time");
        s.signature = cbor::read_signature(r, "status.signature");
        return s;
      }
      case Kind::mined: return MinedBlock{read_mature(r, "mined", limits)};
      case Kind::sync_request: {
        r.array_exact("sync_request", 3);
        SyncRequest q;
        q.node = cbor::read_id(r, "sync_request.node");
        q.confirmed = read_hashes(r, "sync_request.confirmed");
        q.mature = read_hashes(r, "sync_request.mature");
        return q;
      }
      case Kind::sync_reply: {
        r.array_exact("sync_reply", 3);
        SyncReply reply;
        // Each block is capped by the limits; the whole message by the network's frame cap.
        reply.confirmed.resize(r.array("sync_reply.confirmed", kMaxSyncBlocks));
        for (auto& b : reply.confirmed) b = read_block(r, "sync_reply.confirmed", limits);
        reply.mature.resize(r.array("sync_reply.mature", kMaxSyncBlocks));
        for (auto& b : reply.mature) b = read_mature(r, "sync_reply.mature", limits);
        reply.more = r.uint("sync_reply.more", 1) == 1;
        return reply;
      }
    }
    throw cbor::DecodeError("message.kind", "unknown message kind", r.offset());
  });
}

}  // namespace mchain
