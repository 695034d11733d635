#include "chain/package/effects.h"

#include "chain/package/records.h"

namespace mchain {

namespace {

std::string vm_subject(const Uuid& vm) { return std::string(vm.bytes.begin(), vm.bytes.end()); }

HistoryEntry entry(HistoryEntry::Kind kind, std::string subject, TimeUs since) {
  HistoryEntry e;
  e.kind = kind;
  e.subject = std::move(subject);
  e.since = since;
  return e;
}

}  // namespace

Result<std::vector<HistoryEntry>> package_effects(const Package& package) {
  using Kind = HistoryEntry::Kind;
  const PackageHeader& h = package.header();
  std::vector<HistoryEntry> out;
  switch (h.type) {
    case PackageType::data:
    case PackageType::key_link:
      break;
    case PackageType::policy: {
      auto policy = PolicyRecord::decode(package.body());
      if (!policy) return std::unexpected(policy.error());
      out.push_back(entry(Kind::vm_policy, vm_subject(h.vm), h.timestamp));
      out.back().policy = policy->ref();
      break;
    }
    case PackageType::binding: {
      auto binding = BindingRecord::decode(package.body());
      if (!binding) return std::unexpected(binding.error());
      const std::string vm = vm_subject(h.vm);
      if (binding->event == BindingEvent::undefined) {
        out.push_back(entry(Kind::vm_key, vm, h.timestamp));  // no key: undefined from now on
        out.push_back(entry(Kind::vm_host, vm, h.timestamp));
        break;
      }
      // Validation guarantees the same key and owner for a VM already defined, so restating
      // them is harmless and keeps this function free of state.
      out.push_back(entry(Kind::vm_key, vm, h.timestamp));
      out.back().key = binding->vm_key;
      out.push_back(entry(Kind::vm_owner, vm, h.timestamp));
      out.back().text = binding->user;
      if (binding->event == BindingEvent::started || binding->event == BindingEvent::migrated) {
        out.push_back(entry(Kind::vm_host, vm, h.timestamp));
        out.back().text = binding->node;
      } else if (binding->event == BindingEvent::stopped) {
        out.push_back(entry(Kind::vm_host, vm, h.timestamp));
      }
      break;
    }
    case PackageType::membership: {
      auto member = MembershipRecord::decode(package.body());
      if (!member) return std::unexpected(member.error());
      switch (member->action) {
        case MembershipAction::add_node:
        case MembershipAction::rejoin_node:
          out.push_back(entry(Kind::node_key, member->subject, h.timestamp));
          out.back().key = member->key;
          break;
        case MembershipAction::remove_node:
          out.push_back(entry(Kind::node_key, member->subject, h.timestamp));
          break;
        case MembershipAction::suspend_node:
          // Suspension takes a node out of the consensus pool; its key stays valid for the
          // packages it produced, so the view does not change.
          break;
        case MembershipAction::register_user:
          out.push_back(entry(Kind::user_key, member->subject, h.timestamp));
          out.back().key = member->key;
          break;
      }
      break;
    }
  }
  return out;
}

}  // namespace mchain
