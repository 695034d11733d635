// The validation view: what the replicated chain says was true at a moment in time.
//
// Validation asks history, not the present: a VM that migrated at t1 was rightly signed for
// by the old node before t1 and only by the new node from t1 on. The in-memory view below
// serves tests and tools; the LevelDB store implements the same interface from chain data.
#pragma once

#include "chain/crypto/sign.h"
#include "chain/package/package.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mchain {

struct PolicyInForce {
  PolicyRef ref;
  TimeUs since = 0;
};

// What was true of one VM at one moment.
struct VmAt {
  crypto::PublicKey key;
  std::string owner;
  std::optional<std::string> host;  // nullopt: not running anywhere
  std::optional<PolicyInForce> policy;
};

class View {
 public:
  virtual ~View() = default;

  // The key of a node that was a member at t (added and not removed).
  virtual std::optional<crypto::PublicKey> node_key(std::string_view node, TimeUs t) const = 0;
  // The key of a user registered at t.
  virtual std::optional<crypto::PublicKey> user_key(std::string_view user, TimeUs t) const = 0;
  // nullopt if the VM was not defined at t (never seen yet, or already undefined).
  virtual std::optional<VmAt> vm_at(const Uuid& vm, TimeUs t) const = 0;
  // The VM's policy under `version`, whenever it was in force.
  virtual std::optional<PolicyInForce> policy_version(const Uuid& vm,
                                                      std::uint64_t version) const = 0;
  // True if a package with this id is already on the chain or in a candidate buffer.
  virtual bool has_package(const Hash256& id) const = 0;
};

// An in-memory view built from packages (apply) and a genesis membership (add_node).
class MemoryView final : public View {
 public:
  // Genesis: a node that is a member from `since` on without a membership package.
  void add_node(std::string node, crypto::PublicKey key, TimeUs since);
  // Records the effect of a package that validated: bindings, policies, membership, its id.
  Status apply(const Package& package);

  std::optional<crypto::PublicKey> node_key(std::string_view node, TimeUs t) const override;
  std::optional<crypto::PublicKey> user_key(std::string_view user, TimeUs t) const override;
  std::optional<VmAt> vm_at(const Uuid& vm, TimeUs t) const override;
  std::optional<PolicyInForce> policy_version(const Uuid& vm,
                                              std::uint64_t version) const override;
  bool has_package(const Hash256& id) const override;

 private:
  // A value that changes over time: entries sorted by `since`, the last one ≤ t applies.
  template <class T>
  using History = std::vector<std::pair<TimeUs, T>>;

  struct VmHistory {
    History<std::optional<crypto::PublicKey>> key;  // nullopt from `undefined` on
    History<std::string> owner;
    History<std::optional<std::string>> host;
    History<PolicyRef> policy;
  };

  std::map<std::string, History<std::optional<crypto::PublicKey>>, std::less<>> nodes_;
  std::map<std::string, History<std::optional<crypto::PublicKey>>, std::less<>> users_;
  std::map<Uuid, VmHistory> vms_;
  std::set<Hash256> packages_;
};

}  // namespace mchain
