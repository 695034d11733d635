// Package bodies: what each package type carries, and the builders that seal them.
// Every record is a canonical CBOR array starting with its format version.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chain/crypto/aead.h"
#include "chain/package/package.h"

namespace mchain {

// ---- data: the encrypted measurement report C_uv = AES-256-GCM(K_uv, D_uv), with the
// package header as associated data.
struct DataRecord {
  crypto::AeadNonce nonce{};
  Bytes ciphertext;  // ciphertext || tag

  Bytes encode() const;
  static Result<DataRecord> decode(ByteView encoded, std::size_t max_bytes);

  // decode() without copying the ciphertext out of `encoded` (same checks, same errors):
  // validation only needs to know that the record is well formed.
  struct Parsed {
    crypto::AeadNonce nonce{};
    ByteView ciphertext;  // points into `encoded`
  };
  static Result<Parsed> parse(ByteView encoded, std::size_t max_bytes);
};

// ---- policy: P_uv(tc). Its SHA-256 is H_uv(tc), carried in the header of every package of
// the VM sealed under it. The version is a one-way counter per VM.
enum class AbeScheme : std::uint8_t { kp_abe_gpsw = 1, cp_abe_versioned = 2 };
std::string_view to_string(AbeScheme scheme);
// "kp-abe-gpsw" / "cp-abe-versioned", or the short "kp-gpsw" / "cp-versioned"; nullopt otherwise.
std::optional<AbeScheme> abe_scheme_from_string(std::string_view name);

struct PolicyRecord {
  Uuid vm;
  std::uint64_t version = 0;
  AbeScheme scheme = AbeScheme::kp_abe_gpsw;
  // The VM's attribute set: KP-ABE seals to it; a CP-ABE record carries it along unused.
  std::vector<std::string> attributes;
  // Who may read: KP-ABE, as the user wrote it (the verifier keys hold the trees); CP-ABE, the
  // canonical AND expression the key is sealed under.
  std::string expression;
  // K_uv(version) sealed for verifiers by the scheme above (abe/; agent/key_chain.h), opaque to
  // the chain; empty while the cluster has no ABE authority.
  Bytes sealed_key{};

  static constexpr std::size_t kMaxAttributes = 256;
  static constexpr std::size_t kMaxAttributeLength = 128;
  static constexpr std::size_t kMaxExpressionLength = 4096;
  static constexpr std::size_t kMaxSealedKeyLength = 64 * 1024;

  Bytes encode() const;
  Hash256 hash() const;  // H_uv
  PolicyRef ref() const { return {version, hash()}; }
  static Result<PolicyRecord> decode(ByteView encoded);
};

// ---- binding: who owns a VM and which node runs it, from time t on.
enum class BindingEvent : std::uint8_t {
  defined = 0,    // first seen: registers the VM key and its owner; runs nowhere yet
  started = 1,    // runs on the signing node
  migrated = 2,   // now runs on the signing node (the destination)
  stopped = 3,    // runs nowhere
  undefined = 4,  // gone: no package may name it afterwards
  // A new owner from t on: the package's user (header and record) is the new owner, who
  // signs with their key, with the VM key and the node (the host, while it runs).
  transferred = 5,
};
std::string_view to_string(BindingEvent event);

struct BindingRecord {
  Uuid vm;
  std::string user;
  std::string node;
  BindingEvent event = BindingEvent::defined;
  crypto::PublicKey vm_key;

  Bytes encode() const;
  static Result<BindingRecord> decode(ByteView encoded);
};

// ---- key link: K(from) wrapped under K(to), so that whoever may read under the newer
// policy walks back through the VM's whole history.
struct KeyLinkRecord {
  Uuid vm;
  std::uint64_t from_version = 0;
  std::uint64_t to_version = 0;
  crypto::AeadNonce nonce{};
  Bytes wrapped_key;  // AES-256-GCM(K(to), K(from)) || tag, AAD = [vm, from, to]

  Bytes encode() const;
  static Result<KeyLinkRecord> decode(ByteView encoded);
};

// ---- membership: the nodes of the cluster and the registered users.
enum class MembershipAction : std::uint8_t {
  add_node = 0,
  remove_node = 1,
  suspend_node = 2,
  rejoin_node = 3,
  register_user = 4,
};
std::string_view to_string(MembershipAction action);

struct MembershipRecord {
  MembershipAction action = MembershipAction::add_node;
  std::string subject;  // the node or user id concerned
  crypto::PublicKey key;

  Bytes encode() const;
  static Result<MembershipRecord> decode(ByteView encoded);
};

// Which roles sign a package: all three, except that a membership package is signed by the
// issuing node, plus by the user's own key when a user registers (proof of possession).
// `action` is the membership record's, for membership packages.
bool role_signs(Role role, PackageType type, std::optional<MembershipAction> action);

// ---- builders. Each fills the header's type and policy fields consistently with the body.
struct PackageOrigin {
  Uuid vm;
  std::string user;
  std::string node;
  TimeUs timestamp = 0;
};

Result<Package> make_data_package(const PackageOrigin& origin, const PolicyRef& policy,
                                  const crypto::AeadKey& key, ByteView report,
                                  const PackageSigners& signers, const PackageLimits& limits = {});
// Decrypts a data package's report; fails unless the key and every header byte authenticate.
Result<Bytes> open_data_package(const Package& package, const crypto::AeadKey& key);

Result<Package> make_policy_package(const PackageOrigin& origin, const PolicyRecord& policy,
                                    const PackageSigners& signers);
Result<Package> make_binding_package(const PackageOrigin& origin, const PolicyRef& policy,
                                     BindingEvent event, const crypto::PublicKey& vm_key,
                                     const PackageSigners& signers);
Result<Package> make_key_link_package(const PackageOrigin& origin, const PolicyRef& new_policy,
                                      std::uint64_t old_version, const crypto::AeadKey& old_key,
                                      const crypto::AeadKey& new_key,
                                      const PackageSigners& signers);
// Recovers K(from) from a key-link package with K(to).
Result<crypto::AeadKey> unwrap_key_link(const KeyLinkRecord& link, const crypto::AeadKey& new_key);
Result<Package> make_membership_package(const PackageOrigin& origin, const MembershipRecord& record,
                                        const PackageSigners& signers);

}  // namespace mchain
