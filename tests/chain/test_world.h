// A small replicated world for package tests: two nodes, two users, one VM owned by alice,
// started on node-1 with policy v1. Every step goes through validate() and apply(), so the
// fixture itself exercises the real rules.
#pragma once

#include <gtest/gtest.h>

#include "chain/package/records.h"
#include "chain/package/validate.h"
#include "test_util.h"

namespace mchain::testing {

inline constexpr TimeUs kT0 = 1'700'000'000'000'000;  // 2023-11-14, in microseconds

class World {
 public:
  crypto::PrivateKey node1 = make_key();
  crypto::PrivateKey node2 = make_key();
  crypto::PrivateKey alice = make_key();
  crypto::PrivateKey bob = make_key(crypto::SigAlg::ed25519);
  crypto::PrivateKey vm_key = make_key();
  Uuid vm = *Uuid::parse("6f1c2e9a-0b7d-4c3e-9f10-2a3b4c5d6e7f");
  PolicyRecord policy1{vm, 1, AbeScheme::kp_abe_gpsw, {"tenant:alice", "role:web"}, "tenant:alice"};
  crypto::AeadKey data_key = crypto::random_aead_key();
  MemoryView view;

  World() {
    view.add_node("node-1", node1.public_key(), kT0);
    view.add_node("node-2", node2.public_key(), kT0);
    accept(must(make_membership_package(
        {Uuid{}, "alice", "node-1", kT0 + 1},
        MembershipRecord{MembershipAction::register_user, "alice", alice.public_key()},
        {nullptr, &alice, &node1})));
    accept(must(make_membership_package(
        {Uuid{}, "bob", "node-1", kT0 + 2},
        MembershipRecord{MembershipAction::register_user, "bob", bob.public_key()},
        {nullptr, &bob, &node1})));
    accept(
        must(make_binding_package({vm, "alice", "node-1", kT0 + 10}, PolicyRef{},
                                  BindingEvent::started, vm_key.public_key(), signers("node-1"))));
    accept(
        must(make_policy_package({vm, "alice", "node-1", kT0 + 20}, policy1, signers("node-1"))));
  }

  PackageSigners signers(std::string_view node) const {
    return {&vm_key, &alice, node == "node-2" ? &node2 : &node1};
  }

  ValidationOptions at(TimeUs now) const { return {true, now, 120'000'000}; }

  ValidationResult check(const Package& package) const {
    return validate(package, view, at(package.header().timestamp));
  }

  // Validates, requires ok, and applies: the way a node takes a package into its view.
  void accept(const Package& package) {
    ValidationResult result = check(package);
    ASSERT_TRUE(result.ok()) << to_string(result.verdict) << ": " << result.detail;
    ASSERT_TRUE(view.apply(package));
  }

  Package data(TimeUs t, std::string_view node = "node-1", PolicyRef policy = {}) const {
    if (policy == PolicyRef{}) policy = policy1.ref();
    return must(make_data_package({vm, "alice", std::string(node), t}, policy, data_key,
                                  as_bytes("added: /etc/passwd"), signers(node)));
  }
};

}  // namespace mchain::testing
