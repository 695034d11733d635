#include "chain/node/consensus.h"

#include <algorithm>

#include "chain/node/leader.h"
#include "chain/package/records.h"
#include "chain/package/validation_pool.h"

namespace mchain {

namespace {

// A leader whose take-out was not agreed does not propose it again for this many round
// timeouts.
constexpr TimeUs kDisputedRounds = 4;

// A proposal may move a node this many attempts ahead at once; more is not a lagging timer
// but a leader counting far ahead, and would only make the node skip honest leaders.
constexpr std::uint64_t kMaxAttemptJump = 64;

std::optional<MembershipRecord> membership_of(const Package& package) {
  if (package.header().type != PackageType::membership) return std::nullopt;
  auto record = MembershipRecord::decode(package.body());
  if (!record) return std::nullopt;
  return *std::move(record);
}

bool takes_out(MembershipAction action) {
  return action == MembershipAction::suspend_node || action == MembershipAction::remove_node;
}

}  // namespace

std::string_view to_string(ValidationMode mode) {
  return mode == ValidationMode::in_order ? "inorder" : "concurrent";
}

std::string_view to_string(Offence offence) {
  switch (offence) {
    case Offence::malformed_message: return "malformed-message";
    case Offence::forged_signature: return "forged-signature";
    case Offence::forged_mark: return "forged-mark";
    case Offence::bad_block: return "bad-block";
  }
  return "unknown";
}

ConsensusNode::ConsensusNode(ConsensusConfig config, Store& store, Transport& transport)
    : config_(std::move(config)), store_(store), transport_(transport), buffers_(config_.buffers) {
  for (const std::string& node : config_.pool) members_[node] = Member::active;
  // The pool follows from the chain: replay the membership changes of every confirmed block.
  for (const Hash256& hash : store_.confirmed()) {
    if (auto block = store_.semi_finished(hash)) apply_membership(*block, 0);
    ++confirmed_count_;
  }
  pool_.clear();
  for (const auto& [node, state] : members_) {
    if (state == Member::active) pool_.push_back(node);
  }
  last_ = store_.last_confirmed().value_or(Hash256{});
}

void ConsensusNode::log(const std::string& line) const {
  if (on_log) on_log(line);
}

bool ConsensusNode::suspended() const {
  auto it = members_.find(config_.node);
  return it != members_.end() && it->second == Member::suspended;
}

std::optional<std::string> ConsensusNode::leader() const {
  auto elected = elect_leader(last_, attempt_, pool_);
  if (!elected) return std::nullopt;
  return *elected;
}

ValidationResult ConsensusNode::submit(const Package& package, TimeUs now) {
  ValidationResult result = admit(package, now);
  if (result.ok()) send(PackageGossip{package}, now);
  return result;
}

ValidationResult ConsensusNode::admit(const Package& package, TimeUs now) {
  if (buffers_.contains(package.id())) {
    return {Verdict::duplicate, "package is already waiting in a candidate buffer"};
  }
  ValidationResult result =
      validate(package, store_, {true, now, config_.max_skew, config_.signature_cache});
  if (result.ok()) buffers_.add(package, now);
  return result;
}

void ConsensusNode::tick(TimeUs now) {
  if (started_ == 0) started_ = round_started_ = now;
  if (now >= next_status_) {
    report_status(now);
    next_status_ = now + config_.status_period;
  }
  maybe_rejoin(now);
  if (current_ && !marked_) evaluate_current(now);
  check_timeout(now);
  propose(now);
}

void ConsensusNode::receive(const std::string& from, const Bytes& message, TimeUs now) {
  auto decoded = decode_message(message);
  if (!decoded) return misbehaved(from, Offence::malformed_message, decoded.error().message);
  // Catch-up is between two nodes only: never passed on.
  const bool gossip = !std::holds_alternative<SyncRequest>(*decoded) &&
                      !std::holds_alternative<SyncReply>(*decoded);
  relaying_ = gossip && from != config_.node ? &message : nullptr;
  relaying_from_ = from;
  handle(from, *decoded, now);
  relaying_ = nullptr;
}

void ConsensusNode::pass_on() {
  if (relaying_ == nullptr) return;
  transport_.relay(config_.node, relaying_from_, *relaying_);
  relaying_ = nullptr;
}

void ConsensusNode::misbehaved(const std::string& peer, Offence offence,
                               const std::string& detail) {
  if (peer == config_.node) return;
  ++counters_.offences;
  auto state = members_.find(peer);
  if (state == members_.end() || state->second == Member::removed) return;
  if (!misbehaving_.insert(peer).second) return;  // alarmed once; the removal is pending
  log(peer + " sent " + std::string(to_string(offence)) + " (" + detail +
      "), which no honest node relays: proposing its removal");
  if (on_misbehaviour) on_misbehaviour(Misbehaviour{peer, config_.node, offence, detail});
}

void ConsensusNode::send(Message message, TimeUs now) {
  // Out first, then handled here, so that peers see a proposal before the marks it causes.
  transport_.broadcast(config_.node, encode_message(message));
  if (std::holds_alternative<Proposal>(message) || std::holds_alternative<Mark>(message) ||
      std::holds_alternative<Accusation>(message)) {
    // Our own message: nothing the handler approves of in it is a received one to pass on.
    const Bytes* received = std::exchange(relaying_, nullptr);
    handle(config_.node, message, now);
    relaying_ = received;
  }
}

void ConsensusNode::send_to(const std::string& to, const Message& message) {
  transport_.send_to(config_.node, to, encode_message(message));
}

void ConsensusNode::handle(const std::string& from, Message& message, TimeUs now) {
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, PackageGossip>) {
          // First sight: buffer and pass on; invalid or known packages stop here. Not an
          // offence: a package valid at the sender may no longer be here (a newer policy).
          if (admit(m.package, now).ok()) pass_on();
        } else if constexpr (std::is_same_v<T, Proposal>) {
          on_proposal(from, m, now);
        } else if constexpr (std::is_same_v<T, Mark>) {
          on_mark(from, m, now);
        } else if constexpr (std::is_same_v<T, Accusation>) {
          on_accusation_message(from, m, now);
        } else if constexpr (std::is_same_v<T, StatusReport>) {
          on_status(from, m, now);
        } else if constexpr (std::is_same_v<T, MinedBlock>) {
          on_mined_block(from, m.block, now);
        } else if constexpr (std::is_same_v<T, SyncRequest>) {
          // Answered to the authenticated sender, whatever the request claims.
          if (from != config_.node) on_sync_request(SyncRequest{from, m.confirmed, m.mature});
        } else {
          on_sync_reply(from, m, now);
        }
      },
      message);
}

