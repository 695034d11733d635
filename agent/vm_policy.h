// A VM's access policy on the chain and the data keys that go with it (SPEC §8, paper §IV.D).
//
// Each policy version N has its own random data key K_uv(N), which encrypts the VM's reports
// while N is in force. Revising the policy to N+1 puts a key-link package on the chain that
// holds K(N) wrapped under K(N+1), so whoever holds the newest key walks back through the
// whole history. Until attribute-based encryption seals K_uv for verifiers (the access-control
// issue), the keys live in the keystore of the host that runs the VM.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/keystore.h"
#include "chain/package/records.h"
#include "chain/store/store.h"

namespace mchain::agent {

// The policy a VM gets when it is measured for the first time: readable by its owner, under
// the attributes that name the owner and the VM.
PolicyRecord default_policy(const Uuid& vm, const std::string& owner, std::uint64_t version = 1);

// The policy record of `version`, read from its confirmed policy package.
Result<PolicyRecord> policy_record(const Store& store, const Uuid& vm, std::uint64_t version);

// The confirmed packages of one VM of one type, in time order.
std::vector<Package> vm_packages_of_type(const Store& store, const Uuid& vm, PackageType type);

// K_uv(version): from the keystore, or unwrapped through the key links on the chain from the
// nearest newer version whose key this host holds.
Result<crypto::AeadKey> find_data_key(const Store& store, const Keystore& keys, const Uuid& vm,
                                      std::uint64_t version);

}  // namespace mchain::agent
