// Packages (SPEC §5, paper §IV.B): PA_uv = C_uv || H_uv(tc) || S_v || S_u || S_n || t and its
// policy, binding, key-link and membership siblings.
//
// Encoding (canonical CBOR, docs/encoding.md):
//   header   = [version=1, type, vm(16), user, node, policy_version, policy_hash(32), t_us]
//   unsigned = [header, body]
//   package  = [unsigned, [sig_vm, sig_user, sig_node]]   sig = [] | [alg, bytes]
// The package id is SHA-256(unsigned): every signature covers it (with a per-role domain
// prefix), so no header field (timestamp, policy hash, ids) can be swapped under a signature,
// and re-encoding a signature cannot change the id.
#pragma once

#include "chain/crypto/sign.h"
#include "chain/error.h"
#include "chain/types.h"

#include <optional>
#include <string>

namespace mchain {

inline constexpr std::uint64_t kPackageFormatVersion = 1;

enum class PackageType : std::uint8_t {
  data = 0,        // encrypted measurement report C_uv
  policy = 1,      // an access policy record P_uv (PPA_uv)
  binding = 2,     // VM–user–node binding change (defined, started, migrated, stopped, ...)
  key_link = 3,    // Enc_{K(ver+1)}(K(ver)): lets a verifier of the new policy read older data
  membership = 4,  // node and user registration and membership changes
};
std::string_view to_string(PackageType type);

// The signers of a package, in the order their signatures are encoded.
enum class Role : std::uint8_t { vm = 0, user = 1, node = 2 };
std::string_view to_string(Role role);

// Size caps enforced by the decoder (and by the builders, so we never emit what peers refuse).
struct PackageLimits {
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_package_bytes = (1 << 20) + 4096;
};

// The policy a package claims to be sealed under: its version and H_uv(tc).
struct PolicyRef {
  std::uint64_t version = 0;
  Hash256 hash{};
  bool operator==(const PolicyRef&) const = default;
};

struct PackageHeader {
  PackageType type = PackageType::data;
  Uuid vm;             // nil for membership packages
  std::string user;    // empty for membership packages other than user registration
  std::string node;    // the producing node
  PolicyRef policy;    // version 0 / zero hash: no policy in force
  TimeUs timestamp = 0;

  Bytes encode() const;  // the header array alone: AES-GCM's associated data for C_uv
};

struct UnsignedPackage {
  PackageHeader header;
  Bytes body;

  Bytes encode() const;
  Hash256 digest() const;  // the package id
};

struct PackageSigners {
  const crypto::Signer* vm = nullptr;
  const crypto::Signer* user = nullptr;
  const crypto::Signer* node = nullptr;
};

// The message a role's key signs for a package: a domain tag naming the role, then the id.
Bytes signing_message(Role role, const Hash256& package_id);

class Package {
 public:
  // Strict canonical decode: rejects trailing bytes, non-canonical forms, oversize fields,
  // unknown versions and types, naming the field.
  static Result<Package> decode(ByteView encoded, const PackageLimits& limits = {});
  // Signs `content` with every signer given; a null signer leaves that signature absent.
  static Result<Package> sign(UnsignedPackage content, const PackageSigners& signers,
                              const PackageLimits& limits = {});

  const PackageHeader& header() const { return content_.header; }
  const Bytes& body() const { return content_.body; }
  const UnsignedPackage& content() const { return content_; }
  const std::optional<crypto::Signature>& signature(Role role) const {
    return signatures_[static_cast<std::size_t>(role)];
  }
  const Hash256& id() const { return id_; }

  Bytes encode() const;

 private:
  Package() = default;
  UnsignedPackage content_;
  std::array<std::optional<crypto::Signature>, 3> signatures_;
  Hash256 id_{};
};

}  // namespace mchain