void ConsensusNode::peer_linked(const std::string& peer, TimeUs now) {
  report_status(now);
  for (const Package& p : buffers_.waiting()) send_to(peer, PackageGossip{p});
  // The round in progress, so that the peer can mark it rather than wait for a timeout.
  if (current_) {
    send_to(peer, Proposal{*current_});
    if (auto marks = pending_marks_.find(current_hash_); marks != pending_marks_.end()) {
      for (const auto& [node, mark] : marks->second) send_to(peer, Mark{current_hash_, mark});
    }
  }
}

void ConsensusNode::heard(const std::string& node, TimeUs now) {
  TimeUs& at = last_heard_[node];
  at = std::max(at, now);
}

bool ConsensusNode::silent(const std::string& node, TimeUs now, TimeUs threshold) const {
  if (node == config_.node) return false;
  auto it = last_heard_.find(node);
  const TimeUs since = it != last_heard_.end() ? it->second : started_;
  return now > since && now - since >= threshold;
}

// ---- proposing

std::vector<Package> ConsensusNode::membership_changes(TimeUs now) {
  std::vector<Package> out;
  std::size_t leaving = 0;
  auto change = [&](MembershipAction action, const std::string& subject) {
    // Never take so many out that the rest is no majority of the pool (see the header).
    if ((pool_.size() - leaving - 1) * 2 <= pool_.size()) return;
    auto key = store_.node_key(subject, now);
    if (!key) return;
    auto package = make_membership_package({Uuid{}, "", config_.node, now},
                                           MembershipRecord{action, subject, *key},
                                           PackageSigners{nullptr, nullptr, config_.key});
    if (!package) return;
    out.push_back(*std::move(package));
    ++leaving;
    log(std::string(action == MembershipAction::remove_node ? "proposing to remove "
                                                            : "proposing to suspend ") +
        subject);
  };
  for (const std::string& node : pool_) {
    if (node == config_.node) continue;
    if (auto d = disputed_.find(node); d != disputed_.end()) {
      if (now < d->second) continue;
      disputed_.erase(d);
    }
    if (accused_.contains(node) || misbehaving_.contains(node)) {
      change(MembershipAction::remove_node, node);
    } else if (silent(node, now, config_.silence)) {
      change(MembershipAction::suspend_node, node);
    }
  }
  return out;
}

