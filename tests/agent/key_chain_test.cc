// The key chain across policy versions (agent/key_chain.h) with real KP-ABE and the chain's own
// records: five revisions of one VM's policy, each sealing a fresh K(N) to its attribute set and
// linking K(N-1) under K(N); reports encrypted under each version's key.
#include "agent/key_chain.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chain/test_util.h"

namespace mchain::agent {
namespace {

using testing::make_key;
using testing::must;

constexpr std::uint64_t kVersions = 5;
constexpr TimeUs kT0 = 1'700'000'000'000'000;

class KeyChainTest : public ::testing::Test {
 protected:
  KeyChainTest() {
    // Bob may read versions 1 and 2; the owner removes him at revision 3.
    for (std::uint64_t v = 1; v <= kVersions; ++v) {
      std::vector<std::string> attributes = {"owner:alice", "vm:" + vm_.to_string()};
      if (v < 3) attributes.push_back("reader:bob");
      PolicyRecord record{vm_, v, AbeScheme::kp_abe_gpsw, attributes, "owner:alice"};
      keys_.push_back(crypto::random_aead_key());
      record.sealed_key = must(seal_data_key(authority_.public_key, record, keys_.back()));
      policies_.push_back(record);
      if (v > 1) {
        const Package link = must(make_key_link_package(origin(v), record.ref(), v - 1,
                                                        keys_[v - 2], keys_[v - 1], signers()));
        links_.push_back(must(KeyLinkRecord::decode(link.body())));
      }
      reports_.push_back(
          must(make_data_package(origin(v), record.ref(), keys_.back(),
                                 as_bytes("report under v" + std::to_string(v)), signers())));
    }
  }

  PackageOrigin origin(std::uint64_t v) const { return {vm_, "alice", "node-1", kT0 + v}; }
  PackageSigners signers() const { return {&vm_key_, &alice_, &node_}; }

  abe::kp::UserKey verifier(std::string_view policy) const {
    return must(abe::kp::keygen(authority_.public_key, authority_.secret_key,
                                must(abe::parse_policy(policy))));
  }

  // The reports the verifier can decrypt, by version.
  std::vector<std::uint64_t> readable(const VerifierKeys& got) const {
    std::vector<std::uint64_t> out;
    for (std::uint64_t v = 1; v <= kVersions; ++v) {
      const auto key = got.keys.find(v);
      if (key == got.keys.end()) continue;
      Result<Bytes> report = open_data_package(reports_[v - 1], key->second);
      EXPECT_TRUE(report) << "v" << v;
      if (report) {
        EXPECT_EQ(as_chars(*report), "report under v" + std::to_string(v));
        out.push_back(v);
      }
    }
    return out;
  }

  abe::kp::Authority authority_ = abe::kp::setup();
  Uuid vm_ = Uuid::random();
  crypto::PrivateKey vm_key_ = make_key();
  crypto::PrivateKey alice_ = make_key();
  crypto::PrivateKey node_ = make_key();
  std::vector<crypto::AeadKey> keys_;
  std::vector<PolicyRecord> policies_;
  std::vector<KeyLinkRecord> links_;
  std::vector<Package> reports_;
};

TEST_F(KeyChainTest, AVerifierOfTheNewestPolicyReadsTheWholeHistory) {
  const VerifierKeys got =
      verifier_keys(policies_, links_, verifier("owner:alice and vm:" + vm_.to_string()));
  EXPECT_EQ(readable(got), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(got.denied.empty());
  for (std::uint64_t v = 1; v <= kVersions; ++v) EXPECT_EQ(got.keys.at(v), keys_[v - 1]);
}

TEST_F(KeyChainTest, AVerifierRemovedAtRevision3ReadsNothingWrittenAfter) {
  const VerifierKeys got = verifier_keys(policies_, links_, verifier("reader:bob"));
  EXPECT_EQ(readable(got), (std::vector<std::uint64_t>{1, 2}));
  ASSERT_EQ(got.denied.size(), 3u);
  for (std::uint64_t v = 3; v <= kVersions; ++v) {
    ASSERT_TRUE(got.denied.contains(v));
    EXPECT_NE(got.denied.at(v).find("reader:bob"), std::string::npos) << got.denied.at(v);
  }
}

TEST_F(KeyChainTest, OutsidersAndOtherAuthoritiesReadNothing) {
  EXPECT_TRUE(verifier_keys(policies_, links_, verifier("owner:carol")).keys.empty());
  const abe::kp::Authority other = abe::kp::setup();
  const abe::kp::UserKey foreign = must(
      abe::kp::keygen(other.public_key, other.secret_key, must(abe::parse_policy("owner:alice"))));
  const VerifierKeys got = verifier_keys(policies_, links_, foreign);
  EXPECT_TRUE(got.keys.empty());
  EXPECT_EQ(got.denied.size(), kVersions);
}

TEST_F(KeyChainTest, ASealedKeyOnlyOpensInItsOwnRecord) {
  const abe::kp::UserKey alice = verifier("owner:alice");
  PolicyRecord moved = policies_[4];
  moved.sealed_key = policies_[3].sealed_key;  // v4's sealed key in the v5 record
  EXPECT_FALSE(open_data_key(alice, moved));
  PolicyRecord other_vm = policies_[4];
  other_vm.vm = Uuid::random();
  EXPECT_FALSE(open_data_key(alice, other_vm));
  EXPECT_EQ(open_data_key(alice, policies_[4]), keys_[4]);

  PolicyRecord unsealed = policies_[4];
  unsealed.sealed_key.clear();
  Result<crypto::AeadKey> none = open_data_key(alice, unsealed);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no sealed data key"), std::string::npos);
}

TEST_F(KeyChainTest, InvalidAttributesAndUnsupportedSchemesAreRefused) {
  PolicyRecord bad{vm_, 9, AbeScheme::kp_abe_gpsw, {"owner alice"}, ""};
  EXPECT_FALSE(seal_data_key(authority_.public_key, bad, keys_[0]));
  PolicyRecord cp{vm_, 9, AbeScheme::cp_abe_versioned, {"owner:alice"}, ""};
  EXPECT_FALSE(seal_data_key(authority_.public_key, cp, keys_[0]));
}

}  // namespace
}  // namespace mchain::agent
