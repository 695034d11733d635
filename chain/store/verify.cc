#include "chain/store/verify.h"

#include <map>
#include <set>

#include "chain/package/records.h"

namespace mchain {

namespace {

std::string short_hex(const Hash256& hash) { return to_hex(hash).substr(0, 16); }

// The key a role's signature must verify with, or why there is none. Keys are looked up at
// the package's time in the store's view, which already holds the package's own effects:
// where those change the very key that signed it, the key comes from before them.
Result<std::optional<crypto::PublicKey>> key_for(const Package& package, Role role,
                                                 const MembershipRecord* member,
                                                 const BindingRecord* binding, const View& view) {
  const PackageHeader& h = package.header();
  const TimeUs t = h.timestamp;
  if (!role_signs(role, h.type, member ? std::optional(member->action) : std::nullopt)) {
    return std::nullopt;
  }
  switch (role) {
    case Role::node: {
      // A node's own add/rejoin/remove replaces its key from t on; it signed with the old one.
      const bool own_key_change = member && member->subject == h.node &&
                                  member->action != MembershipAction::register_user &&
                                  member->action != MembershipAction::suspend_node && t > 0;
      auto key = view.node_key(h.node, own_key_change ? t - 1 : t);
      if (!key) return fail("node '" + h.node + "' is not a member at " + format_time(t));
      return key;
    }
    case Role::user: {
      if (member) return std::optional(member->key);  // a registration's proof of possession
      auto key = view.user_key(h.user, t);
      if (!key) return fail("user '" + h.user + "' is not registered at " + format_time(t));
      return key;
    }
    case Role::vm: {
      // Validation requires a binding's key to be the VM's registered one, or registers it
      // (first sight), so the body's key is the one in force; an `undefined` binding has
      // already removed it from the view at t.
      if (binding) return std::optional(binding->vm_key);
      auto vm = view.vm_at(h.vm, t);
      if (!vm) return fail("VM " + h.vm.to_string() + " is not defined at " + format_time(t));
      return std::optional(vm->key);
    }
  }
  return fail("unknown role");
}

Status verify_package_signatures(const Package& package, const View& view) {
  const PackageHeader& h = package.header();
  std::optional<MembershipRecord> member;
  std::optional<BindingRecord> binding;
  if (h.type == PackageType::membership) {
    auto decoded = MembershipRecord::decode(package.body());
    if (!decoded) return std::unexpected(decoded.error());
    member = *std::move(decoded);
  } else if (h.type == PackageType::binding) {
    auto decoded = BindingRecord::decode(package.body());
    if (!decoded) return std::unexpected(decoded.error());
    binding = *std::move(decoded);
  }
  for (Role role : {Role::vm, Role::user, Role::node}) {
    auto key =
        key_for(package, role, member ? &*member : nullptr, binding ? &*binding : nullptr, view);
    if (!key) return std::unexpected(key.error());
    const auto& signature = package.signature(role);
    const std::string name(to_string(role));
    if (signature.has_value() != key->has_value()) {
      return fail(std::string(signature ? "unexpected " : "missing ") + name + " signature");
    }
    if (!signature) continue;
    if (!(*key)->verify(signing_message(role, package.id()), *signature)) {
      return fail(name + " signature does not verify with the " +
                  std::string(crypto::to_string((*key)->alg())) + " key in force at " +
                  format_time(h.timestamp));
    }
  }
  return {};
}

}  // namespace

std::string BrokenLink::describe() const {
  if (!height) return "semi-finished block " + to_hex(hash) + " (not on the main chain): " + reason;
  return "height " + std::to_string(*height) + " block " + to_hex(hash) + ": " + reason;
}

Status verify_semi_finished_signatures(const SemiFinishedBlock& block, const View& view) {
  const Candidate& c = block.candidate;
  const Hash256 candidate_hash = c.hash();
  auto leader = view.node_key(c.leader, c.timestamp);
  if (!leader) {
    return fail("leader '" + c.leader + "' is not a member at " + format_time(c.timestamp));
  }
  if (!leader->verify(candidate_signing_message(candidate_hash), block.leader_signature)) {
    return fail("leader signature of '" + c.leader + "' does not verify");
  }
  if (block.marks.empty()) return fail("no valid marks");
  std::set<std::string> marked;
  for (const ValidMark& mark : block.marks) {
    if (!marked.insert(mark.node).second) return fail("two valid marks by '" + mark.node + "'");
    auto key = view.node_key(mark.node, c.timestamp);
    if (!key) {
      return fail("valid mark by '" + mark.node + "', not a member at " + format_time(c.timestamp));
    }
    if (!key->verify(valid_mark_signing_message(candidate_hash), mark.signature)) {
      return fail("valid mark of '" + mark.node + "' does not verify");
    }
  }
  for (std::size_t i = 0; i < c.packages.size(); ++i) {
    const Package& p = c.packages[i];
    if (auto ok = verify_package_signatures(p, view); !ok) {
      return fail("package " + std::to_string(i) + " (" + std::string(to_string(p.header().type)) +
                  " " + short_hex(p.id()) + "): " + ok.error().message);
    }
  }
  return {};
}

Result<ChainReport> verify_chain(const Store& store) {
  ChainReport report;
  report.tip = store.tip();

  // Layer 1, in confirmation order: each block decodes, is stored under its own hash, names
  // the one confirmed before it, and carries valid signatures. Problems are kept by block so
  // that the main-chain walk below reports the lowest broken height first.
  std::map<Hash256, std::string> problems;
  std::set<Hash256> confirmed;
  const std::vector<Hash256> order = store.confirmed();
  Hash256 previous{};
  for (const Hash256& hash : order) {
    confirmed.insert(hash);
    ++report.semi_finished_checked;
    auto semi = store.semi_finished(hash);
    if (!semi) {
      problems.emplace(hash, "semi-finished block does not decode: " + semi.error().message);
    } else if (semi->hash() != hash) {
      problems.emplace(hash, "semi-finished block " + short_hex(hash) + " hashes to " +
                                 short_hex(semi->hash()) + " (altered after confirmation)");
    } else if (semi->candidate.previous != previous) {
      problems.emplace(hash, "semi-finished block names " + short_hex(semi->candidate.previous) +
                                 " as previous, but " + short_hex(previous) +
                                 " was confirmed before it");
    } else if (auto signed_ok = verify_semi_finished_signatures(*semi, store); !signed_ok) {
      problems.emplace(hash, signed_ok.error().message);
    } else {
      report.packages_checked += semi->candidate.packages.size();
    }
    previous = hash;
  }

  // Layer 2, from height 0 up.
  auto broken = [&](std::uint64_t height, const Hash256& hash, std::string reason) {
    report.first_broken = BrokenLink{height, hash, std::move(reason)};
    return report;
  };
  const std::uint64_t top = report.tip ? report.tip->height : 0;
  Hash256 parent{};
  Work work;
  std::set<Hash256> mined;
  for (std::uint64_t height = 0;; ++height) {
    auto hash = store.main_chain_at(height);
    if (!hash) {
      if (report.tip && height <= top) {
        return broken(height, Hash256{}, "no main-chain block at this height, below the tip");
      }
      break;
    }
    if (!report.tip)
      return broken(height, *hash, "main-chain block, but the store has no readable tip");
    if (height > top) return broken(height, *hash, "main-chain block above the tip");
    auto block = store.block(*hash);
    if (!block) return broken(height, *hash, "does not decode: " + block.error().message);
    const BlockHeader& h = block->header;
    if (block->hash() != *hash) {
      return broken(height, *hash,
                    "header hashes to " + short_hex(block->hash()) +
                        ", not the hash it is stored under (header altered)");
    }
    if (h.height != height) {
      return broken(height, *hash, "header says height " + std::to_string(h.height));
    }
    if (h.previous != parent) {
      return broken(height, *hash,
                    "previous is " + short_hex(h.previous) + ", not the block below (" +
                        short_hex(parent) + ")");
    }
    if (auto structure = check_block_structure(*block); !structure) {
      return broken(height, *hash, structure.error().message);
    }
    if (!confirmed.contains(h.semi_finished)) {
      return broken(height, *hash,
                    "its semi-finished block " + short_hex(h.semi_finished) + " is not confirmed");
    }
    if (auto problem = problems.find(h.semi_finished); problem != problems.end()) {
      return broken(height, *hash, problem->second);
    }
    if (!mined.insert(h.semi_finished).second) {
      return broken(height, *hash,
                    "semi-finished block " + short_hex(h.semi_finished) + " is mined twice");
    }
    work += Work::of_block(h.diff);
    parent = *hash;
    ++report.blocks_checked;
  }
  if (report.tip) {
    if (report.tip->hash != parent) {
      return broken(top, report.tip->hash, "the tip is not the top of the main chain");
    }
    if (report.tip->work != work) {
      return broken(top, report.tip->hash,
                    "stored cumulative work " + to_hex(report.tip->work.big_endian()) +
                        " differs from the sum over the chain, " + to_hex(work.big_endian()));
    }
  }

  // Confirmed blocks still waiting to be mined.
  for (const Hash256& hash : order) {
    if (mined.contains(hash)) continue;
    if (auto problem = problems.find(hash); problem != problems.end()) {
      report.first_broken = BrokenLink{std::nullopt, hash, problem->second};
      break;
    }
  }
  return report;
}

}  // namespace mchain
