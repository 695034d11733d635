#include "chain/package/records.h"

#include "chain/crypto/hash.h"
#include "chain/encoding/cbor.h"
#include "chain/encoding/fields.h"

namespace mchain {

namespace {

constexpr std::uint64_t kRecordVersion = 1;
// Policy records are at format 2: format 1 had no sealed data key.
constexpr std::uint64_t kPolicyRecordVersion = 2;

template <class Enum>
Enum read_enum(cbor::Reader& r, std::string_view field, Enum last) {
  return static_cast<Enum>(r.uint(field, static_cast<std::uint64_t>(last)));
}

Bytes key_link_aad(const Uuid& vm, std::uint64_t from, std::uint64_t to) {
  cbor::Writer w;
  w.array(4).text("mchain/key-link/v1").bytes(vm.bytes).uint(from).uint(to);
  return w.take();
}

UnsignedPackage unsigned_package(PackageType type, const PackageOrigin& origin,
                                 const PolicyRef& policy) {
  UnsignedPackage p;
  p.header.type = type;
  p.header.vm = origin.vm;
  p.header.user = origin.user;
  p.header.node = origin.node;
  p.header.policy = policy;
  p.header.timestamp = origin.timestamp;
  return p;
}

}  // namespace

// ---- data

Bytes DataRecord::encode() const {
  cbor::Writer w;
  w.array(3).uint(kRecordVersion).bytes(nonce).bytes(ciphertext);
  return w.take();
}

Result<DataRecord::Parsed> DataRecord::parse(ByteView encoded, std::size_t max_bytes) {
  return cbor::decode(encoded, "data", [&](cbor::Reader& r) {
    r.array_exact("data", 3);
    cbor::expect_version(r, "data.version", kRecordVersion, "record");
    Parsed d;
    d.nonce = r.fixed_bytes<crypto::kAeadNonceSize>("data.nonce");
    const std::size_t at = r.offset();
    d.ciphertext = r.bytes("data.ciphertext", max_bytes);
    if (d.ciphertext.size() < crypto::kAeadTagSize) {
      throw cbor::DecodeError("data.ciphertext", "shorter than the GCM tag", at);
    }
    return d;
  });
}

Result<DataRecord> DataRecord::decode(ByteView encoded, std::size_t max_bytes) {
  auto parsed = parse(encoded, max_bytes);
  if (!parsed) return std::unexpected(parsed.error());
  return DataRecord{parsed->nonce, Bytes(parsed->ciphertext.begin(), parsed->ciphertext.end())};
}

// ---- policy

std::string_view to_string(AbeScheme scheme) {
  switch (scheme) {
    case AbeScheme::kp_abe_gpsw: return "kp-abe-gpsw";
    case AbeScheme::cp_abe_versioned: return "cp-abe-versioned";
  }
  return "unknown";
}

std::optional<AbeScheme> abe_scheme_from_string(std::string_view name) {
  for (const AbeScheme scheme : {AbeScheme::kp_abe_gpsw, AbeScheme::cp_abe_versioned}) {
    const std::string_view full = to_string(scheme);
    // The short name drops "abe-": what `mchain-bench abe` calls the schemes.
    const std::string shorter = std::string(full.substr(0, 3)) + std::string(full.substr(7));
    if (name == full || name == shorter) return scheme;
  }
  return std::nullopt;
}

Bytes PolicyRecord::encode() const {
  cbor::Writer w;
  w.array(7)
      .uint(kPolicyRecordVersion)
      .bytes(vm.bytes)
      .uint(version)
      .uint(static_cast<std::uint64_t>(scheme));
  w.array(attributes.size());
  for (const auto& attribute : attributes) w.text(attribute);
  w.text(expression).bytes(sealed_key);
  return w.take();
}

Hash256 PolicyRecord::hash() const { return crypto::sha256(encode()); }

Result<PolicyRecord> PolicyRecord::decode(ByteView encoded) {
  return cbor::decode(encoded, "policy", [&](cbor::Reader& r) {
    r.array_exact("policy", 7);
    cbor::expect_version(r, "policy.version", kPolicyRecordVersion, "record");
    PolicyRecord p;
    p.vm.bytes = r.fixed_bytes<16>("policy.vm");
    p.version = r.uint("policy.policy_version");
    const std::size_t scheme_at = r.offset();
    std::uint64_t scheme = r.uint("policy.scheme", 2);
    if (scheme == 0) throw cbor::DecodeError("policy.scheme", "unknown ABE scheme 0", scheme_at);
    p.scheme = static_cast<AbeScheme>(scheme);
    std::size_t count = r.array("policy.attributes", kMaxAttributes);
    for (std::size_t k = 0; k < count; ++k) {
      p.attributes.emplace_back(r.text("policy.attributes", kMaxAttributeLength));
    }
    p.expression = r.text("policy.expression", kMaxExpressionLength);
    const ByteView sealed = r.bytes("policy.sealed_key", kMaxSealedKeyLength);
    p.sealed_key.assign(sealed.begin(), sealed.end());
    return p;
  });
}

// ---- binding

std::string_view to_string(BindingEvent event) {
  switch (event) {
    case BindingEvent::defined: return "defined";
    case BindingEvent::started: return "started";
    case BindingEvent::migrated: return "migrated";
    case BindingEvent::stopped: return "stopped";
    case BindingEvent::undefined: return "undefined";
    case BindingEvent::transferred: return "transferred";
  }
  return "unknown";
}

Bytes BindingRecord::encode() const {
  cbor::Writer w;
  w.array(6)
      .uint(kRecordVersion)
      .bytes(vm.bytes)
      .text(user)
      .text(node)
      .uint(static_cast<std::uint64_t>(event));
  cbor::write_public_key(w, vm_key);
  return w.take();
}

Result<BindingRecord> BindingRecord::decode(ByteView encoded) {
  return cbor::decode(encoded, "binding", [&](cbor::Reader& r) {
    r.array_exact("binding", 6);
    cbor::expect_version(r, "binding.version", kRecordVersion, "record");
    Uuid vm;
    vm.bytes = r.fixed_bytes<16>("binding.vm");
    std::string user = cbor::read_id(r, "binding.user");
    std::string node = cbor::read_id(r, "binding.node");
    auto event = read_enum(r, "binding.event", BindingEvent::transferred);
    return BindingRecord{vm, std::move(user), std::move(node), event,
                         cbor::read_public_key(r, "binding.vm_key")};
  });
}

// ---- key link

Bytes KeyLinkRecord::encode() const {
  cbor::Writer w;
  w.array(6)
      .uint(kRecordVersion)
      .bytes(vm.bytes)
      .uint(from_version)
      .uint(to_version)
      .bytes(nonce)
      .bytes(wrapped_key);
  return w.take();
}

Result<KeyLinkRecord> KeyLinkRecord::decode(ByteView encoded) {
  return cbor::decode(encoded, "key_link", [&](cbor::Reader& r) {
    r.array_exact("key_link", 6);
    cbor::expect_version(r, "key_link.version", kRecordVersion, "record");
    KeyLinkRecord k;
    k.vm.bytes = r.fixed_bytes<16>("key_link.vm");
    k.from_version = r.uint("key_link.from_version");
    k.to_version = r.uint("key_link.to_version");
    k.nonce = r.fixed_bytes<crypto::kAeadNonceSize>("key_link.nonce");
    ByteView wrapped =
        r.bytes_exact("key_link.wrapped_key", crypto::kAeadKeySize + crypto::kAeadTagSize);
    k.wrapped_key.assign(wrapped.begin(), wrapped.end());
    return k;
  });
}

Result<crypto::AeadKey> unwrap_key_link(const KeyLinkRecord& link, const crypto::AeadKey& new_key) {
  auto plain = crypto::aes256gcm_open(new_key, link.nonce,
                                      key_link_aad(link.vm, link.from_version, link.to_version),
                                      link.wrapped_key);
  if (!plain)
    return fail("key link " + std::to_string(link.from_version) + " -> " +
                std::to_string(link.to_version) + ": " + plain.error().message);
  if (plain->size() != crypto::kAeadKeySize) return fail("key link: wrapped key has wrong size");
  crypto::AeadKey old_key;
  std::copy(plain->begin(), plain->end(), old_key.begin());
  return old_key;
}

// ---- membership

std::string_view to_string(MembershipAction action) {
  switch (action) {
    case MembershipAction::add_node: return "add-node";
    case MembershipAction::remove_node: return "remove-node";
    case MembershipAction::suspend_node: return "suspend-node";
    case MembershipAction::rejoin_node: return "rejoin-node";
    case MembershipAction::register_user: return "register-user";
  }
  return "unknown";
}

Bytes MembershipRecord::encode() const {
  cbor::Writer w;
  w.array(4).uint(kRecordVersion).uint(static_cast<std::uint64_t>(action)).text(subject);
  cbor::write_public_key(w, key);
  return w.take();
}

Result<MembershipRecord> MembershipRecord::decode(ByteView encoded) {
  return cbor::decode(encoded, "membership", [&](cbor::Reader& r) {
    r.array_exact("membership", 4);
    cbor::expect_version(r, "membership.version", kRecordVersion, "record");
    auto action = read_enum(r, "membership.action", MembershipAction::register_user);
    std::string subject = cbor::read_id(r, "membership.subject");
    return MembershipRecord{action, std::move(subject), cbor::read_public_key(r, "membership.key")};
  });
}

bool role_signs(Role role, PackageType type, std::optional<MembershipAction> action) {
  if (type != PackageType::membership) return true;
  switch (role) {
    case Role::node: return true;
    case Role::user: return action == MembershipAction::register_user;
    case Role::vm: return false;
  }
  return false;
}

// ---- builders

Result<Package> make_data_package(const PackageOrigin& origin, const PolicyRef& policy,
                                  const crypto::AeadKey& key, ByteView report,
                                  const PackageSigners& signers, const PackageLimits& limits) {
  UnsignedPackage p = unsigned_package(PackageType::data, origin, policy);
  DataRecord data;
  data.nonce = crypto::random_aead_nonce();
  data.ciphertext = crypto::aes256gcm_seal(key, data.nonce, p.header.encode(), report);
  p.body = data.encode();
  return Package::sign(std::move(p), signers, limits);
}

Result<Bytes> open_data_package(const Package& package, const crypto::AeadKey& key) {
  if (package.header().type != PackageType::data) {
    return fail("not a data package but a " + std::string(to_string(package.header().type)) +
                " package");
  }
  auto data = DataRecord::decode(package.body(), package.body().size());
  if (!data) return std::unexpected(data.error());
  return crypto::aes256gcm_open(key, data->nonce, package.header().encode(), data->ciphertext);
}

Result<Package> make_policy_package(const PackageOrigin& origin, const PolicyRecord& policy,
                                    const PackageSigners& signers) {
  if (policy.vm != origin.vm) return fail("policy record names another VM than the package");
  UnsignedPackage p = unsigned_package(PackageType::policy, origin, policy.ref());
  p.body = policy.encode();
  return Package::sign(std::move(p), signers);
}

Result<Package> make_binding_package(const PackageOrigin& origin, const PolicyRef& policy,
                                     BindingEvent event, const crypto::PublicKey& vm_key,
                                     const PackageSigners& signers) {
  UnsignedPackage p = unsigned_package(PackageType::binding, origin, policy);
  p.body = BindingRecord{origin.vm, origin.user, origin.node, event, vm_key}.encode();
  return Package::sign(std::move(p), signers);
}

Result<Package> make_key_link_package(const PackageOrigin& origin, const PolicyRef& new_policy,
                                      std::uint64_t old_version, const crypto::AeadKey& old_key,
                                      const crypto::AeadKey& new_key,
                                      const PackageSigners& signers) {
  if (old_version >= new_policy.version) {
    return fail("key link must point from an older policy version to a newer one");
  }
  KeyLinkRecord link;
  link.vm = origin.vm;
  link.from_version = old_version;
  link.to_version = new_policy.version;
  link.nonce = crypto::random_aead_nonce();
  link.wrapped_key = crypto::aes256gcm_seal(
      new_key, link.nonce, key_link_aad(link.vm, old_version, new_policy.version), old_key);
  UnsignedPackage p = unsigned_package(PackageType::key_link, origin, new_policy);
  p.body = link.encode();
  return Package::sign(std::move(p), signers);
}

Result<Package> make_membership_package(const PackageOrigin& origin, const MembershipRecord& record,
                                        const PackageSigners& signers) {
  UnsignedPackage p = unsigned_package(PackageType::membership, origin, PolicyRef{});
  p.body = record.encode();
  return Package::sign(std::move(p), signers);
}

}  // namespace mchain
