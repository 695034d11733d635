// The migration hand-off's messages (agent/handoff.h): what goes over the peer network must
// decode to exactly what was sent, and anything else must be refused with a reason.
#include "agent/handoff.h"

#include <gtest/gtest.h>

#include "chain/crypto/seal.h"

namespace mchain::agent {
namespace {

crypto::PrivateKey key(crypto::SigAlg alg = crypto::SigAlg::ecdsa_p256_sha256) {
  auto k = crypto::PrivateKey::generate(alg);
  EXPECT_TRUE(k);
  return *std::move(k);
}

HandoffMessage grant() {
  HandoffMessage m;
  m.kind = HandoffKind::grant;
  m.vm = Uuid::random();
  m.from = "node-1";
  m.to = "node-3";
  m.nonce.fill(7);
  m.sealed = Bytes(300, 0xab);
  return m;
}

TEST(HandoffMessage, DecodesToWhatWasEncoded) {
  const HandoffMessage m = grant();
  auto back = HandoffMessage::decode(m.encode());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->kind, m.kind);
  EXPECT_EQ(back->vm, m.vm);
  EXPECT_EQ(back->from, m.from);
  EXPECT_EQ(back->to, m.to);
  EXPECT_EQ(back->nonce, m.nonce);
  EXPECT_EQ(back->sealed, m.sealed);
  EXPECT_EQ(back->reason, "");
}

TEST(HandoffMessage, RefusesWhatItDidNotWrite) {
  const Bytes good = grant().encode();
  for (std::size_t n = 0; n < good.size(); n += 7) {
    EXPECT_FALSE(HandoffMessage::decode(ByteView(good).first(n))) << "prefix of " << n;
  }
  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_FALSE(HandoffMessage::decode(trailing));
  for (std::uint8_t kind : {0, 4}) {
    HandoffMessage m = grant();
    m.kind = static_cast<HandoffKind>(kind);
    auto bad = HandoffMessage::decode(m.encode());
    ASSERT_FALSE(bad) << int{kind};
    EXPECT_NE(bad.error().message.find("handoff.kind"), std::string::npos);
  }
  HandoffMessage m = grant();
  m.from = "no spaces allowed";
  auto bad = HandoffMessage::decode(m.encode());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("handoff.from"), std::string::npos) << bad.error().message;
  m = grant();
  m.sealed = Bytes(HandoffMessage::kMaxSealed + 1, 1);
  EXPECT_FALSE(HandoffMessage::decode(m.encode()));
}

TEST(VmSecrets, CarryTheKeysAndTheBaseline) {
  VmSecrets s{"alice", key(), key(crypto::SigAlg::ed25519), {}, Bytes{1, 2, 3}};
  s.data_keys.emplace_back(1, crypto::random_aead_key());
  s.data_keys.emplace_back(2, crypto::random_aead_key());
  auto back = VmSecrets::decode(s.encode());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->owner, "alice");
  EXPECT_EQ(back->vm_key.public_key(), s.vm_key.public_key());
  EXPECT_EQ(back->user_key.public_key(), s.user_key.public_key());
  EXPECT_EQ(back->data_keys, s.data_keys);
  EXPECT_EQ(back->baseline, s.baseline);
  const Bytes encoded = s.encode();
  EXPECT_FALSE(VmSecrets::decode(ByteView(encoded).first(encoded.size() - 1)));
}

TEST(VmSecrets, SealedToOneNodeOpenOnlyThereAndOnlyForThatRequest) {
  const crypto::PrivateKey destination = key();
  const crypto::PrivateKey other = key();
  const VmSecrets s{"alice", key(), key(), {}, {}};
  const ByteView aad = as_bytes("vm|node-1|node-3|nonce");
  auto sealed = crypto::seal(destination.public_key(), s.encode(), aad);
  ASSERT_TRUE(sealed);
  EXPECT_TRUE(crypto::open_sealed(destination, *sealed, aad));
  EXPECT_FALSE(crypto::open_sealed(other, *sealed, aad));
  EXPECT_FALSE(crypto::open_sealed(destination, *sealed, as_bytes("vm|node-1|node-3|other")));
  // An Ed25519 node cannot receive: it is refused up front, not silently mis-sealed.
  auto refused = crypto::seal(key(crypto::SigAlg::ed25519).public_key(), s.encode(), aad);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("P-256"), std::string::npos);
}

}  // namespace
}  // namespace mchain::agent
