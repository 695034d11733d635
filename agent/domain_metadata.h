// Who owns a VM, from its libvirt domain metadata (SPEC §10): our own namespace, or OpenStack
// Nova's <nova:instance> for VMs that Nova manages.
//
//   <metadata>
//     <mchain:owner xmlns:mchain="http://mchain.invalid/xmlns/libvirt/1">alice</mchain:owner>
//   </metadata>
//
// libvirt keeps at most one element per namespace, and virDomainGetMetadata returns that element
// with the namespace taken off ("<owner>alice</owner>"); the parsers accept both that and the
// namespaced form found in a full domain XML. Parsing uses libxml2 with no DTDs at all: a
// DOCTYPE is an error, so no entity can be declared, expanded or fetched.
#pragma once

#include <libvirt/libvirt.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "chain/error.h"
#include "chain/types.h"

namespace mchain::agent {

// Ours. ".invalid" (RFC 2606) cannot be registered by anyone, so the URI never clashes.
inline constexpr std::string_view kMetadataNamespace = "http://mchain.invalid/xmlns/libvirt/1";
inline constexpr std::string_view kMetadataPrefix = "mchain";
// Current Nova writes 1.1; instances defined by older releases still carry 1.0. Tried in this order.
inline constexpr std::string_view kNovaNamespace11 = "http://openstack.org/xmlns/libvirt/nova/1.1";
inline constexpr std::string_view kNovaNamespace10 = "http://openstack.org/xmlns/libvirt/nova/1.0";

// Larger input is refused before parsing. An owner element is a few dozen bytes and Nova's
// instance element well under 4 KiB; domain XML (for owner_from_domain_xml) rarely exceeds 100 KiB.
inline constexpr std::size_t kMaxMetadataBytes = 64 * 1024;
inline constexpr std::size_t kMaxDomainXmlBytes = 8 * 1024 * 1024;

enum class OwnerSource { kMchain, kNova };
std::string_view owner_source_name(OwnerSource source);  // "mchain", "nova"

struct DomainOwner {
  std::string user;  // always passes valid_id (chain/types.h)
  OwnerSource source = OwnerSource::kMchain;
  // Nova only, else empty: the namespace it was found in and the Keystone ids and project name
  // as Nova wrote them (extras that are over-long or contain control characters are dropped).
  std::string nova_namespace;
  std::string user_uuid;
  std::string project;
  std::string project_uuid;

  bool operator==(const DomainOwner&) const = default;
};

// Pure parsing, no libvirt: one metadata element as virDomainGetMetadata returns it for the
// namespace of `source`, e.g. "<owner>alice</owner>" (kMchain) or
// "<instance>…<owner><user uuid=\"…\">alice</user>…</owner></instance>" (kNova). Elements may
// also carry that namespace explicitly. Entities and character references are decoded and
// surrounding whitespace trimmed; the name must then pass valid_id. Any problem is an Error
// saying what was wrong.
Result<DomainOwner> parse_owner_metadata(std::string_view xml, OwnerSource source);

// The owner from a whole domain XML (as hook scripts receive it on stdin): our element under
// <metadata> first, then Nova 1.1, then 1.0. nullopt: none of them is there.
Result<std::optional<DomainOwner>> owner_from_domain_xml(std::string_view domain_xml);

// The <uuid> of a whole domain XML (as hook scripts receive it).
Result<Uuid> uuid_from_domain_xml(std::string_view domain_xml);

// The element to hand virDomainSetMetadata for `user` (escaped; fails unless valid_id).
Result<std::string> owner_metadata_xml(std::string_view user);

// From a live domain (one virDomainGetMetadata per namespace, in the order above, stopping at the
// first present; flags 0: the live definition of a running domain, else the persistent one).
// nullopt: no ownership metadata. An Error when our element or Nova's is present but unusable
// (never falls through to the next namespace then: a broken explicit owner must not silently
// become another one), or when libvirt fails.
Result<std::optional<DomainOwner>> read_domain_owner(virDomainPtr domain);

// Sets (or with remove_domain_owner, deletes) our element. flags: virDomainModificationImpact
// (VIR_DOMAIN_AFFECT_CURRENT, _LIVE, _CONFIG).
Status write_domain_owner(virDomainPtr domain, std::string_view user,
                          unsigned int flags = VIR_DOMAIN_AFFECT_CURRENT);
Status remove_domain_owner(virDomainPtr domain, unsigned int flags = VIR_DOMAIN_AFFECT_CURRENT);

}  // namespace mchain::agent
