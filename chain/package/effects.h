// What a valid package changes in the validation view, as time-stamped history entries.
// MemoryView and the LevelDB store both record exactly these, so they answer alike.
#pragma once

#include "chain/crypto/sign.h"
#include "chain/package/package.h"

#include <optional>
#include <string>
#include <vector>

namespace mchain {

struct HistoryEntry {
  enum class Kind : std::uint8_t {
    node_key = 0,   // subject: node id; key (nullopt: removed from then on)
    user_key = 1,   // subject: user id; key
    vm_key = 2,     // subject: VM; key (nullopt: undefined from then on)
    vm_owner = 3,   // subject: VM; text = owner
    vm_host = 4,    // subject: VM; text = host node, empty = running nowhere
    vm_policy = 5,  // subject: VM; policy
  };

  Kind kind = Kind::node_key;
  std::string subject;  // a node or user id, or the VM's 16 UUID bytes
  TimeUs since = 0;
  std::optional<crypto::PublicKey> key;
  std::string text;
  PolicyRef policy;
};

// The entries a package adds; data and key-link packages add none. Depends only on the
// package (validation has already checked it against the view), so replaying the same
// packages in any order yields the same histories.
Result<std::vector<HistoryEntry>> package_effects(const Package& package);

}  // namespace mchain
