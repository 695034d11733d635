#include "agent/vm_policy.h"

namespace mchain::agent {

PolicyRecord default_policy(const Uuid& vm, const std::string& owner, std::uint64_t version) {
  return PolicyRecord{vm,
                      version,
                      AbeScheme::kp_abe_gpsw,
                      {"owner:" + owner, "vm:" + vm.to_string()},
                      "owner:" + owner};
}

std::vector<Package> vm_packages_of_type(const Store& store, const Uuid& vm, PackageType type) {
  std::vector<Package> out;
  // A block usually holds several of the VM's packages: each is read from the store once.
  std::map<Hash256, std::optional<SemiFinishedBlock>> blocks;
  for (const PackageLocation& at : store.vm_packages(vm, 0, UINT64_MAX)) {
    auto [it, fresh] = blocks.try_emplace(at.semi_finished);
    if (fresh) {
      if (auto semi = store.semi_finished(at.semi_finished)) it->second = *std::move(semi);
    }
    if (!it->second || at.index >= it->second->candidate.packages.size()) continue;
    const Package& p = it->second->candidate.packages[at.index];
    if (p.header().type == type) out.push_back(p);
  }
  return out;
}

Result<PolicyRecord> policy_record(const Store& store, const Uuid& vm, std::uint64_t version) {
  for (const Package& p : vm_packages_of_type(store, vm, PackageType::policy)) {
    if (p.header().policy.version != version) continue;
    return PolicyRecord::decode(p.body());
  }
  return fail("VM " + vm.to_string() + " has no policy v" + std::to_string(version) +
              " on the chain");
}

Result<crypto::AeadKey> find_data_key(const Store& store, const Keystore& keys, const Uuid& vm,
                                      std::uint64_t version) {
  if (auto held = keys.data_key(vm, version)) return held;
  // Links by their newer version: to -> the link that wraps K(to - 1).
  std::map<std::uint64_t, KeyLinkRecord> links;
  for (const Package& p : vm_packages_of_type(store, vm, PackageType::key_link)) {
    auto link = KeyLinkRecord::decode(p.body());
    if (link && link->from_version + 1 == link->to_version) links.emplace(link->to_version, *link);
  }
  // The nearest newer version this host holds a key for, then down the links.
  for (std::uint64_t top = version + 1; links.contains(top); ++top) {
    auto key = keys.data_key(vm, top);
    if (!key) continue;
    for (std::uint64_t v = top; v > version; --v) {
      auto older = unwrap_key_link(links.at(v), *key);
      if (!older) {
        return fail("the key link v" + std::to_string(v - 1) + " -> v" + std::to_string(v) +
                    " of VM " + vm.to_string() + " does not open: " + older.error().message);
      }
      key = *older;
    }
    return key;
  }
  return fail("this host holds no data key that reaches policy v" + std::to_string(version) +
              " of VM " + vm.to_string());
}

}  // namespace mchain::agent
