#include "chain/package/validate.h"

#include "chain/crypto/hash.h"
#include "chain/package/records.h"
#include "chain/package/signature_cache.h"

namespace mchain {

namespace {

ValidationResult reject(Verdict verdict, std::string detail) {
  return {verdict, std::move(detail)};
}

// The package's body, decoded once and checked against its header.
struct Body {
  std::optional<PolicyRecord> policy;
  std::optional<BindingRecord> binding;
  std::optional<KeyLinkRecord> key_link;
  std::optional<MembershipRecord> membership;
};

// Returns an empty detail when the body is well formed and consistent with the header.
std::string decode_body(const Package& package, Body& out) {
  const PackageHeader& h = package.header();
  auto mismatch = [](std::string_view field) {
    return std::string(field) + " differs from the package header";
  };
  switch (h.type) {
    case PackageType::data: {
      auto data = DataRecord::parse(package.body(), package.body().size());
      if (!data) return data.error().message;
      return {};
    }
    case PackageType::policy: {
      auto policy = PolicyRecord::decode(package.body());
      if (!policy) return policy.error().message;
      if (policy->vm != h.vm) return mismatch("policy.vm");
      if (policy->version != h.policy.version) return mismatch("policy.policy_version");
      if (policy->version == 0) return "policy.policy_version: versions start at 1";
      out.policy = std::move(*policy);
      return {};
    }
    case PackageType::binding: {
      auto binding = BindingRecord::decode(package.body());
      if (!binding) return binding.error().message;
      if (binding->vm != h.vm) return mismatch("binding.vm");
      if (binding->user != h.user) return mismatch("binding.user");
      if (binding->node != h.node) return mismatch("binding.node");
      out.binding = std::move(*binding);
      return {};
    }
    case PackageType::key_link: {
      auto link = KeyLinkRecord::decode(package.body());
      if (!link) return link.error().message;
      if (link->vm != h.vm) return mismatch("key_link.vm");
      if (link->to_version != h.policy.version) return mismatch("key_link.to_version");
      if (link->from_version >= link->to_version) {
        return "key_link.from_version: must be older than to_version";
      }
      out.key_link = std::move(*link);
      return {};
    }
    case PackageType::membership: {
      auto member = MembershipRecord::decode(package.body());
      if (!member) return member.error().message;
      if (!h.vm.is_nil()) return "package.header.vm: must be nil in a membership package";
      if (h.policy != PolicyRef{}) return "package.header.policy: must be empty in membership";
      bool registers_user = member->action == MembershipAction::register_user;
      if (registers_user ? h.user != member->subject : !h.user.empty()) {
        return registers_user ? mismatch("membership.subject")
                              : "package.header.user: must be empty in node membership";
      }
      out.membership = std::move(*member);
      return {};
    }
  }
  return "package.header.type: unknown";
}

// Compares the policy a package names with the one in force for its VM at t.
ValidationResult check_policy_ref(const PolicyRef& claimed, const std::optional<VmAt>& vm,
                                  const Uuid& vm_id, const View& view, TimeUs t) {
  const std::optional<PolicyInForce> in_force = vm ? vm->policy : std::nullopt;
  if (!in_force) {
    if (claimed == PolicyRef{}) return {};
    return reject(Verdict::policy_hash_mismatch,
                  "names policy v" + std::to_string(claimed.version) +
                      " but no policy was in force at " + format_time(t));
  }
  if (claimed == in_force->ref) return {};
  if (claimed.version < in_force->ref.version) {
    auto older = view.policy_version(vm_id, claimed.version);
    if (older && older->ref == claimed) {
      return reject(Verdict::stale_policy, "sealed under policy v" +
                                               std::to_string(claimed.version) + " but v" +
                                               std::to_string(in_force->ref.version) +
                                               " was in force at " + format_time(t));
    }
  }
  return reject(Verdict::policy_hash_mismatch,
                "policy v" + std::to_string(claimed.version) + " hash " +
                    to_hex(claimed.hash).substr(0, 16) + "... is not the policy in force (v" +
                    std::to_string(in_force->ref.version) + ") at " + format_time(t));
}

// Step 6: each present signature under its role's domain, with the key found in force at t
// (keys in role order). With a cache, a hit stands for these very checks (the entry names id,
// keys and signatures); a miss verifies, and records the checks only if all passed.
ValidationResult check_signatures(const Package& package,
                                  const std::array<const crypto::PublicKey*, 3>& keys,
                                  SignatureCache* cache) {
  std::array<SignatureCache::Checked, 3> checked;
  for (std::size_t i = 0; i < checked.size(); ++i) {
    const auto& signature = package.signature(static_cast<Role>(i));
    if (signature) checked[i] = {keys[i], &*signature};
  }
  std::optional<Hash256> entry;
  if (cache != nullptr) {
    entry = SignatureCache::entry(package.id(), checked);
    if (cache->contains(*entry)) return {};
  }
  constexpr Verdict kFailure[] = {Verdict::bad_vm_signature, Verdict::bad_user_signature,
                                  Verdict::bad_node_signature};
  for (std::size_t i = 0; i < checked.size(); ++i) {
    const auto [key, signature] = checked[i];
    if (signature == nullptr) continue;
    // Step 1 admits only the signatures a type calls for, and step 3 found a key for each.
    const Role role = static_cast<Role>(i);
    if (!key->verify(signing_message(role, package.id()), *signature)) {
      return reject(kFailure[i], std::string(to_string(role)) +
                                     " signature does not verify with the " +
                                     std::string(crypto::to_string(key->alg())) +
                                     " key in force at " + format_time(package.header().timestamp));
    }
  }
  if (entry) cache->insert(*entry);
  return {};
}

}  // namespace

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::ok: return "ok";
    case Verdict::malformed: return "malformed";
    case Verdict::unknown_vm: return "unknown-vm";
    case Verdict::unknown_user: return "unknown-user";
    case Verdict::unknown_node: return "unknown-node";
    case Verdict::policy_hash_mismatch: return "policy-hash-mismatch";
    case Verdict::stale_policy: return "stale-policy";
    case Verdict::bad_vm_signature: return "bad-vm-signature";
    case Verdict::bad_user_signature: return "bad-user-signature";
    case Verdict::bad_node_signature: return "bad-node-signature";
    case Verdict::node_not_hosting_vm_at_t: return "node-not-hosting-vm-at-t";
    case Verdict::user_not_owner_at_t: return "user-not-owner-at-t";
    case Verdict::duplicate: return "duplicate";
    case Verdict::timestamp_skew: return "timestamp-skew";
  }
  return "unknown";
}

