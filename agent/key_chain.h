// The key chain across a VM's policy versions, for verifiers (paper §IV.D, SPEC §8).
//
// Every policy version N has a random data key K_uv(N) that encrypts the VM's reports while N is
// in force. The policy record of N carries K(N) sealed for verifiers by its ABE scheme, and each
// revision N-1 -> N puts a key link on the chain, K(N-1) wrapped under K(N). So a verifier who
// can open the newest version reads the VM's whole history, while one removed at revision N
// reads nothing sealed from N on. The record names the scheme:
//   - KP-ABE (kp_abe_gpsw): K(N) is encrypted to the record's attribute set; a verifier key
//     holds an access tree. Removing: a revision whose attributes no longer satisfy its tree.
//   - versioned CP-ABE (cp_abe_versioned): K(N) is encrypted under the record's expression, an
//     AND of (negated) attributes of the authority's universe; a verifier key holds an attribute
//     set. Removing: the authority re-keys (abe/cpabe rekey), updates every other verifier's key,
//     and the next revision is sealed under the new system version, which the removed key (left
//     at the old version) cannot open. Sealed keys on the chain are never re-encrypted (blocks
//     are immutable): updated keys reach the older versions through the key links.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <variant>

#include "abe/cpabe/cpabe.h"
#include "abe/kpabe/kpabe.h"
#include "chain/crypto/aead.h"
#include "chain/package/records.h"

namespace mchain::agent {

// The KP-ABE attribute set a policy record seals its key to: the record's attributes, each of
// which must be a valid ABE attribute ([A-Za-z0-9_.:-], abe/policy/policy.h).
Result<abe::AttributeSet> record_attributes(const PolicyRecord& record);

// K(record.version) sealed to record's attribute set under the authority's KP-ABE public key, and
// bound to the VM and the version (a sealed key copied into another record does not open).
// Only for records of scheme kp_abe_gpsw.
Result<Bytes> seal_data_key(const abe::kp::MasterPublicKey& authority, const PolicyRecord& record,
                            const crypto::AeadKey& key);

// K(record.version) sealed under the record's expression (a CP-ABE policy over the authority's
// universe) with the CP-ABE public key, bound to the VM and the version the same way. Only for
// records of scheme cp_abe_versioned.
Result<Bytes> seal_data_key(const abe::cpabe::PublicKey& authority, const PolicyRecord& record,
                            const crypto::AeadKey& key);

// A verifier's key under either scheme.
using VerifierKey = std::variant<abe::kp::UserKey, abe::cpabe::UserKey>;

// Opens record.sealed_key with a verifier's key; the error says why not (the part of the access
// tree the record's attributes do not meet, a key of the other scheme or another authority, a
// CP key at another system version, no sealed key, tampering).
Result<crypto::AeadKey> open_data_key(const VerifierKey& verifier, const PolicyRecord& record);

// What a verifier can read of one VM.
struct VerifierKeys {
  std::map<std::uint64_t, crypto::AeadKey> keys;  // policy versions it can decrypt
  std::map<std::uint64_t, std::string> denied;    // the others, with the reason
};

// Opens, newest first, every version's sealed key that the verifier's key satisfies, and from each
// one opened follows the key links down (K(N-1) from K(N), …). `policies` and `links` are one VM's
// confirmed records in any order.
VerifierKeys verifier_keys(std::span<const PolicyRecord> policies,
                           std::span<const KeyLinkRecord> links, const VerifierKey& verifier);

}  // namespace mchain::agent
