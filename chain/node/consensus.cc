#include "chain/node/consensus.h"

#include <algorithm>

#include "chain/node/leader.h"

namespace mchain {

ConsensusNode::ConsensusNode(ConsensusConfig config, Store& store, Transport& transport)
    : config_(std::move(config)),
      store_(store),
      transport_(transport),
      buffers_(config_.buffers),
      pool_(config_.pool) {
  std::sort(pool_.begin(), pool_.end());
  pool_.erase(std::unique(pool_.begin(), pool_.end()), pool_.end());
  last_ = store_.last_confirmed().value_or(Hash256{});
}

std::optional<std::string> ConsensusNode::leader() const {
  auto elected = elect_leader(last_, attempt_, pool_);
  if (!elected) return std::nullopt;
  return *elected;
}

ValidationResult ConsensusNode::submit(const Package& package, TimeUs now) {
  if (buffers_.contains(package.id())) {
    return {Verdict::duplicate, "package is already waiting in a candidate buffer"};
  }
  ValidationResult result = validate(package, store_, {true, now, config_.max_skew});
  if (!result.ok()) return result;
  buffers_.add(package, now);
  send(PackageGossip{package}, now);
  return result;
}

void ConsensusNode::tick(TimeUs now) {
  if (current_ || proposed_) return;  // this round's proposal is on its way
  if (leader() != config_.node) return;
  // Policy blocks first: a revised policy should take effect as soon as possible.
  for (BlockType type : {BlockType::policy, BlockType::data}) {
    auto due = buffers_.take_due(type, now);
    if (!due) continue;
    // Packages that turned invalid while they waited (a newer policy was confirmed, they
    // aged past the skew) would get an honest leader accused: leave them out.
    std::vector<Package> packages;
    Seen seen;
    for (Package& p : *due) {
      ValidationResult r = check_package(p, type, now, seen);
      if (r.ok()) {
        packages.push_back(std::move(p));
      } else if (on_dropped) {
        on_dropped(p, r);
      }
    }
    if (packages.empty()) continue;
    taken_ = packages;
    Candidate candidate{type, config_.node, attempt_, now, last_, std::move(packages)};
    auto proposal = SemiFinishedBlock::propose(std::move(candidate), *config_.key);
    if (!proposal) {
      buffers_.put_back(std::move(taken_), now);
      return;
    }
    proposed_ = true;
    send(Proposal{*std::move(proposal)}, now);
    return;
  }
}

void ConsensusNode::receive(const std::string& /*from*/, const Bytes& message, TimeUs now) {
  // A message that does not decode proves nothing about anyone: drop it.
  auto decoded = decode_message(message);
  if (decoded) handle(*decoded, now);
}

void ConsensusNode::send(const Message& message, TimeUs now) {
  // Out first, then handled here, so that peers see a proposal before the marks it causes.
  transport_.broadcast(config_.node, encode_message(message));
  if (!std::holds_alternative<PackageGossip>(message)) handle(message, now);
}

void ConsensusNode::handle(const Message& message, TimeUs now) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, PackageGossip>) {
          // First sight: buffer and pass on (flooding); invalid or known packages stop here.
          if (!buffers_.contains(m.package.id())) submit(m.package, now);
        } else if constexpr (std::is_same_v<T, Proposal>) {
          on_proposal(m, now);
        } else if constexpr (std::is_same_v<T, Mark>) {
          on_mark(m);
        } else {
          on_accusation_message(m);
        }
      },
      message);
}

ValidationResult ConsensusNode::check_package(const Package& package, BlockType type,
                                              TimeUs candidate_time, Seen& seen) const {
  if (block_type_for(package.header().type) != type) {
    return {Verdict::malformed, "package of the wrong block type"};
  }
  if (!seen.ids.insert(package.id()).second) {
    return {Verdict::duplicate, "package twice in a candidate"};
  }
  if (package.header().type == PackageType::policy &&
      !seen.policy_vms.insert(package.header().vm).second) {
    return {Verdict::stale_policy, "two policies for one VM in a candidate"};
  }
  // Against the view as of the previous semi-finished block, and fresh relative to the
  // candidate's time.
  return validate(package, store_, {true, candidate_time, config_.max_skew});
}

std::optional<std::pair<std::uint32_t, ValidationResult>> ConsensusNode::check_proposal(
    const SemiFinishedBlock& proposal) const {
  const Candidate& c = proposal.candidate;
  Seen seen;
  for (std::uint32_t i = 0; i < c.packages.size(); ++i) {
    ValidationResult r = check_package(c.packages[i], c.type, c.timestamp, seen);
    if (!r.ok()) return std::pair(i, std::move(r));
  }
  return std::nullopt;
}