void ConsensusNode::propose(TimeUs now) {
  if (current_ || proposed_) return;  // this round's proposal is on its way
  if (leader() != config_.node) return;
  std::vector<Package> changes = membership_changes(now);
  // Policy blocks first: a revised policy should take effect as soon as possible, and a
  // membership change unblocks every later round.
  for (BlockType type : {BlockType::policy, BlockType::data}) {
    auto due = buffers_.take_due(type, now);
    if (type == BlockType::data) changes.clear();
    if (!due && changes.empty()) continue;
    // Packages that turned invalid while they waited (a newer policy was confirmed, they
    // aged past the skew) would get an honest leader accused: leave them out.
    std::vector<Package> packages;
    std::vector<Package> taken;
    Seen seen;
    for (Package& p : changes) {
      if (check_package(p, type, now, seen).ok()) packages.push_back(std::move(p));
    }
    for (Package& p : due.value_or(std::vector<Package>{})) {
      ValidationResult r = check_package(p, type, now, seen);
      if (r.ok()) {
        packages.push_back(p);
        taken.push_back(std::move(p));
      } else if (on_dropped) {
        on_dropped(p, r);
      }
    }
    if (packages.empty()) continue;
    taken_ = std::move(taken);
    Candidate candidate{type, config_.node, attempt_, now, last_, std::move(packages)};
    if (tamper_candidate) tamper_candidate(candidate);
    // Hashed once, and neither copied nor hashed again when this node takes it up itself.
    const Hash256 hash = candidate.hash();
    auto signature = config_.key->sign(candidate_signing_message(hash));
    if (!signature) {
      buffers_.put_back(std::move(taken_), now);
      taken_.clear();
      return;
    }
    proposed_ = true;
    ++counters_.proposals;
    Message proposal =
        Proposal{SemiFinishedBlock{std::move(candidate), *std::move(signature), {}}, hash};
    if (on_proposed) on_proposed(std::get<Proposal>(proposal).block);
    transport_.broadcast(config_.node, encode_message(std::get<Proposal>(proposal)));
    handle(config_.node, proposal, now);
    return;
  }
}

// ---- judging a proposal

ValidationResult ConsensusNode::candidate_rules(const Package& package, BlockType type,
                                                Seen& seen) const {
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
  if (auto m = membership_of(package); m && m->action != MembershipAction::register_user) {
    if (!seen.subjects.insert(m->subject).second) {
      return {Verdict::duplicate, "two membership changes for node '" + m->subject + "'"};
    }
    auto state = members_.find(m->subject);
    const bool active = state != members_.end() && state->second == Member::active;
    if (takes_out(m->action) && !active) {
      return {Verdict::unknown_node, "node '" + m->subject + "' is not in the valid pool"};
    }
    if (m->action == MembershipAction::rejoin_node &&
        (m->subject != package.header().node || state == members_.end() ||
         state->second != Member::suspended)) {
      return {Verdict::malformed, "only a suspended node may ask to rejoin, for itself"};
    }
  }
  return {};
}

