#include "chain/package/effects.h"
#include "chain/package/view.h"

#include <algorithm>

namespace mchain {

namespace {

// Inserts keeping `since` order; a later entry with the same time wins over an earlier one.
template <class T>
void record(std::vector<std::pair<TimeUs, T>>& history, TimeUs since, T value) {
  auto at = std::upper_bound(history.begin(), history.end(), since,
                             [](TimeUs t, const auto& entry) { return t < entry.first; });
  history.emplace(at, since, std::move(value));
}

template <class T>
const std::pair<TimeUs, T>* in_force(const std::vector<std::pair<TimeUs, T>>& history, TimeUs t) {
  auto after = std::upper_bound(history.begin(), history.end(), t,
                                [](TimeUs when, const auto& entry) { return when < entry.first; });
  if (after == history.begin()) return nullptr;
  return &*std::prev(after);
}

template <class Map>
std::optional<crypto::PublicKey> key_at(const Map& keys, std::string_view id, TimeUs t) {
  auto it = keys.find(id);
  if (it == keys.end()) return std::nullopt;
  const auto* entry = in_force(it->second, t);
  if (entry == nullptr) return std::nullopt;
  return entry->second;
}

}  // namespace

void MemoryView::add_node(std::string node, crypto::PublicKey key, TimeUs since) {
  record(nodes_[std::move(node)], since, std::optional(std::move(key)));
}

Status MemoryView::apply(const Package& package) {
  auto effects = package_effects(package);
  if (!effects) return std::unexpected(effects.error());
  for (HistoryEntry& e : *effects) {
    using Kind = HistoryEntry::Kind;
    if (e.kind == Kind::node_key || e.kind == Kind::user_key) {
      record((e.kind == Kind::node_key ? nodes_ : users_)[e.subject], e.since, std::move(e.key));
      continue;
    }
    Uuid id;
    std::copy(e.subject.begin(), e.subject.end(), id.bytes.begin());
    VmHistory& vm = vms_[id];
    switch (e.kind) {
      case Kind::vm_key:
        record(vm.key, e.since, std::move(e.key));
        break;
      case Kind::vm_owner:
        record(vm.owner, e.since, std::move(e.text));
        break;
      case Kind::vm_host:
        record(vm.host, e.since,
               e.text.empty() ? std::optional<std::string>() : std::optional(std::move(e.text)));
        break;
      case Kind::vm_policy:
        record(vm.policy, e.since, e.policy);
        break;
      default:
        break;
    }
  }
  packages_.insert(package.id());
  return {};
}

std::optional<crypto::PublicKey> MemoryView::node_key(std::string_view node, TimeUs t) const {
  return key_at(nodes_, node, t);
}

std::optional<crypto::PublicKey> MemoryView::user_key(std::string_view user, TimeUs t) const {
  return key_at(users_, user, t);
}

std::optional<VmAt> MemoryView::vm_at(const Uuid& vm, TimeUs t) const {
  auto it = vms_.find(vm);
  if (it == vms_.end()) return std::nullopt;
  const VmHistory& history = it->second;
  const auto* key = in_force(history.key, t);
  if (key == nullptr || !key->second) return std::nullopt;
  VmAt at{*key->second, in_force(history.owner, t)->second, std::nullopt, std::nullopt};
  if (const auto* host = in_force(history.host, t)) at.host = host->second;
  if (const auto* policy = in_force(history.policy, t)) {
    at.policy = PolicyInForce{policy->second, policy->first};
  }
  return at;
}

std::optional<PolicyInForce> MemoryView::policy_version(const Uuid& vm,
                                                        std::uint64_t version) const {
  auto it = vms_.find(vm);
  if (it == vms_.end()) return std::nullopt;
  for (const auto& [since, ref] : it->second.policy) {
    if (ref.version == version) return PolicyInForce{ref, since};
  }
  return std::nullopt;
}

bool MemoryView::has_package(const Hash256& id) const { return packages_.contains(id); }

}  // namespace mchain
