#include "chain/package/package.h"

#include <gtest/gtest.h>

#include "chain/crypto/hash.h"
#include "chain/encoding/cbor.h"
#include "chain/package/records.h"
#include "golden.h"
#include "test_world.h"

namespace mchain {
namespace {

using testing::ed25519_from_seed;
using testing::must;

// Seeds of RFC 8032 §7.1 tests 1-3, reused as fixed VM, user and node keys.
constexpr std::string_view kSeedVm =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr std::string_view kSeedUser =
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
constexpr std::string_view kSeedNode =
    "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7";

UnsignedPackage fixed_content() {
  UnsignedPackage p;
  p.header.type = PackageType::data;
  p.header.vm = *Uuid::parse("6f1c2e9a-0b7d-4c3e-9f10-2a3b4c5d6e7f");
  p.header.user = "alice";
  p.header.node = "node-1";
  p.header.policy.version = 3;
  p.header.policy.hash = crypto::sha256(as_bytes("policy"));
  p.header.timestamp = 1'700'000'000'123'456;
  p.body = *from_hex("83014c000102030405060708090a0b4400112233");
  return p;
}

class PackageEncoding : public ::testing::Test {
 protected:
  crypto::PrivateKey vm = ed25519_from_seed(kSeedVm);
  crypto::PrivateKey user = ed25519_from_seed(kSeedUser);
  crypto::PrivateKey node = ed25519_from_seed(kSeedNode);