ValidationResult ConsensusNode::check_package(const Package& package, BlockType type,
                                              TimeUs candidate_time, Seen& seen) const {
  if (ValidationResult r = candidate_rules(package, type, seen); !r.ok()) return r;
  // Against the view as of the previous semi-finished block, and fresh relative to the
  // candidate's time.
  return validate(package, store_,
                  {true, candidate_time, config_.max_skew, config_.signature_cache});
}

std::optional<std::pair<std::uint32_t, ValidationResult>> ConsensusNode::invalid_package(
    const SemiFinishedBlock& proposal) const {
  const Candidate& c = proposal.candidate;
  std::optional<std::pair<std::uint32_t, ValidationResult>> invalid;
  auto first_invalid = [&](std::uint32_t i, ValidationResult r) {
    if (!invalid || i < invalid->first) invalid = std::pair(i, std::move(r));
  };
  Seen seen;
  if (config_.validation_pool != nullptr && c.packages.size() > 1) {
    // The per-candidate rules in order, then the package checks (signatures above all) on
    // every core; the first failure by position is the one accused, as in order.
    for (std::uint32_t i = 0; i < c.packages.size(); ++i) {
      if (ValidationResult r = candidate_rules(c.packages[i], c.type, seen); !r.ok()) {
        first_invalid(i, std::move(r));
      }
    }
    auto results = config_.validation_pool->validate_all(
        c.packages, store_, {true, c.timestamp, config_.max_skew, config_.signature_cache});
    for (std::uint32_t i = 0; i < results.size(); ++i) {
      if (!results[i].ok()) first_invalid(i, std::move(results[i]));
    }
  } else {
    for (std::uint32_t i = 0; i < c.packages.size() && !invalid; ++i) {
      ValidationResult r = check_package(c.packages[i], c.type, c.timestamp, seen);
      if (!r.ok()) first_invalid(i, std::move(r));
    }
  }
  if (invalid) return invalid;
  // Taking nodes out needs the rest to be a majority of the pool: two sides of a partition
  // cannot both do it.
  std::size_t leaving = 0;
  for (std::uint32_t i = 0; i < c.packages.size(); ++i) {
    auto m = membership_of(c.packages[i]);
    if (!m || !takes_out(m->action)) continue;
    if ((pool_.size() - ++leaving) * 2 <= pool_.size()) {
      return std::pair(i, ValidationResult{Verdict::malformed,
                                           "the nodes left in the pool would be no majority"});
    }
  }
  return std::nullopt;
}