void ConsensusNode::on_proposal(const Proposal& proposal, TimeUs now) {
  const Candidate& c = proposal.block.candidate;
  if (c.previous != last_ || c.round != attempt_ || !proposal.block.marks.empty()) return;
  if (leader() != c.leader) return;  // not this round's leader: ignore, it proves nothing
  const TimeUs skew = c.timestamp > now ? c.timestamp - now : now - c.timestamp;
  if (skew > config_.max_skew) return;
  auto key = store_.node_key(c.leader, c.timestamp);
  const Hash256 hash = c.hash();
  if (!key || !key->verify(candidate_signing_message(hash), proposal.block.leader_signature)) {
    return;
  }
  if (current_) return;  // one proposal per round; a second one is not marked
  // This node's own proposal was checked package by package when it was built, against the
  // same view: checking it again would only repeat every signature verification.
  const bool own = proposed_ && c.leader == config_.node;
  if (auto bad = own ? std::nullopt : check_proposal(proposal.block)) {
    auto accusation = Accusation::make(config_.node, proposal.block, bad->first,
                                       bad->second.verdict, *config_.key);
    if (accusation) send(*std::move(accusation), now);
    return;
  }
  current_ = proposal.block;
  current_hash_ = hash;
  auto signature = config_.key->sign(valid_mark_signing_message(hash));
  if (!signature) return;
  send(Mark{hash, ValidMark{config_.node, *std::move(signature)}}, now);
}

void ConsensusNode::on_mark(const Mark& mark) {
  if (!std::binary_search(pool_.begin(), pool_.end(), mark.mark.node)) return;
  if (pending_marks_.size() > 4 * pool_.size() + 16) pending_marks_.clear();  // bounded
  pending_marks_[mark.candidate][mark.mark.node] = mark.mark;
  confirm_current();
}

void ConsensusNode::confirm_current() {
  if (!current_) return;
  const Hash256& hash = current_hash_;
  auto marks = pending_marks_.find(hash);
  if (marks == pending_marks_.end()) return;
  // Every node of the valid pool, each mark checked against the node's key.
  std::vector<ValidMark> valid;
  for (const std::string& node : pool_) {
    auto it = marks->second.find(node);
    if (it == marks->second.end()) return;
    auto key = store_.node_key(node, current_->candidate.timestamp);
    if (!key || !key->verify(valid_mark_signing_message(hash), it->second.signature)) {
      marks->second.erase(it);
      return;
    }
    valid.push_back(it->second);
  }
  SemiFinishedBlock block = *current_;
  block.marks = std::move(valid);      // pool_ is sorted, so the marks are in canonical order
  if (!store_.confirm(block)) return;  // not durable: not confirmed; the round stays open
  std::vector<Hash256> ids;
  for (const Package& p : block.candidate.packages) ids.push_back(p.id());
  buffers_.remove(ids);
  last_ = block.hash();
  attempt_ = 0;
  current_.reset();
  proposed_ = false;
  taken_.clear();
  pending_marks_.clear();
  if (on_confirmed) on_confirmed(block);
}

void ConsensusNode::on_accusation_message(const Accusation& accusation) {
  const Candidate& c = accusation.proposal.candidate;
  if (c.previous != last_ || c.round != attempt_ || leader() != c.leader) return;
  if (!std::binary_search(pool_.begin(), pool_.end(), accusation.accuser)) return;
  auto accuser_key = store_.node_key(accusation.accuser, c.timestamp);
  if (!accuser_key || !accuser_key->verify(accusation.signing_message(), accusation.signature)) {
    return;
  }
  auto leader_key = store_.node_key(c.leader, c.timestamp);
  if (!leader_key || !leader_key->verify(candidate_signing_message(c.hash()),
                                         accusation.proposal.leader_signature)) {
    return;
  }
  // Re-check the evidence ourselves: a false accusation does not remove anyone.
  auto bad = check_proposal(accusation.proposal);
  if (!bad || bad->first != accusation.package_index) return;
  suspect(c.leader);
  if (on_accusation) on_accusation(accusation);
}

void ConsensusNode::suspect(const std::string& leader) {
  std::erase(pool_, leader);
  ++attempt_;
  if (proposed_) buffers_.put_back(std::move(taken_), 0);
  taken_.clear();
  current_.reset();
  proposed_ = false;
  pending_marks_.clear();
}

}  // namespace mchain