  Package signed_package() { return must(Package::sign(fixed_content(), {&vm, &user, &node})); }
};

TEST_F(PackageEncoding, GoldenVectors) {
  testing::GoldenFile golden("package-v1.txt");
  UnsignedPackage content = fixed_content();
  golden.check("header", content.header.encode());
  golden.check("unsigned", content.encode());
  golden.check("id", content.digest());
  golden.check("signing_message_vm", signing_message(Role::vm, content.digest()));
  Package p = signed_package();
  golden.check("package", p.encode());
  Package vm_and_node_only = must(Package::sign(content, {&vm, nullptr, &node}));
  golden.check("package_without_user_signature", vm_and_node_only.encode());
}

TEST_F(PackageEncoding, GoldenRecords) {
  testing::GoldenFile golden("records-v1.txt");
  const Uuid vm_id = fixed_content().header.vm;
  PolicyRecord policy{
      vm_id, 3, AbeScheme::kp_abe_gpsw, {"tenant:alice", "env:prod"}, "tenant:alice AND env:prod"};
  golden.check("policy", policy.encode());
  golden.check("policy_hash", policy.hash());
  golden.check(
      "binding",
      BindingRecord{vm_id, "alice", "node-1", BindingEvent::migrated, vm.public_key()}.encode());
  golden.check("membership",
               MembershipRecord{MembershipAction::add_node, "node-2", node.public_key()}.encode());
  crypto::AeadKey key{};
  crypto::AeadNonce nonce{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  for (std::size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<std::uint8_t>(0xa0 + i);
  DataRecord data{nonce, crypto::aes256gcm_seal(key, nonce, fixed_content().header.encode(),
                                                as_bytes("changed: /etc/shadow"))};
  golden.check("data", data.encode());
  KeyLinkRecord link{vm_id, 2, 3, nonce, Bytes(48, 0x5a)};
  golden.check("key_link", link.encode());
}

TEST_F(PackageEncoding, DecodeRoundTrip) {
  Package p = signed_package();
  Bytes encoded = p.encode();
  auto decoded = Package::decode(encoded);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->id(), p.id());
  EXPECT_EQ(decoded->encode(), encoded);
  EXPECT_EQ(decoded->header().user, "alice");
  EXPECT_EQ(decoded->header().timestamp, 1'700'000'000'123'456u);
  EXPECT_EQ(*decoded->signature(Role::node), *p.signature(Role::node));
}

TEST_F(PackageEncoding, IdCoversContentButNotSignatures) {
  Package ed = signed_package();
  auto ecdsa_vm = testing::make_key();
  Package other = must(Package::sign(fixed_content(), {&ecdsa_vm, &user, &node}));
  EXPECT_EQ(ed.id(), other.id());
  EXPECT_NE(ed.encode(), other.encode());
  UnsignedPackage later = fixed_content();
  later.header.timestamp += 1;
  EXPECT_NE(later.digest(), ed.id());
}

// Decoding errors name the field.
std::string decode_error(const Bytes& encoded, const PackageLimits& limits = {}) {
  auto result = Package::decode(encoded, limits);
  EXPECT_FALSE(result);
  return result ? std::string() : result.error().message;
}

// Re-encodes the fixed package with one header field replaced by `field_encoding`.
Bytes with_header_field(std::size_t index, ByteView field_encoding, const Bytes& signatures) {
  UnsignedPackage content = fixed_content();
  Bytes header = content.header.encode();
  cbor::Reader r(header);
  r.array_exact("h", 8);
  std::vector<ByteView> fields;
  for (int i = 0; i < 8; ++i) fields.push_back(r.item("f"));
  cbor::Writer w;
  w.array(2).array(2).array(8);
  for (std::size_t i = 0; i < 8; ++i) w.raw(i == index ? field_encoding : fields[i]);
  w.bytes(content.body).raw(signatures);
  return w.take();
}

TEST_F(PackageEncoding, RejectsUnknownVersionTypeAndBadIds) {
  const Bytes no_signatures = *from_hex("83808080");
  EXPECT_TRUE(Package::decode(with_header_field(0, *from_hex("01"), no_signatures)));
  EXPECT_NE(decode_error(with_header_field(0, *from_hex("02"), no_signatures))
                .find("package.header.version: unknown package format version 2"),
            std::string::npos);
  EXPECT_NE(decode_error(with_header_field(1, *from_hex("05"), no_signatures))
                .find("package.header.type"),
            std::string::npos);
  EXPECT_NE(decode_error(with_header_field(4, cbor::Writer().text("node 1").data(), no_signatures))
                .find("package.header.node: must be 1-64 characters"),
            std::string::npos);
  EXPECT_NE(decode_error(with_header_field(4, cbor::Writer().text("").data(), no_signatures))
                .find("package.header.node"),
            std::string::npos);
  EXPECT_NE(decode_error(with_header_field(3, cbor::Writer().text(std::string(65, 'a')).data(),
                                           no_signatures))
                .find("package.header.user: text of 65 bytes exceeds the limit of 64"),
            std::string::npos);
  EXPECT_NE(decode_error(with_header_field(2, *from_hex("4100"), no_signatures))
                .find("package.header.vm: expected exactly 16 bytes"),
            std::string::npos);
  EXPECT_NE(decode_error(with_header_field(7, *from_hex("1800"), no_signatures))
                .find("package.header.timestamp: integer or length not in shortest form"),
            std::string::npos);
}

TEST_F(PackageEncoding, RejectsBadSignatureEncodings) {
  EXPECT_NE(decode_error(with_header_field(0, *from_hex("01"), *from_hex("83818080")))
                .find("package.signatures.vm"),
            std::string::npos);
  EXPECT_NE(decode_error(with_header_field(0, *from_hex("01"),
                                           *from_hex("8380820940"
                                                     "80")))
                .find("package.signatures.user: unknown signature algorithm"),
            std::string::npos);
  Bytes long_signature =
      cbor::Writer().array(3).array(0).array(2).uint(1).bytes(Bytes(65, 1)).array(0).take();
  EXPECT_NE(decode_error(with_header_field(0, *from_hex("01"), long_signature))
                .find("package.signatures.user: byte string of 65 bytes exceeds the limit"),
            std::string::npos);
  EXPECT_NE(decode_error(with_header_field(0, *from_hex("01"), *from_hex("828080")))
                .find("package.signatures: expected an array of 3 items"),
            std::string::npos);
}

TEST_F(PackageEncoding, RejectsTrailingBytesAndOversize) {
  Bytes encoded = signed_package().encode();
  Bytes trailing = encoded;
  trailing.push_back(0);
  EXPECT_NE(decode_error(trailing).find("package: 1 trailing bytes"), std::string::npos);
  PackageLimits small;
  small.max_body_bytes = 8;
  EXPECT_NE(decode_error(encoded, small).find("package.body: byte string of 20 bytes exceeds"),
            std::string::npos);
  small.max_package_bytes = 100;
  EXPECT_NE(decode_error(encoded, small).find("exceed the limit of 100"), std::string::npos);
  for (std::size_t cut = 0; cut < encoded.size(); ++cut) {
    EXPECT_FALSE(Package::decode(ByteView(encoded).first(cut))) << "truncated at " << cut;
  }
}

TEST_F(PackageEncoding, SignRefusesOversizeBodyAndBadIds) {
  UnsignedPackage big = fixed_content();
  big.body.assign((1 << 20) + 1, 0);
  EXPECT_FALSE(Package::sign(big, {&vm, &user, &node}));
  UnsignedPackage bad = fixed_content();
  bad.header.node = "node/1";
  EXPECT_FALSE(Package::sign(bad, {&vm, &user, &node}));
}

TEST(SigningMessage, SeparatesRoles) {
  Hash256 id = crypto::sha256(as_bytes("x"));
  EXPECT_NE(signing_message(Role::vm, id), signing_message(Role::user, id));
  EXPECT_NE(signing_message(Role::user, id), signing_message(Role::node, id));
}

TEST(Ids, Charset) {
  EXPECT_TRUE(valid_id("node-1.example.org"));
  EXPECT_TRUE(valid_id("project:7a9f@region_2"));
  EXPECT_FALSE(valid_id(""));
  EXPECT_FALSE(valid_id("a b"));
  EXPECT_FALSE(valid_id(std::string(65, 'a')));
  EXPECT_TRUE(valid_id(std::string(64, 'a')));
}

}  // namespace
}  // namespace mchain
