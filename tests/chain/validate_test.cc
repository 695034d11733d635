#include "chain/package/validate.h"

#include <gtest/gtest.h>

#include "chain/crypto/hash.h"
#include "test_world.h"

namespace mchain {
namespace {

using testing::kT0;
using testing::must;
using testing::World;

#define EXPECT_VERDICT(result, expected)                                              \
  do {                                                                                \
    ValidationResult r_ = (result);                                                   \
    EXPECT_EQ(to_string(r_.verdict), to_string(expected)) << "detail: " << r_.detail; \
    if (expected != Verdict::ok) {                                                    \
      EXPECT_FALSE(r_.detail.empty());                                                \
    }                                                                                 \
  } while (0)

class Validate : public ::testing::Test {
 protected:
  World w;
};

TEST_F(Validate, Ok) { EXPECT_VERDICT(w.check(w.data(kT0 + 100)), Verdict::ok); }

TEST_F(Validate, OkDecryptsToTheReport) {
  Package p = w.data(kT0 + 100);
  auto report = open_data_package(p, w.data_key);
  ASSERT_TRUE(report);
  EXPECT_EQ(std::string(report->begin(), report->end()), "added: /etc/passwd");
}

TEST_F(Validate, MalformedMissingSignature) {
  Package p = must(make_data_package({w.vm, "alice", "node-1", kT0 + 100}, w.policy1.ref(),
                                     w.data_key, as_bytes("x"), {nullptr, &w.alice, &w.node1}));
  ValidationResult r = w.check(p);
  EXPECT_VERDICT(r, Verdict::malformed);
  EXPECT_NE(r.detail.find("missing vm signature"), std::string::npos) << r.detail;
}

TEST_F(Validate, MalformedUndecodableBytes) {
  Bytes garbage{0x82, 0x01};
  ValidationResult r = validate_encoded(garbage, w.view, w.at(kT0));
  EXPECT_VERDICT(r, Verdict::malformed);
}

TEST_F(Validate, MalformedBodyOfWrongType) {
  UnsignedPackage content{{PackageType::data, w.vm, "alice", "node-1", w.policy1.ref(), kT0 + 100},
                          w.policy1.encode()};
  EXPECT_VERDICT(w.check(must(Package::sign(content, w.signers("node-1")))), Verdict::malformed);
}

TEST_F(Validate, UnknownVm) {
  Package p =
      must(make_data_package({Uuid::random(), "alice", "node-1", kT0 + 100}, w.policy1.ref(),
                             w.data_key, as_bytes("x"), w.signers("node-1")));
  EXPECT_VERDICT(w.check(p), Verdict::unknown_vm);
}

TEST_F(Validate, UnknownUser) {
  Package p = must(make_data_package({w.vm, "mallory", "node-1", kT0 + 100}, w.policy1.ref(),
                                     w.data_key, as_bytes("x"), w.signers("node-1")));
  EXPECT_VERDICT(w.check(p), Verdict::unknown_user);
}

TEST_F(Validate, UnknownNode) {
  auto rogue = testing::make_key();
  Package p = must(make_data_package({w.vm, "alice", "node-9", kT0 + 100}, w.policy1.ref(),
                                     w.data_key, as_bytes("x"), {&w.vm_key, &w.alice, &rogue}));
  EXPECT_VERDICT(w.check(p), Verdict::unknown_node);
}

TEST_F(Validate, UnknownNodeBeforeItJoined) {
  // node-1 became a member at kT0: a package dated before that has no node key to check.
  Package p = w.data(kT0 - 1);
  EXPECT_VERDICT(w.check(p), Verdict::unknown_node);
}

TEST_F(Validate, PolicyHashMismatch) {
  PolicyRef forged = w.policy1.ref();
  forged.hash[0] ^= 1;
  EXPECT_VERDICT(w.check(w.data(kT0 + 100, "node-1", forged)), Verdict::policy_hash_mismatch);
}

TEST_F(Validate, PolicyHashMismatchWithoutPolicyInForce) {
  // Before policy v1 (kT0 + 20) the VM had no policy: naming v1 at kT0 + 15 is a mismatch.
  EXPECT_VERDICT(w.check(w.data(kT0 + 15)), Verdict::policy_hash_mismatch);
}

TEST_F(Validate, StalePolicy) {
  PolicyRecord v2 = w.policy1;
  v2.version = 2;
  v2.attributes.push_back("audit:2026");
  w.accept(
      must(make_policy_package({w.vm, "alice", "node-1", kT0 + 200}, v2, w.signers("node-1"))));
  EXPECT_VERDICT(w.check(w.data(kT0 + 150)), Verdict::ok);  // v1 was in force then
  EXPECT_VERDICT(w.check(w.data(kT0 + 300)), Verdict::stale_policy);
  EXPECT_VERDICT(w.check(w.data(kT0 + 300, "node-1", v2.ref())), Verdict::ok);
}

TEST_F(Validate, StalePolicyPackage) {
  // A "new" policy that is not newer than the one in force.
  PolicyRecord again = w.policy1;
  again.attributes = {"tenant:alice"};
  Package p =
      must(make_policy_package({w.vm, "alice", "node-1", kT0 + 100}, again, w.signers("node-1")));
  EXPECT_VERDICT(w.check(p), Verdict::stale_policy);
}

TEST_F(Validate, PolicyPackageHashMismatch) {
  PolicyRecord v2 = w.policy1;
  v2.version = 2;
  PolicyRef wrong = v2.ref();
  wrong.hash = crypto::sha256(as_bytes("another policy"));
  UnsignedPackage content{{PackageType::policy, w.vm, "alice", "node-1", wrong, kT0 + 100},
                          v2.encode()};
  EXPECT_VERDICT(w.check(must(Package::sign(content, w.signers("node-1")))),
                 Verdict::policy_hash_mismatch);
}

TEST_F(Validate, BadVmSignature) {
  auto other_vm = testing::make_key();
  Package p = must(make_data_package({w.vm, "alice", "node-1", kT0 + 100}, w.policy1.ref(),
                                     w.data_key, as_bytes("x"), {&other_vm, &w.alice, &w.node1}));
  EXPECT_VERDICT(w.check(p), Verdict::bad_vm_signature);
}

TEST_F(Validate, BadUserSignature) {
  Package p = must(make_data_package({w.vm, "alice", "node-1", kT0 + 100}, w.policy1.ref(),
                                     w.data_key, as_bytes("x"), {&w.vm_key, &w.bob, &w.node1}));
  EXPECT_VERDICT(w.check(p), Verdict::bad_user_signature);
}

TEST_F(Validate, BadNodeSignature) {
  Package p = must(make_data_package({w.vm, "alice", "node-1", kT0 + 100}, w.policy1.ref(),
                                     w.data_key, as_bytes("x"), {&w.vm_key, &w.alice, &w.node2}));
  EXPECT_VERDICT(w.check(p), Verdict::bad_node_signature);
}

TEST_F(Validate, SignatureOfOneRoleDoesNotPassForAnother) {
  // Same key as VM and node: the per-role domain keeps S_v from standing in for S_n.
  Package honest = w.data(kT0 + 100);
  UnsignedPackage content = honest.content();
  Package p = must(Package::sign(content, {&w.vm_key, &w.alice, &w.vm_key}));
  EXPECT_VERDICT(w.check(p), Verdict::bad_node_signature);
}

TEST_F(Validate, NodeNotHostingVmAtT) {
  EXPECT_VERDICT(w.check(w.data(kT0 + 100, "node-2")), Verdict::node_not_hosting_vm_at_t);
}

TEST_F(Validate, MigrationMovesTheRightToSignAtItsTime) {
  w.accept(must(make_binding_package({w.vm, "alice", "node-2", kT0 + 500}, w.policy1.ref(),
                                     BindingEvent::migrated, w.vm_key.public_key(),
                                     w.signers("node-2"))));
  EXPECT_VERDICT(w.check(w.data(kT0 + 400, "node-1")), Verdict::ok);
  EXPECT_VERDICT(w.check(w.data(kT0 + 400, "node-2")), Verdict::node_not_hosting_vm_at_t);
  EXPECT_VERDICT(w.check(w.data(kT0 + 600, "node-2")), Verdict::ok);
  EXPECT_VERDICT(w.check(w.data(kT0 + 600, "node-1")), Verdict::node_not_hosting_vm_at_t);
}

TEST_F(Validate, ATransferHandsTheVmToItsNewOwnerAtItsTime) {
  // bob signs for himself, with the VM key and the host: alice's consent is not asked (the
  // cloud changed the owner; the host saw it in the domain's metadata).
  const PackageSigners bob_signs{&w.vm_key, &w.bob, &w.node1};
  Package transfer =
      must(make_binding_package({w.vm, "bob", "node-1", kT0 + 500}, w.policy1.ref(),
                                BindingEvent::transferred, w.vm_key.public_key(), bob_signs));
  // Only the host may sign it while the VM runs.
  Package elsewhere = must(make_binding_package({w.vm, "bob", "node-2", kT0 + 500}, w.policy1.ref(),
                                                BindingEvent::transferred, w.vm_key.public_key(),
                                                {&w.vm_key, &w.bob, &w.node2}));
  EXPECT_VERDICT(w.check(elsewhere), Verdict::node_not_hosting_vm_at_t);
  // The new owner's own key, not the old owner's.
  Package forged = must(make_binding_package({w.vm, "bob", "node-1", kT0 + 500}, w.policy1.ref(),
                                             BindingEvent::transferred, w.vm_key.public_key(),
                                             w.signers("node-1")));
  EXPECT_VERDICT(w.check(forged), Verdict::bad_user_signature);
  // To the owner it already has: refused.
  Package to_alice = must(make_binding_package({w.vm, "alice", "node-1", kT0 + 500},
                                               w.policy1.ref(), BindingEvent::transferred,
                                               w.vm_key.public_key(), w.signers("node-1")));
  EXPECT_VERDICT(w.check(to_alice), Verdict::malformed);
  w.accept(transfer);
  EXPECT_EQ(w.view.vm_at(w.vm, kT0 + 600)->owner, "bob");
  EXPECT_EQ(w.view.vm_at(w.vm, kT0 + 600)->host, "node-1");  // it runs on where it ran
  // Before the transfer alice's reports stand; after it only bob's do.
  EXPECT_VERDICT(w.check(w.data(kT0 + 400)), Verdict::ok);
  EXPECT_VERDICT(w.check(w.data(kT0 + 600)), Verdict::user_not_owner_at_t);
  Package bobs = must(make_data_package({w.vm, "bob", "node-1", kT0 + 600}, w.policy1.ref(),
                                        w.data_key, as_bytes("x"), bob_signs));
  EXPECT_VERDICT(w.check(bobs), Verdict::ok);
  // A transfer of a VM nobody defined names an unknown VM.
  Package unknown =
      must(make_binding_package({Uuid::random(), "bob", "node-1", kT0 + 500}, PolicyRef{},
                                BindingEvent::transferred, w.vm_key.public_key(), bob_signs));
  EXPECT_VERDICT(w.check(unknown), Verdict::unknown_vm);
}

TEST_F(Validate, StoppedVmIsHostedNowhere) {
  w.accept(must(make_binding_package({w.vm, "alice", "node-1", kT0 + 500}, w.policy1.ref(),
                                     BindingEvent::stopped, w.vm_key.public_key(),
                                     w.signers("node-1"))));
  EXPECT_VERDICT(w.check(w.data(kT0 + 600, "node-1")), Verdict::node_not_hosting_vm_at_t);
  // Only the host may report the stop.
  Package stop =
      must(make_binding_package({w.vm, "alice", "node-2", kT0 + 450}, w.policy1.ref(),
                                BindingEvent::stopped, w.vm_key.public_key(), w.signers("node-2")));
  EXPECT_VERDICT(w.check(stop), Verdict::node_not_hosting_vm_at_t);
}

TEST_F(Validate, UndefinedVmIsUnknownAfterwards) {
  w.accept(must(make_binding_package({w.vm, "alice", "node-1", kT0 + 500}, w.policy1.ref(),
                                     BindingEvent::undefined, w.vm_key.public_key(),
                                     w.signers("node-1"))));
  EXPECT_VERDICT(w.check(w.data(kT0 + 400)), Verdict::ok);
  EXPECT_VERDICT(w.check(w.data(kT0 + 600)), Verdict::unknown_vm);
}

TEST_F(Validate, UserNotOwnerAtT) {
  Package p = must(make_data_package({w.vm, "bob", "node-1", kT0 + 100}, w.policy1.ref(),
                                     w.data_key, as_bytes("x"), {&w.vm_key, &w.bob, &w.node1}));
  EXPECT_VERDICT(w.check(p), Verdict::user_not_owner_at_t);
}

TEST_F(Validate, Duplicate) {
  Package p = w.data(kT0 + 100);
  w.accept(p);
  EXPECT_VERDICT(w.check(p), Verdict::duplicate);
}

TEST_F(Validate, TimestampSkew) {
  Package p = w.data(kT0 + 100);
  EXPECT_VERDICT(validate(p, w.view, w.at(kT0 + 100 + 121'000'000)), Verdict::timestamp_skew);
  EXPECT_VERDICT(validate(p, w.view, w.at(kT0 + 100 - 121'000'000)), Verdict::timestamp_skew);
  EXPECT_VERDICT(validate(p, w.view, w.at(kT0 + 100 + 119'000'000)), Verdict::ok);
  ValidationOptions history{false, kT0 + 10'000'000'000, 120'000'000};
  EXPECT_VERDICT(validate(p, w.view, history), Verdict::ok);
}

TEST_F(Validate, NewVmIsDefinedByItsBinding) {
  auto key = testing::make_key(crypto::SigAlg::ed25519);
  Uuid vm = Uuid::random();
  Package defined =
      must(make_binding_package({vm, "bob", "node-2", kT0 + 100}, PolicyRef{},
                                BindingEvent::defined, key.public_key(), {&key, &w.bob, &w.node2}));
  w.accept(defined);
  auto at = w.view.vm_at(vm, kT0 + 101);
  ASSERT_TRUE(at);
  EXPECT_EQ(at->owner, "bob");
  EXPECT_FALSE(at->host);
  // A binding for an unknown VM must prove possession of the key it registers.
  auto impostor = testing::make_key();
  Package forged = must(make_binding_package({Uuid::random(), "bob", "node-2", kT0 + 100},
                                             PolicyRef{}, BindingEvent::defined, key.public_key(),
                                             {&impostor, &w.bob, &w.node2}));
  EXPECT_VERDICT(w.check(forged), Verdict::bad_vm_signature);
  // A stop for a VM nobody defined names an unknown VM.
  Package stop =
      must(make_binding_package({Uuid::random(), "bob", "node-2", kT0 + 100}, PolicyRef{},
                                BindingEvent::stopped, key.public_key(), {&key, &w.bob, &w.node2}));
  EXPECT_VERDICT(w.check(stop), Verdict::unknown_vm);
}

TEST_F(Validate, BindingCannotSwapAKnownVmsKey) {
  auto other = testing::make_key();
  Package swap =
      must(make_binding_package({w.vm, "alice", "node-1", kT0 + 100}, w.policy1.ref(),
                                BindingEvent::migrated, other.public_key(), w.signers("node-1")));
  ValidationResult r = w.check(swap);
  EXPECT_VERDICT(r, Verdict::malformed);
  EXPECT_NE(r.detail.find("binding.vm_key differs"), std::string::npos) << r.detail;
}

TEST_F(Validate, KeyLinkWalksBackToTheOlderKey) {
  PolicyRecord v2 = w.policy1;
  v2.version = 2;
  w.accept(
      must(make_policy_package({w.vm, "alice", "node-1", kT0 + 200}, v2, w.signers("node-1"))));
  crypto::AeadKey k2 = crypto::random_aead_key();
  Package link = must(make_key_link_package({w.vm, "alice", "node-1", kT0 + 201}, v2.ref(), 1,
                                            w.data_key, k2, w.signers("node-1")));
  EXPECT_VERDICT(w.check(link), Verdict::ok);
  auto record = KeyLinkRecord::decode(link.body());
  ASSERT_TRUE(record);
  auto old_key = unwrap_key_link(*record, k2);
  ASSERT_TRUE(old_key);
  EXPECT_EQ(*old_key, w.data_key);
  EXPECT_FALSE(unwrap_key_link(*record, w.data_key));
  // A link from a version the VM never had.
  Package bogus = must(make_key_link_package({w.vm, "alice", "node-1", kT0 + 202}, v2.ref(), 0,
                                             w.data_key, k2, w.signers("node-1")));
  EXPECT_VERDICT(w.check(bogus), Verdict::policy_hash_mismatch);
}

TEST_F(Validate, MembershipNeedsAMemberIssuer) {
  auto newcomer = testing::make_key();
  auto rogue = testing::make_key();
  MembershipRecord add{MembershipAction::add_node, "node-3", newcomer.public_key()};
  EXPECT_VERDICT(w.check(must(make_membership_package({Uuid{}, "", "node-1", kT0 + 100}, add,
                                                      {nullptr, nullptr, &w.node1}))),
                 Verdict::ok);
  EXPECT_VERDICT(w.check(must(make_membership_package({Uuid{}, "", "node-3", kT0 + 100}, add,
                                                      {nullptr, nullptr, &newcomer}))),
                 Verdict::unknown_node);
  EXPECT_VERDICT(w.check(must(make_membership_package({Uuid{}, "", "node-1", kT0 + 100}, add,
                                                      {nullptr, nullptr, &rogue}))),
                 Verdict::bad_node_signature);
  // A node membership package carries no user signature.
  EXPECT_VERDICT(w.check(must(make_membership_package({Uuid{}, "", "node-1", kT0 + 100}, add,
                                                      {nullptr, &w.alice, &w.node1}))),
                 Verdict::malformed);
}

TEST_F(Validate, RegistrationNeverReplacesAKey) {
  auto mallory = testing::make_key();
  // A member node re-registering alice under a key of its choosing.
  Package takeover = must(make_membership_package(
      {Uuid{}, "alice", "node-2", kT0 + 100},
      MembershipRecord{MembershipAction::register_user, "alice", mallory.public_key()},
      {nullptr, &mallory, &w.node2}));
  EXPECT_VERDICT(w.check(takeover), Verdict::duplicate);
  Package readd = must(make_membership_package(
      {Uuid{}, "", "node-2", kT0 + 100},
      MembershipRecord{MembershipAction::add_node, "node-1", mallory.public_key()},
      {nullptr, nullptr, &w.node2}));
  EXPECT_VERDICT(w.check(readd), Verdict::duplicate);
  Package suspend_stranger = must(make_membership_package(
      {Uuid{}, "", "node-2", kT0 + 100},
      MembershipRecord{MembershipAction::suspend_node, "node-7", mallory.public_key()},
      {nullptr, nullptr, &w.node2}));
  EXPECT_VERDICT(w.check(suspend_stranger), Verdict::unknown_node);
}

TEST_F(Validate, RemovedNodeCanNoLongerSign) {
  w.accept(must(make_membership_package(
      {Uuid{}, "", "node-2", kT0 + 300},
      MembershipRecord{MembershipAction::remove_node, "node-1", w.node1.public_key()},
      {nullptr, nullptr, &w.node2})));
  EXPECT_VERDICT(w.check(w.data(kT0 + 200)), Verdict::ok);
  EXPECT_VERDICT(w.check(w.data(kT0 + 400)), Verdict::unknown_node);
}

// Every single-byte change of a valid encoded package must be rejected: never accepted,
// never a crash.
TEST_F(Validate, EveryByteFlipIsRejected) {
  for (crypto::SigAlg alg : {crypto::SigAlg::ecdsa_p256_sha256, crypto::SigAlg::ed25519}) {
    auto vm_key = testing::make_key(alg);
    auto user_key = testing::make_key(alg);
    auto node_key = testing::make_key(alg);
    MemoryView view;
    view.add_node("node-1", node_key.public_key(), kT0);
    ASSERT_TRUE(view.apply(must(make_membership_package(
        {Uuid{}, "alice", "node-1", kT0 + 1},
        MembershipRecord{MembershipAction::register_user, "alice", user_key.public_key()},
        {nullptr, &user_key, &node_key}))));
    PackageSigners signers{&vm_key, &user_key, &node_key};
    ASSERT_TRUE(view.apply(
        must(make_binding_package({w.vm, "alice", "node-1", kT0 + 2}, PolicyRef{},
                                  BindingEvent::started, vm_key.public_key(), signers))));
    ASSERT_TRUE(view.apply(
        must(make_policy_package({w.vm, "alice", "node-1", kT0 + 3}, w.policy1, signers))));
    Bytes encoded = must(make_data_package({w.vm, "alice", "node-1", kT0 + 100}, w.policy1.ref(),
                                           w.data_key, as_bytes("changed: /usr/bin/ssh"), signers))
                        .encode();
    const ValidationOptions options = w.at(kT0 + 100);
    ASSERT_TRUE(validate_encoded(encoded, view, options).ok());
    std::size_t rejected = 0;
    for (std::size_t i = 0; i < encoded.size(); ++i) {
      for (std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0x80}, std::uint8_t{0xff}}) {
        Bytes tampered = encoded;
        tampered[i] ^= mask;
        ValidationResult r = validate_encoded(tampered, view, options);
        EXPECT_FALSE(r.ok()) << "byte " << i << " ^ " << int(mask) << " was accepted";
        rejected += !r.ok();
      }
    }
    EXPECT_EQ(rejected, encoded.size() * 3);
  }
}

TEST(VerdictNames, AreKebabCase) {
  EXPECT_EQ(to_string(Verdict::node_not_hosting_vm_at_t), "node-not-hosting-vm-at-t");
  EXPECT_EQ(to_string(Verdict::policy_hash_mismatch), "policy-hash-mismatch");
  EXPECT_EQ(to_string(Verdict::timestamp_skew), "timestamp-skew");
}

}  // namespace
}  // namespace mchain
