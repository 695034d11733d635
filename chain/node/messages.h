// Layer-1 consensus messages (paper Algorithm 2). They travel between nodes through a
// Transport: in-process for one host and tests, TLS gossip between hosts.
//
//   package     a package as produced, flooded so that any leader can propose it
//   proposal    the leader's signed candidate, as a semi-finished block without marks
//   mark        a node's valid mark over the candidate hash
//   accusation  a node's signed claim that a proposal holds an invalid package, with the
//               proposal itself as evidence, so that any node can re-check it
#pragma once

#include <variant>

#include "chain/block/block.h"
#include "chain/package/validate.h"

namespace mchain {

struct PackageGossip {
  Package package;
};

struct Proposal {
  SemiFinishedBlock block;  // no marks yet
};

struct Mark {
  Hash256 candidate{};
  ValidMark mark;
};

struct Accusation {
  std::string accuser;
  SemiFinishedBlock proposal;
  std::uint32_t package_index = 0;
  Verdict verdict = Verdict::malformed;
  crypto::Signature signature;  // by the accuser, over accusation_signing_message()

  Bytes signing_message() const;
  static Result<Accusation> make(std::string accuser, SemiFinishedBlock proposal,
                                 std::uint32_t package_index, Verdict verdict,
                                 const crypto::Signer& signer);
};

using Message = std::variant<PackageGossip, Proposal, Mark, Accusation>;

Bytes encode_message(const Message& message);
Result<Message> decode_message(ByteView encoded, const BlockLimits& limits = {});

}  // namespace mchain
