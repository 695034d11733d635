#include "chain/package/records.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "chain/encoding/cbor.h"
#include "test_world.h"

namespace mchain {
namespace {

using testing::kT0;
using testing::must;

TEST(Records, PolicyRoundTripAndHash) {
  PolicyRecord p{Uuid::random(), 7, AbeScheme::cp_abe_versioned, {"a", "b"}, "a AND NOT b",
                 Bytes{1, 2, 3}};
  auto back = PolicyRecord::decode(p.encode());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->encode(), p.encode());
  EXPECT_EQ(back->scheme, AbeScheme::cp_abe_versioned);
  EXPECT_EQ(back->attributes, p.attributes);
  EXPECT_EQ(back->sealed_key, p.sealed_key);
  PolicyRecord next = p;
  next.version = 8;  // identical text, new version: a different hash, so a different key
  EXPECT_NE(next.hash(), p.hash());
}

TEST(Records, PolicyLimits) {
  PolicyRecord p{Uuid::random(), 1, AbeScheme::kp_abe_gpsw, {}, ""};
  p.attributes.assign(PolicyRecord::kMaxAttributes + 1, "x");
  auto r = PolicyRecord::decode(p.encode());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("policy.attributes"), std::string::npos);
  p.attributes = {std::string(PolicyRecord::kMaxAttributeLength + 1, 'x')};
  EXPECT_FALSE(PolicyRecord::decode(p.encode()));
  p.attributes = {};
  p.expression.assign(PolicyRecord::kMaxExpressionLength + 1, 'x');
  EXPECT_FALSE(PolicyRecord::decode(p.encode()));
  p.expression = {};
  p.sealed_key.assign(PolicyRecord::kMaxSealedKeyLength + 1, 0);
  r = PolicyRecord::decode(p.encode());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("policy.sealed_key"), std::string::npos);
}

TEST(Records, UnknownVersionsAndEnumsAreRefused) {
  auto key = testing::make_key();
  Bytes binding =
      BindingRecord{Uuid::random(), "u", "n", BindingEvent::stopped, key.public_key()}.encode();
  binding[1] = 0x02;  // record version 2
  auto r = BindingRecord::decode(binding);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("binding.version: unknown record version 2"), std::string::npos);
  Bytes membership =
      MembershipRecord{MembershipAction::register_user, "u", key.public_key()}.encode();
  membership[2] = 0x05;  // action beyond register_user
  auto m = MembershipRecord::decode(membership);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("membership.action"), std::string::npos);
}

TEST(Records, KeysMustBeValidPoints) {
  auto key = testing::make_key();
  Bytes encoded = MembershipRecord{MembershipAction::add_node, "n", key.public_key()}.encode();
  encoded[encoded.size() - 33] = 0x05;  // compressed point prefix must be 02 or 03
  auto r = MembershipRecord::decode(encoded);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("membership.key"), std::string::npos);
}

TEST(Records, DataPackageAuthenticatesItsHeader) {
  testing::World w;
  Package p = w.data(kT0 + 100);
  ASSERT_TRUE(open_data_package(p, w.data_key));
  EXPECT_FALSE(open_data_package(p, crypto::random_aead_key()));
  // The same ciphertext under another header (here: a later timestamp) does not open.
  UnsignedPackage moved = p.content();
  moved.header.timestamp += 1;
  Package replayed = must(Package::sign(moved, w.signers("node-1")));
  auto opened = open_data_package(replayed, w.data_key);
  EXPECT_FALSE(opened);
  Package policy =
      must(make_policy_package({w.vm, "alice", "node-1", kT0}, w.policy1, w.signers("node-1")));
  EXPECT_FALSE(open_data_package(policy, w.data_key));
}

TEST(Records, DataBodyNeedsAtLeastATag) {
  DataRecord d{{}, Bytes(15, 0)};
  auto r = DataRecord::decode(d.encode(), 1 << 20);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("data.ciphertext: shorter than the GCM tag"), std::string::npos);
}

// parse() is decode() without the copy: the same record, the ciphertext left in the input,
// and the same refusals.
TEST(Records, DataParseSeesWhatDecodeSees) {
  crypto::AeadNonce nonce{};
  nonce[0] = 7;
  const Bytes encoded = DataRecord{nonce, Bytes(40, 0x5a)}.encode();
  auto parsed = DataRecord::parse(encoded, 1 << 20);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->nonce, nonce);
  EXPECT_TRUE(std::ranges::equal(parsed->ciphertext, Bytes(40, 0x5a)));
  EXPECT_GE(parsed->ciphertext.data(), encoded.data());
  EXPECT_LE(parsed->ciphertext.data() + parsed->ciphertext.size(), encoded.data() + encoded.size());
  const Bytes short_tag = DataRecord{{}, Bytes(15, 0)}.encode();
  Bytes trailing = encoded;
  trailing.push_back(0);
  for (const Bytes& bad : {short_tag, trailing, Bytes(encoded.begin(), encoded.end() - 1)}) {
    auto p = DataRecord::parse(bad, 1 << 20);
    auto d = DataRecord::decode(bad, 1 << 20);
    ASSERT_FALSE(p);
    ASSERT_FALSE(d);
    EXPECT_EQ(p.error().message, d.error().message);
  }
  EXPECT_FALSE(DataRecord::parse(encoded, 39));  // over the size cap
}

TEST(Records, KeyLinkMustPointForward) {
  testing::World w;
  EXPECT_FALSE(make_key_link_package({w.vm, "alice", "node-1", kT0}, w.policy1.ref(), 1, w.data_key,
                                     w.data_key, w.signers("node-1")));
}

TEST(Records, PolicyPackageMustNameItsVm) {
  testing::World w;
  EXPECT_FALSE(make_policy_package({Uuid::random(), "alice", "node-1", kT0}, w.policy1,
                                   w.signers("node-1")));
}

}  // namespace
}  // namespace mchain
