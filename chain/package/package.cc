#include "chain/package/package.h"

#include "chain/crypto/hash.h"
#include "chain/encoding/cbor.h"
#include "chain/encoding/fields.h"

namespace mchain {

namespace {

constexpr std::uint64_t kMaxPackageType = static_cast<std::uint64_t>(PackageType::membership);
constexpr std::string_view kRoleFields[] = {"package.signatures.vm", "package.signatures.user",
                                            "package.signatures.node"};

void write_header(cbor::Writer& w, const PackageHeader& h) {
  w.array(8)
      .uint(kPackageFormatVersion)
      .uint(static_cast<std::uint64_t>(h.type))
      .bytes(h.vm.bytes)
      .text(h.user)
      .text(h.node)
      .uint(h.policy.version)
      .bytes(h.policy.hash)
      .uint(h.timestamp);
}

void write_unsigned(cbor::Writer& w, const UnsignedPackage& p) {
  w.array(2);
  write_header(w, p.header);
  w.bytes(p.body);
}

PackageHeader read_header(cbor::Reader& r) {
  r.array_exact("package.header", 8);
  cbor::expect_version(r, "package.header.version", kPackageFormatVersion, "package format");
  PackageHeader h;
  h.type = static_cast<PackageType>(r.uint("package.header.type", kMaxPackageType));
  h.vm.bytes = r.fixed_bytes<16>("package.header.vm");
  // Only membership packages may leave the user empty; validation checks the type rules.
  h.user = cbor::read_id(r, "package.header.user", /*allow_empty=*/true);
  h.node = cbor::read_id(r, "package.header.node");
  h.policy.version = r.uint("package.header.policy_version");
  h.policy.hash = r.fixed_bytes<32>("package.header.policy_hash");
  h.timestamp = r.uint("package.header.timestamp");
  return h;
}

}  // namespace

std::string_view to_string(PackageType type) {
  switch (type) {
    case PackageType::data: return "data";
    case PackageType::policy: return "policy";
    case PackageType::binding: return "binding";
    case PackageType::key_link: return "key-link";
    case PackageType::membership: return "membership";
  }
  return "unknown";
}

std::string_view to_string(Role role) {
  switch (role) {
    case Role::vm: return "vm";
    case Role::user: return "user";
    case Role::node: return "node";
  }
  return "unknown";
}

Bytes PackageHeader::encode() const {
  cbor::Writer w;
  write_header(w, *this);
  return w.take();
}

Bytes UnsignedPackage::encode() const {
  cbor::Writer w;
  write_unsigned(w, *this);
  return w.take();
}

Hash256 UnsignedPackage::digest() const { return crypto::sha256(encode()); }

Bytes signing_message(Role role, const Hash256& package_id) {
  static constexpr std::string_view kDomains[] = {
      "mchain/package/vm/v1", "mchain/package/user/v1", "mchain/package/node/v1"};
  std::string_view domain = kDomains[static_cast<std::size_t>(role)];
  Bytes message(domain.begin(), domain.end());
  message.push_back(0);  // the domain ends here: no domain is a prefix of another's message
  message.insert(message.end(), package_id.begin(), package_id.end());
  return message;
}

Result<Package> Package::decode(ByteView encoded, const PackageLimits& limits) {
  if (encoded.size() > limits.max_package_bytes) {
    return fail("package: " + std::to_string(encoded.size()) + " bytes exceed the limit of " +
                std::to_string(limits.max_package_bytes));
  }
  return cbor::decode(encoded, "package", [&](cbor::Reader& r) {
    Package p;
    r.array_exact("package", 2);
    const std::size_t unsigned_start = r.offset();
    r.array_exact("package.unsigned", 2);
    p.content_.header = read_header(r);
    ByteView body = r.bytes("package.body", limits.max_body_bytes);
    p.content_.body.assign(body.begin(), body.end());
    p.id_ = crypto::sha256(encoded.subspan(unsigned_start, r.offset() - unsigned_start));
    r.array_exact("package.signatures", 3);
    for (std::size_t role = 0; role < 3; ++role) {
      p.signatures_[role] = cbor::read_optional_signature(r, kRoleFields[role]);
    }
    return p;
  });
}

Result<Package> Package::sign(UnsignedPackage content, const PackageSigners& signers,
                              const PackageLimits& limits) {
  if (content.body.size() > limits.max_body_bytes) {
    return fail("package body of " + std::to_string(content.body.size()) +
                " bytes exceeds the limit of " + std::to_string(limits.max_body_bytes));
  }
  if (!valid_id(content.header.node)) return fail("invalid node id '" + content.header.node + "'");
  if (!content.header.user.empty() && !valid_id(content.header.user)) {
    return fail("invalid user id '" + content.header.user + "'");
  }
  Package p;
  p.content_ = std::move(content);
  p.id_ = p.content_.digest();
  const crypto::Signer* by_role[] = {signers.vm, signers.user, signers.node};
  for (std::size_t role = 0; role < 3; ++role) {
    if (by_role[role] == nullptr) continue;
    auto signature = by_role[role]->sign(signing_message(static_cast<Role>(role), p.id_));
    if (!signature) {
      return fail("signing as " + std::string(to_string(static_cast<Role>(role))) + ": " +
                  signature.error().message);
    }
    p.signatures_[role] = std::move(*signature);
  }
  return p;
}

Bytes Package::encode() const {
  cbor::Writer w;
  w.array(2);
  write_unsigned(w, content_);
  w.array(3);
  for (const auto& signature : signatures_) cbor::write_optional_signature(w, signature);
  return w.take();
}

}  // namespace mchain
