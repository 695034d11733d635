#include "chain/package/records.h"
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
  const PackageHeader& h = package.header();
  switch (h.type) {
    case PackageType::data:
    case PackageType::key_link:
      break;
    case PackageType::policy: {
      auto policy = PolicyRecord::decode(package.body());
      if (!policy) return std::unexpected(policy.error());
      record(vms_[h.vm].policy, h.timestamp, policy->ref());
      break;
    }
    case PackageType::binding: {
      auto binding = BindingRecord::decode(package.body());
      if (!binding) return std::unexpected(binding.error());
      VmHistory& vm = vms_[h.vm];
      const auto* key = in_force(vm.key, h.timestamp);
      if (key == nullptr || !key->second) {
        record(vm.key, h.timestamp, std::optional(binding->vm_key));
        record(vm.owner, h.timestamp, binding->user);
      }
      switch (binding->event) {
        case BindingEvent::defined:
          break;
        case BindingEvent::started:
        case BindingEvent::migrated:
          record(vm.host, h.timestamp, std::optional(binding->node));
          break;
        case BindingEvent::stopped:
          record(vm.host, h.timestamp, std::optional<std::string>());
          break;
        case BindingEvent::undefined:
          record(vm.host, h.timestamp, std::optional<std::string>());
          record(vm.key, h.timestamp, std::optional<crypto::PublicKey>());
          break;
      }
      break;
    }
    case PackageType::membership: {
      auto member = MembershipRecord::decode(package.body());
      if (!member) return std::unexpected(member.error());
      switch (member->action) {
        case MembershipAction::add_node:
        case MembershipAction::rejoin_node:
          record(nodes_[member->subject], h.timestamp, std::optional(member->key));
          break;
        case MembershipAction::remove_node:
          record(nodes_[member->subject], h.timestamp, std::optional<crypto::PublicKey>());
          break;
        case MembershipAction::suspend_node:
          // Suspension takes a node out of the consensus pool; its key stays valid for
          // packages it produced, so the view does not change here.
          break;
        case MembershipAction::register_user:
          record(users_[member->subject], h.timestamp, std::optional(member->key));
          break;
      }
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