bool ConsensusNode::agrees(const SemiFinishedBlock& proposal, TimeUs now) const {
  // Not provable either way, so no accusation: a node that does not agree just does not mark
  // (yet); it asks again on every tick and with every new accusation.
  for (const Package& p : proposal.candidate.packages) {
    auto m = membership_of(p);
    if (!m) continue;
    if (m->action == MembershipAction::suspend_node &&
        !silent(m->subject, now, config_.silence / 2)) {
      return false;
    }
    // A node may leave of its own accord; any other removal needs a verified accusation, or
    // bad data this node had from the subject itself.
    if (m->action == MembershipAction::remove_node && !accused_.contains(m->subject) &&
        !misbehaving_.contains(m->subject) && p.header().node != m->subject) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> ConsensusNode::required_marks(const Candidate& candidate) const {
  std::set<std::string> leaving;
  for (const Package& p : candidate.packages) {
    if (auto m = membership_of(p); m && takes_out(m->action)) leaving.insert(m->subject);
  }
  std::vector<std::string> out;
  for (const std::string& node : pool_) {
    if (!leaving.contains(node)) out.push_back(node);
  }
  return out;
}

bool ConsensusNode::turn_to_validate(const Hash256& hash) const {
  if (config_.mode == ValidationMode::concurrent) return true;
  // In order: the leader first, then the pool in order after it, wrapping around.
  const std::vector<std::string> order = required_marks(current_->candidate);
  auto leader = std::find(order.begin(), order.end(), current_->candidate.leader);
  auto self = std::find(order.begin(), order.end(), config_.node);
  if (leader == order.end() || self == order.end()) return true;
  auto marks = pending_marks_.find(hash);
  for (auto it = leader; it != self;) {
    if (marks == pending_marks_.end() || !marks->second.contains(*it)) return false;
    if (++it == order.end()) it = order.begin();
  }
  return true;
}

// ---- the round

void ConsensusNode::on_proposal(const std::string& from, Proposal& proposal, TimeUs now) {
  const Candidate& c = proposal.block.candidate;
  if (!proposal.block.marks.empty()) {
    return misbehaved(from, Offence::malformed_message, "a proposal that carries marks");
  }
  if (c.previous != last_) {
    // A round on a block this node does not have: it lags behind; catch up from the leader.
    if (!store_.is_confirmed(c.previous)) request_sync(c.leader, now);
    return;
  }
  if (c.round < attempt_ || c.round > attempt_ + kMaxAttemptJump) return;
  auto elected = elect_leader(last_, c.round, pool_);
  if (!elected || *elected != c.leader) return;  // not that round's leader: proves nothing
  if (accused_.contains(c.leader)) return;       // proved wrong already: not followed again
  const TimeUs skew = c.timestamp > now ? c.timestamp - now : now - c.timestamp;
  if (skew > config_.max_skew) return;
  auto key = store_.node_key(c.leader, c.timestamp);
  if (!key) return;
  const Hash256 hash = proposal.candidate_hash ? *proposal.candidate_hash : c.hash();
  if (!key->verify(candidate_signing_message(hash), proposal.block.leader_signature)) {
    return misbehaved(from, Offence::forged_signature, "a proposal in the name of " + c.leader);
  }
  pass_on();  // before the costly checks: the others validate it in parallel
  heard(c.leader, now);
  if (c.round > attempt_) {
    // Others timed out before this node did: follow them.
    attempt_ = c.round;
    reset_round(now);
  }
  if (current_) return;  // one proposal per round; a second one is not marked
  current_ = std::move(proposal.block);
  current_hash_ = hash;
  // This node's own proposal was checked package by package when it was built, against the
  // same view: checking it again would only repeat every signature verification.
  checked_ = proposed_ && current_->candidate.leader == config_.node;  // c moved into current_
  marked_ = false;
  // The round's timeout counts from the proposal: no node that marked it gives up on it
  // before round_timeout has passed since it saw it (see confirm_current).
  work_since_ = now;
  evaluate_current(now);
}

void ConsensusNode::evaluate_current(TimeUs now) {
  if (!current_ || marked_ || !turn_to_validate(current_hash_)) return;
  if (!std::binary_search(pool_.begin(), pool_.end(), config_.node)) return;  // suspended: watch
  if (!checked_) {
    if (auto bad = invalid_package(*current_)) {
      const std::string leader = current_->candidate.leader;
      auto accusation =
          Accusation::make(config_.node, *current_, bad->first, bad->second.verdict, *config_.key);
      log("accusing " + leader + ": package " + std::to_string(bad->first) + " is " +
          std::string(to_string(bad->second.verdict)) + ": " + bad->second.detail);
      if (accusation) send(*std::move(accusation), now);
      return;
    }
    checked_ = true;
  }
  if (!agrees(*current_, now)) return;
  const std::vector<std::string> required = required_marks(current_->candidate);
  if (!std::binary_search(required.begin(), required.end(), config_.node)) {
    return;  // this block takes this node out of the pool: it does not mark it
  }
  auto signature = config_.key->sign(valid_mark_signing_message(current_hash_));
  if (!signature) return;
  marked_ = true;
  ++counters_.marks;
  send(Mark{current_hash_, ValidMark{config_.node, *std::move(signature)}}, now);
}

void ConsensusNode::on_mark(const std::string& from, const Mark& mark, TimeUs now) {
  if (!members_.contains(mark.mark.node)) return;
  auto& marks = pending_marks_[mark.candidate];
  if (marks.contains(mark.mark.node)) return;  // the first mark that verifies counts
  // Checked on arrival, so that a forged mark cannot take the place of the real one.
  auto key = store_.node_key(mark.mark.node, now);
  if (!key || !key->verify(valid_mark_signing_message(mark.candidate), mark.mark.signature)) {
    if (marks.empty()) pending_marks_.erase(mark.candidate);
    if (!key) return;  // a node this view does not know (yet): proves nothing
    ++counters_.bad_marks;
    return misbehaved(from, Offence::forged_mark,
                      "a mark in the name of " + mark.mark.node + " that its key does not verify");
  }
  pass_on();
  if (pending_marks_.size() > 4 * pool_.size() + 16) {  // bounded: keep only this round's
    auto keep = pending_marks_.extract(current_hash_);
    pending_marks_.clear();
    if (!keep.empty()) pending_marks_.insert(std::move(keep));
    pending_marks_[mark.candidate][mark.mark.node] = mark.mark;
  } else {
    marks[mark.mark.node] = mark.mark;
  }
  if (current_ && !marked_) evaluate_current(now);  // in order: maybe this node's turn now
  confirm_current(now);
}

void ConsensusNode::confirm_current(TimeUs now) {
  if (!current_) return;
  const Hash256& hash = current_hash_;
  auto marks = pending_marks_.find(hash);
  if (marks == pending_marks_.end()) return;
  // Every required node (marks were checked against their keys on arrival).
  std::vector<ValidMark> valid;
  for (const std::string& node : required_marks(current_->candidate)) {
    auto it = marks->second.find(node);
    if (it == marks->second.end()) return;
    valid.push_back(it->second);
  }
  // Marks that complete only after half the round timeout may come too late: the other nodes
  // may be giving up on this proposal by now (a healed partition delivers old marks) and
  // confirm another block after L. Such a block is not confirmed from marks; if the others did
  // confirm it, catch-up brings it.
  if (now > current_->candidate.timestamp + config_.round_timeout / 2) {
    if (!late_logged_) {
      log("the marks of candidate " + to_hex(hash).substr(0, 16) +
          " completed too late to confirm it here");
      late_logged_ = true;
    }
    return;
  }
  SemiFinishedBlock block = *std::move(current_);
  block.marks = std::move(valid);  // pool order is sorted: the marks are in canonical order
  if (auto adopted = adopt(block, now); !adopted) {
    log("could not confirm a block: " + adopted.error().message);  // the round stays open
    block.marks.clear();
    current_ = std::move(block);
  }
}

Status ConsensusNode::adopt(const SemiFinishedBlock& block, TimeUs now) {
  if (auto confirmed = store_.confirm(block); !confirmed) return confirmed;
  reset_round(now);  // returns what this node proposed, before the confirmed ones go
  std::vector<Hash256> ids;
  for (const Package& p : block.candidate.packages) ids.push_back(p.id());
  buffers_.remove(ids);
  // The store hashed the block to file it: read that back rather than encode 600 KB again.
  const auto filed = store_.last_confirmed();  // value_or would hash the block regardless
  last_ = filed ? *filed : block.hash();
  attempt_ = 0;
  ++confirmed_count_;
  ++counters_.confirmed;
  apply_membership(block, now);
  if (on_confirmed) on_confirmed(block);
  retry_orphans();
  return {};
}

void ConsensusNode::apply_membership(const SemiFinishedBlock& block, TimeUs now) {
  if (block.candidate.type != BlockType::policy) return;
  bool changed = false;
  for (const Package& p : block.candidate.packages) {
    auto m = membership_of(p);
    if (!m || m->action == MembershipAction::register_user) continue;
    Member state = Member::active;
    if (m->action == MembershipAction::suspend_node) state = Member::suspended;
    if (m->action == MembershipAction::remove_node) state = Member::removed;
    members_[m->subject] = state;
    if (state != Member::active) accused_.erase(m->subject);
    if (state == Member::removed) misbehaving_.erase(m->subject);
    // A node that (re)joins was heard from: its own package asked for it.
    if (state == Member::active && now != 0) last_heard_[m->subject] = now;
    changed = true;
    log(std::string(to_string(m->action)) + " " + m->subject);
  }
  if (!changed) return;
  pool_.clear();
  for (const auto& [node, state] : members_) {
    if (state == Member::active) pool_.push_back(node);
  }
  if (on_pool_changed) on_pool_changed();
}

void ConsensusNode::on_accusation_message(const std::string& from, const Accusation& accusation,
                                          TimeUs now) {
  const Candidate& c = accusation.proposal.candidate;
  // The evidence is judged against the view it was made on: this node's L.
  if (c.previous != last_ || accused_.contains(c.leader)) return;
  if (!std::binary_search(pool_.begin(), pool_.end(), accusation.accuser)) return;
  auto elected = elect_leader(last_, c.round, pool_);
  if (!elected || *elected != c.leader) return;
  auto accuser_key = store_.node_key(accusation.accuser, c.timestamp);
  if (!accuser_key) return;
  if (!accuser_key->verify(accusation.signing_message(), accusation.signature)) {
    return misbehaved(from, Offence::forged_signature,
                      "an accusation in the name of " + accusation.accuser);
  }
  auto leader_key = store_.node_key(c.leader, c.timestamp);
  if (!leader_key || !leader_key->verify(candidate_signing_message(c.hash()),
                                         accusation.proposal.leader_signature)) {
    return;
  }
  // Re-check the evidence ourselves: a false accusation does not remove anyone.
  auto bad = invalid_package(accusation.proposal);
  if (!bad || bad->first != accusation.package_index) return;
  pass_on();
  accused_.insert(c.leader);
  ++counters_.accusations;
  log("leader " + c.leader + " accused by " + accusation.accuser + ": package " +
      std::to_string(accusation.package_index) + " is " +
      std::string(to_string(accusation.verdict)));
  if (on_accusation) on_accusation(accusation);
  if (c.round == attempt_) next_attempt(now, "the leader was accused");
  if (current_ && !marked_) evaluate_current(now);  // a removal may be acceptable now
}

void ConsensusNode::reset_round(TimeUs now) {
  if (proposed_) buffers_.put_back(std::move(taken_), 0);
  taken_.clear();
  current_.reset();
  checked_ = marked_ = proposed_ = late_logged_ = false;
  pending_marks_.clear();
  round_started_ = now;
  work_since_.reset();
}

void ConsensusNode::next_attempt(TimeUs now, const std::string& why) {
  if (proposed_ && current_ && current_->candidate.leader == config_.node) {
    // Our take-outs were not agreed in time: leave them to other leaders for a while.
    for (const Package& p : current_->candidate.packages) {
      if (auto m = membership_of(p); m && takes_out(m->action)) {
        disputed_[m->subject] = now + kDisputedRounds * config_.round_timeout;
      }
    }
  }
  ++attempt_;
  // Leaders proved wrong are skipped at once: every honest node knows not to wait for them.
  for (std::size_t i = 0; i < 4 * pool_.size() && leader() && accused_.contains(*leader()); ++i) {
    ++attempt_;
  }
  reset_round(now);
  log(why + ": attempt " + std::to_string(attempt_) + ", leader " + leader().value_or("none"));
}

void ConsensusNode::check_timeout(TimeUs now) {
  const auto deadline = buffers_.next_deadline();
  const bool work = current_ || proposed_ || (deadline && *deadline <= now);
  if (!work) {
    work_since_.reset();
    return;
  }
  if (!work_since_) work_since_ = now;
  // Each further attempt waits longer, so that nodes whose timers drifted apart meet again;
  // but a leader that has been silent for long gets no more than one round timeout.
  const auto elected = leader();
  const bool silent_leader = elected && silent(*elected, now, config_.silence);
  const TimeUs limit = silent_leader ? config_.round_timeout
                                     : config_.round_timeout * std::min<TimeUs>(attempt_ + 1, 4);
  if (now - *work_since_ < limit) return;
  ++counters_.timeouts;
  next_attempt(now, "round timed out");
}

}  // namespace mchain
