#include "chain/node/messages.h"

#include "chain/crypto/hash.h"
#include "chain/encoding/cbor.h"
#include "chain/encoding/fields.h"

namespace mchain {

namespace {

constexpr std::uint64_t kMessageVersion = 1;
enum class Kind : std::uint8_t { package = 0, proposal = 1, mark = 2, accusation = 3 };
constexpr std::uint64_t kMaxVerdict = static_cast<std::uint64_t>(Verdict::timestamp_skew);

SemiFinishedBlock read_block(cbor::Reader& r, std::string_view field, const BlockLimits& limits) {
  const std::size_t at = r.offset();
  auto block = SemiFinishedBlock::decode(r.item(field), limits);
  if (!block) throw cbor::DecodeError(std::string(field), block.error().message, at);
  return *std::move(block);
}

}  // namespace

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

Bytes encode_message(const Message& message) {
  cbor::Writer w;
  w.array(3).uint(kMessageVersion);
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, PackageGossip>) {
          w.uint(static_cast<std::uint64_t>(Kind::package)).raw(m.package.encode());
        } else if constexpr (std::is_same_v<T, Proposal>) {
          w.uint(static_cast<std::uint64_t>(Kind::proposal)).raw(m.block.encode());
        } else if constexpr (std::is_same_v<T, Mark>) {
          w.uint(static_cast<std::uint64_t>(Kind::mark))
              .array(3)
              .bytes(m.candidate)
              .text(m.mark.node);
          cbor::write_signature(w, m.mark.signature);
        } else {
          w.uint(static_cast<std::uint64_t>(Kind::accusation))
              .array(5)
              .text(m.accuser)
              .raw(m.proposal.encode());
          w.uint(m.package_index).uint(static_cast<std::uint64_t>(m.verdict));
          cbor::write_signature(w, m.signature);
        }
      },
      message);
  return w.take();
}

Result<Message> decode_message(ByteView encoded, const BlockLimits& limits) {
  return cbor::decode(encoded, "message", [&](cbor::Reader& r) -> Message {
    r.array_exact("message", 3);
    cbor::expect_version(r, "message.version", kMessageVersion, "message format");
    switch (static_cast<Kind>(r.uint("message.kind", 3))) {
      case Kind::package: {
        const std::size_t at = r.offset();
        auto package = Package::decode(r.item("package"), limits.package);
        if (!package) throw cbor::DecodeError("package", package.error().message, at);
        return PackageGossip{*std::move(package)};
      }
      case Kind::proposal: return Proposal{read_block(r, "proposal", limits)};
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
    }
    throw cbor::DecodeError("message.kind", "unknown message kind", r.offset());
  });
}

}  // namespace mchain
