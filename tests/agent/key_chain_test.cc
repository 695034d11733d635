// The key chain across policy versions (agent/key_chain.h) with real ABE and the chain's own
// records: five revisions of one VM's policy, each sealing a fresh K(N) (KP-ABE: to its attribute
// set; CP-ABE: under its expression) and linking K(N-1) under K(N); reports encrypted under each
// version's key.
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
    EXPECT_NE(got.denied.at(v).find("policy v" + std::to_string(v) +
                                    "'s attributes do not satisfy the key's policy: requires "
                                    "reader:bob"),
              std::string::npos)
        << got.denied.at(v);
  }
}

TEST_F(KeyChainTest, ABrokenLinkCostsOnlyWhatCannotBeOpenedOtherwise) {
  // The link v3 -> v4 is damaged: K(3) cannot come from K(4). The owner opens v3's sealed key
  // directly and still reads everything; the auditor removed at v3 is unaffected.
  std::vector<KeyLinkRecord> broken = links_;
  for (KeyLinkRecord& link : broken) {
    if (link.to_version == 4) link.wrapped_key[0] ^= 1;
  }
  const VerifierKeys owner =
      verifier_keys(policies_, broken, verifier("owner:alice and vm:" + vm_.to_string()));
  EXPECT_EQ(readable(owner), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(owner.denied.empty());

  // A verifier who can open only v5 loses v1..v4 behind the broken link, and is told why.
  std::vector<PolicyRecord> last_only = policies_;
  last_only[4].attributes.push_back("reader:late");
  last_only[4].sealed_key = must(seal_data_key(authority_.public_key, last_only[4], keys_[4]));
  const VerifierKeys late = verifier_keys(last_only, broken, verifier("reader:late"));
  EXPECT_EQ(readable(late), (std::vector<std::uint64_t>{4, 5}));
  ASSERT_TRUE(late.denied.contains(3));
  EXPECT_NE(late.denied.at(3).find("key link 3 -> 4"), std::string::npos) << late.denied.at(3);
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

// The same chain under the versioned CP-ABE: every version is sealed under "member"; bob is
// revoked at revision 3 by a re-key of his attributes, alice's key is updated, and v3..v5 are
// sealed under the new system version.
class CpKeyChainTest : public ::testing::Test {
 protected:
  CpKeyChainTest() {
    // w = 8 signature bits keeps the test fast; the scheme's own tests run w = 128.
    system_ = must_cp(abe::cpabe::setup({"member", "rank_le_1", "rank_le_2"}, 8));
    alice_ = must_cp(abe::cpabe::keygen(system_.mk, {true, true, true}));
    bob_ = must_cp(abe::cpabe::keygen(system_.mk, {true, false, true}));
    abe::cpabe::PublicKey pk = system_.pk;
    for (std::uint64_t v = 1; v <= kVersions; ++v) {
      if (v == 3) {
        const auto rekeyed =
            must_cp(abe::cpabe::rekey(pk, system_.mk, abe::cpabe::revocation_set(bob_.s)));
        pk = rekeyed.pk;
        system_.mk = rekeyed.mk;
        alice_ = must_cp(abe::cpabe::update_key(alice_, rekeyed.rk));
      }
      PolicyRecord record{vm_, v, AbeScheme::cp_abe_versioned, {"member"}, "member"};
      keys_.push_back(crypto::random_aead_key());
      record.sealed_key = must(seal_data_key(pk, record, keys_.back()));
      policies_.push_back(record);
      if (v > 1) {
        const Package link =
            must(make_key_link_package({vm_, "alice", "node-1", kT0 + v}, record.ref(), v - 1,
                                       keys_[v - 2], keys_[v - 1], {&vm_key_, &owner_, &node_}));
        links_.push_back(must(KeyLinkRecord::decode(link.body())));
      }
    }
  }

  template <class T>
  static T must_cp(std::expected<T, abe::cpabe::CpAbeError> r) {
    EXPECT_TRUE(r) << (r ? "" : abe::cpabe::describe(r.error()));
    return *std::move(r);
  }

  abe::cpabe::SystemKeys system_;
  abe::cpabe::UserKey alice_, bob_;
  Uuid vm_ = Uuid::random();
  crypto::PrivateKey vm_key_ = make_key();
  crypto::PrivateKey owner_ = make_key();
  crypto::PrivateKey node_ = make_key();
  std::vector<crypto::AeadKey> keys_;
  std::vector<PolicyRecord> policies_;
  std::vector<KeyLinkRecord> links_;
};

TEST_F(CpKeyChainTest, AnUpdatedKeyReadsEverythingAndTheRevokedOneOnlyWhatCameBefore) {
  const VerifierKeys alice = verifier_keys(policies_, links_, alice_);
  EXPECT_TRUE(alice.denied.empty());
  ASSERT_EQ(alice.keys.size(), kVersions);
  for (std::uint64_t v = 1; v <= kVersions; ++v) EXPECT_EQ(alice.keys.at(v), keys_[v - 1]);

  const VerifierKeys bob = verifier_keys(policies_, links_, bob_);
  EXPECT_EQ(bob.keys.size(), 2u);
  EXPECT_EQ(bob.keys.at(1), keys_[0]);
  EXPECT_EQ(bob.keys.at(2), keys_[1]);
  ASSERT_EQ(bob.denied.size(), 3u);
  EXPECT_NE(bob.denied.at(3).find("system version 2, this key is at version 1"), std::string::npos)
      << bob.denied.at(3);
}

TEST_F(CpKeyChainTest, SchemesAndRecordsDoNotMix) {
  // A KP key on CP records, a CP key whose attributes miss the expression, a sealed key moved.
  const abe::kp::Authority kp = abe::kp::setup();
  const abe::kp::UserKey kp_key =
      must(abe::kp::keygen(kp.public_key, kp.secret_key, must(abe::parse_policy("member"))));
  Result<crypto::AeadKey> other_scheme = open_data_key(kp_key, policies_[0]);
  ASSERT_FALSE(other_scheme);
  EXPECT_NE(other_scheme.error().message.find("not with KP-ABE"), std::string::npos);

  const abe::cpabe::UserKey outsider = must_cp(abe::cpabe::keygen(system_.mk, {false, true, true}));
  const VerifierKeys none = verifier_keys(policies_, links_, outsider);
  EXPECT_TRUE(none.keys.empty());
  EXPECT_NE(none.denied.at(5).find("policy v5 requires member"), std::string::npos)
      << none.denied.at(5);

  PolicyRecord moved = policies_[4];
  moved.sealed_key = policies_[3].sealed_key;
  EXPECT_FALSE(open_data_key(alice_, moved));
  EXPECT_EQ(open_data_key(alice_, policies_[4]), keys_[4]);

  PolicyRecord not_cp = policies_[0];
  not_cp.scheme = AbeScheme::kp_abe_gpsw;
  EXPECT_FALSE(seal_data_key(system_.pk, not_cp, keys_[0]));
  PolicyRecord unknown = policies_[0];
  unknown.expression = "member and auditor";
  Result<Bytes> refused = seal_data_key(system_.pk, unknown, keys_[0]);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("auditor"), std::string::npos) << refused.error().message;
}

}  // namespace
}  // namespace mchain::agent
