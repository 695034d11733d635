// The key chain across a VM's policy versions, for verifiers (paper §IV.D, SPEC §8).
//
// Every policy version N has a random data key K_uv(N) that encrypts the VM's reports while N is
// in force. The policy record of N carries K(N) sealed for verifiers by its ABE scheme (KP-ABE:
// encrypted to the record's attribute set, so a verifier key whose access tree that set satisfies
// opens it), and each revision N-1 -> N puts a key link on the chain, K(N-1) wrapped under K(N).
// So a verifier who satisfies the newest policy reads the VM's whole history, while one that the
// owner removed at revision N (by changing the attribute set) reads nothing sealed from N on.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>

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

// Opens record.sealed_key with a verifier's key; the error says why not (the part of the access
// tree the record's attributes do not meet, another authority, no sealed key, tampering).
Result<crypto::AeadKey> open_data_key(const abe::kp::UserKey& verifier, const PolicyRecord& record);

// What a verifier can read of one VM.
struct VerifierKeys {
  std::map<std::uint64_t, crypto::AeadKey> keys;  // policy versions it can decrypt
  std::map<std::uint64_t, std::string> denied;    // the others, with the reason
};

// Opens, newest first, every version's sealed key that the verifier's key satisfies, and from each
// one opened follows the key links down (K(N-1) from K(N), …). `policies` and `links` are one VM's
// confirmed records in any order.
VerifierKeys verifier_keys(std::span<const PolicyRecord> policies,
                           std::span<const KeyLinkRecord> links, const abe::kp::UserKey& verifier);

}  // namespace mchain::agent