ValidationResult validate(const Package& package, const View& view,
                          const ValidationOptions& options) {
  const PackageHeader& h = package.header();
  const TimeUs t = h.timestamp;

  // 1. Shape: the body decodes as its type's record and agrees with the header; exactly the
  //    signatures the type calls for are present.
  Body body;
  if (std::string problem = decode_body(package, body); !problem.empty()) {
    return reject(Verdict::malformed, problem);
  }
  if (h.type != PackageType::membership && (h.vm.is_nil() || h.user.empty())) {
    return reject(Verdict::malformed, "package.header: VM and user are required");
  }
  const std::optional<MembershipAction> action =
      body.membership ? std::optional(body.membership->action) : std::nullopt;
  for (Role role : {Role::vm, Role::user, Role::node}) {
    bool present = package.signature(role).has_value();
    if (present != role_signs(role, h.type, action)) {
      return reject(Verdict::malformed, std::string(present ? "unexpected " : "missing ") +
                                            std::string(to_string(role)) + " signature on a " +
                                            std::string(to_string(h.type)) + " package");
    }
  }

  // 2. Freshness and replay.
  if (options.check_timestamp) {
    const TimeUs now = options.now != 0 ? options.now : now_us();
    const TimeUs distance = t > now ? t - now : now - t;
    if (distance > options.max_skew) {
      return reject(Verdict::timestamp_skew, format_time(t) + " is " +
                                                 std::to_string(distance / 1000) +
                                                 " ms from the local clock; allowed skew is " +
                                                 std::to_string(options.max_skew / 1000) + " ms");
    }
  }
  if (view.has_package(package.id())) {
    return reject(Verdict::duplicate, "package " + to_hex(package.id()).substr(0, 16) +
                                          "... is already on the chain or in a buffer");
  }

  // 3. Identities known at t, and the keys to check the signatures with.
  std::optional<crypto::PublicKey> node_key = view.node_key(h.node, t);
  if (!node_key) {
    return reject(Verdict::unknown_node,
                  "node '" + h.node + "' is not a member at " + format_time(t));
  }
  std::optional<crypto::PublicKey> user_key;
  if (body.membership) {
    if (role_signs(Role::user, h.type, action)) user_key = body.membership->key;
  } else {
    user_key = view.user_key(h.user, t);
    if (!user_key) {
      return reject(Verdict::unknown_user,
                    "user '" + h.user + "' is not registered at " + format_time(t));
    }
  }
  if (body.membership) {
    // Registration never replaces a key: otherwise any member could take over a user or a
    // node by registering it again under a key of its own.
    const MembershipRecord& m = *body.membership;
    const bool is_user = m.action == MembershipAction::register_user;
    const bool known =
        is_user ? view.user_key(m.subject, t).has_value() : view.node_key(m.subject, t).has_value();
    if ((is_user || m.action == MembershipAction::add_node) && known) {
      return reject(Verdict::duplicate, std::string(is_user ? "user '" : "node '") + m.subject +
                                            "' is already registered at " + format_time(t));
    }
    if (!is_user && m.action != MembershipAction::add_node && !known) {
      return reject(Verdict::unknown_node, std::string(to_string(m.action)) + " names node '" +
                                               m.subject + "', which is not a member at " +
                                               format_time(t));
    }
  }
  std::optional<VmAt> vm;
  std::optional<crypto::PublicKey> vm_key;
  if (!body.membership) {
    vm = view.vm_at(h.vm, t);
    if (vm) {
      vm_key = vm->key;
      if (body.binding && !(body.binding->vm_key == vm->key)) {
        return reject(Verdict::malformed, "binding.vm_key differs from the key VM " +
                                              h.vm.to_string() + " is registered with");
      }
    } else if (body.binding && (body.binding->event == BindingEvent::defined ||
                                body.binding->event == BindingEvent::started)) {
      vm_key = body.binding->vm_key;  // first sight of the VM: its binding registers the key
    } else {
      return reject(Verdict::unknown_vm,
                    "VM " + h.vm.to_string() + " is not defined at " + format_time(t));
    }
  }

  // 4. The VM–user–node correspondence at t.
  if (vm) {
    const bool transfer = body.binding && body.binding->event == BindingEvent::transferred;
    if (transfer && vm->owner == h.user) {
      return reject(Verdict::malformed, "VM " + h.vm.to_string() + " already belongs to '" +
                                            h.user + "' at " + format_time(t));
    }
    if (!transfer && vm->owner != h.user) {
      return reject(Verdict::user_not_owner_at_t, "VM " + h.vm.to_string() + " belonged to '" +
                                                      vm->owner + "', not '" + h.user + "', at " +
                                                      format_time(t));
    }
    // Data and stop/undefine bindings must come from the host; policy and key-link packages
    // too while the VM runs (a stopped VM's policy may be revised through any member node).
    bool host_must_sign = false;
    switch (h.type) {
      case PackageType::data: host_must_sign = true; break;
      case PackageType::policy:
      case PackageType::key_link: host_must_sign = vm->host.has_value(); break;
      case PackageType::binding:
        host_must_sign = body.binding->event == BindingEvent::stopped ||
                         ((body.binding->event == BindingEvent::undefined ||
                           body.binding->event == BindingEvent::transferred) &&
                          vm->host);
        break;
      case PackageType::membership: break;
    }
    if (host_must_sign && vm->host != h.node) {
      return reject(Verdict::node_not_hosting_vm_at_t,
                    "node '" + h.node + "' did not host VM " + h.vm.to_string() + " at " +
                        format_time(t) +
                        (vm->host ? " (host: '" + *vm->host + "')" : " (not running)"));
    }
  }

  // 5. The package–policy correspondence (H_uv(tc) and t > tc).
  if (body.policy) {
    if (crypto::sha256(package.body()) != h.policy.hash) {
      return reject(Verdict::policy_hash_mismatch,
                    "header policy hash is not the SHA-256 of the policy record");
    }
    if (vm && vm->policy && vm->policy->ref.version >= body.policy->version) {
      return reject(Verdict::stale_policy,
                    "policy v" + std::to_string(body.policy->version) + " is not newer than v" +
                        std::to_string(vm->policy->ref.version) + " in force at " + format_time(t));
    }
  } else if (!body.membership) {
    ValidationResult policy = check_policy_ref(h.policy, vm, h.vm, view, t);
    if (!policy.ok()) return policy;
    if (body.key_link && !view.policy_version(h.vm, body.key_link->from_version)) {
      return reject(Verdict::policy_hash_mismatch, "key link from policy v" +
                                                       std::to_string(body.key_link->from_version) +
                                                       ", which the VM never had");
    }
  }

  // 6. Signatures over the whole unsigned package, each under its role's domain.
  auto key = [](const std::optional<crypto::PublicKey>& k) { return k ? &*k : nullptr; };
  return check_signatures(package, {key(vm_key), key(user_key), key(node_key)},
                          options.signature_cache);
}

ValidationResult validate_encoded(ByteView encoded, const View& view,
                                  const ValidationOptions& options, const PackageLimits& limits) {
  auto package = Package::decode(encoded, limits);
  if (!package) return reject(Verdict::malformed, package.error().message);
  return validate(*package, view, options);
}

}  // namespace mchain
