// Keeping a node's chain in step with its peers: status reports, catch-up from a locator,
// mature blocks from peers, and the rejoin of a suspended node (see consensus.h).
#include <algorithm>
#include <unordered_map>

#include "chain/node/consensus.h"
#include "chain/node/leader.h"
#include "chain/package/records.h"

namespace mchain {

namespace {

// A catch-up request not answered by then may be asked of another peer.
constexpr TimeUs kSyncPatience = 1'000'000;
// A reply stays well below the network's 16 MiB frame cap.
constexpr std::size_t kSyncReplyBytes = 12u << 20;
// How long a suspended node waits between two rejoin requests.
constexpr TimeUs kRejoinInterval = 5'000'000;
constexpr std::size_t kMaxOrphans = 256;

struct HashKey {
  std::size_t operator()(const Hash256& h) const {
    std::size_t out = 0;
    for (std::size_t i = 0; i < sizeof out; ++i) out = (out << 8) | h[i];
    return out;
  }
};

// Indexes n-1, n-2, n-4, ... 0 (newest first, exponentially spaced).
std::vector<std::uint64_t> locator_positions(std::uint64_t count) {
  std::vector<std::uint64_t> out;
  if (count == 0) return out;
  std::uint64_t step = 1;
  for (std::uint64_t i = count - 1;; i -= step) {
    out.push_back(i);
    if (out.size() > 8) step *= 2;
    if (i < step || out.size() + 1 >= kMaxLocator) break;
  }
  if (out.back() != 0) out.push_back(0);
  return out;
}

}  // namespace

// ---- status

void ConsensusNode::report_status(TimeUs now) {
  StatusReport s;
  s.node = config_.node;
  s.confirmed = confirmed_count_;
  s.last_confirmed = last_;
  s.attempt = attempt_;
  if (auto tip = store_.tip()) {
    s.height = tip->height;
    s.tip = tip->hash;
  }
  s.time = now;
  auto signature = config_.key->sign(s.signing_message());
  if (!signature) return;
  s.signature = *std::move(signature);
  transport_.broadcast(config_.node, encode_message(s));
}

void ConsensusNode::on_status(const std::string& from, const StatusReport& status, TimeUs now) {
  if (status.node == config_.node || !members_.contains(status.node)) return;
  const TimeUs skew = status.time > now ? status.time - now : now - status.time;
  if (skew > config_.max_skew) return;
  auto known = peer_status_.find(status.node);
  if (known != peer_status_.end() && known->second.time >= status.time) return;  // replayed
  auto key = store_.node_key(status.node, status.time);
  if (!key) return;
  if (!key->verify(status.signing_message(), status.signature)) {
    return misbehaved(from, Offence::forged_signature, "a status report of " + status.node);
  }
  pass_on();
  heard(status.node, now);
  peer_status_[status.node] = status;
  const auto tip = store_.tip();
  const std::uint64_t height = tip ? tip->height : 0;
  if (status.confirmed > confirmed_count_ || (status.height > height && status.confirmed > 0)) {
    request_sync(status.node, now);
  }
}

// ---- catch-up

std::vector<Hash256> ConsensusNode::confirmed_locator() const {
  const std::vector<Hash256> all = store_.confirmed();
  std::vector<Hash256> out;
  for (std::uint64_t i : locator_positions(all.size())) out.push_back(all[i]);
  return out;
}

std::vector<Hash256> ConsensusNode::mature_locator() const {
  std::vector<Hash256> out;
  auto tip = store_.tip();
  if (!tip) return out;
  for (std::uint64_t i : locator_positions(tip->height + 1)) {
    if (auto hash = store_.main_chain_at(i)) out.push_back(*hash);
  }
  return out;
}

void ConsensusNode::request_sync(const std::string& peer, TimeUs now) {
  if (peer == config_.node || (sync_asked_at_ != 0 && now - sync_asked_at_ < kSyncPatience)) {
    return;
  }
  sync_asked_at_ = now;
  sync_peer_ = peer;
  send_to(peer, SyncRequest{config_.node, confirmed_locator(), mature_locator()});
}

void ConsensusNode::on_sync_request(const SyncRequest& request) {
  SyncReply reply;
  std::size_t bytes = 0;
  auto room = [&](std::size_t more) {
    if (bytes + more > kSyncReplyBytes) return false;
    bytes += more;
    return true;
  };
  // Layer 1: everything after the newest locator entry this node has confirmed too.
  const std::vector<Hash256> all = store_.confirmed();
  std::unordered_map<Hash256, std::size_t, HashKey> position;
  for (std::size_t i = 0; i < all.size(); ++i) position.emplace(all[i], i);
  std::size_t from = 0;
  for (const Hash256& h : request.confirmed) {
    if (auto it = position.find(h); it != position.end()) {
      from = it->second + 1;
      break;
    }
  }
  for (std::size_t i = from; i < all.size(); ++i) {
    auto block = store_.semi_finished(all[i]);
    if (!block) break;
    if (reply.confirmed.size() == kMaxSyncBlocks || !room(block->encode().size())) {
      reply.more = true;
      break;
    }
    reply.confirmed.push_back(*std::move(block));
  }
  // Layer 2: the main chain above the newest locator entry on this node's main chain.
  std::uint64_t height = 0;
  for (const Hash256& h : request.mature) {
    auto block = store_.block(h);
    if (block && store_.main_chain_at(block->header.height) == h) {
      height = block->header.height + 1;
      break;
    }
  }
  for (auto hash = store_.main_chain_at(height); hash && !reply.more;
       hash = store_.main_chain_at(++height)) {
    auto block = store_.block(*hash);
    if (!block) break;
    if (reply.mature.size() == kMaxSyncBlocks || !room(block->encode().size())) {
      reply.more = true;
      break;
    }
    reply.mature.push_back(*std::move(block));
  }
  if (!reply.confirmed.empty() || !reply.mature.empty()) send_to(request.node, reply);
}

Status ConsensusNode::check_confirmed_block(const SemiFinishedBlock& block) const {
  const Candidate& c = block.candidate;
  if (c.previous != last_) return fail("it does not follow this node's last confirmed block");
  auto elected = elect_leader(last_, c.round, pool_);
  if (!elected || *elected != c.leader) return fail("its leader was not elected for its round");
  auto key = store_.node_key(c.leader, c.timestamp);
  const Hash256 hash = c.hash();
  if (!key || !key->verify(candidate_signing_message(hash), block.leader_signature)) {
    return fail("the leader's signature does not verify");
  }
  const std::vector<std::string> required = required_marks(c);
  if (block.marks.size() != required.size()) return fail("it lacks marks of the valid pool");
  for (std::size_t i = 0; i < required.size(); ++i) {
    const ValidMark& mark = block.marks[i];
    auto mark_key = store_.node_key(mark.node, c.timestamp);
    if (mark.node != required[i] || !mark_key ||
        !mark_key->verify(valid_mark_signing_message(hash), mark.signature)) {
      return fail("the mark of " + required[i] + " is missing or does not verify");
    }
  }
  if (auto bad = invalid_package(block)) {
    return fail("package " + std::to_string(bad->first) + " is " +
                std::string(to_string(bad->second.verdict)) + ": " + bad->second.detail);
  }
  return {};
}

void ConsensusNode::on_sync_reply(const std::string& from, const SyncReply& reply, TimeUs now) {
  if (from == config_.node) return;
  sync_asked_at_ = 0;
  for (const SemiFinishedBlock& block : reply.confirmed) {
    const Hash256 hash = block.hash();
    if (store_.is_confirmed(hash)) continue;
    if (auto ok = check_confirmed_block(block); !ok) {
      ++counters_.bad_sync;
      log("refusing catch-up block " + to_hex(hash).substr(0, 16) + " from " + from + ": " +
          ok.error().message);
      return;
    }
    if (auto adopted = adopt(block, now); !adopted) {
      log("could not store catch-up block: " + adopted.error().message);
      return;
    }
    ++counters_.synced;
  }
  for (const Block& block : reply.mature) {
    if (!store_.has_block(block.hash())) (void)accept_block(from, block, now);
  }
  if (reply.more) request_sync(from, now);
}

// ---- mature blocks

Result<AppendResult> ConsensusNode::mined(const Block& block) {
  auto appended = store_.append(block);
  if (!appended) return appended;
  transport_.broadcast(config_.node, encode_message(MinedBlock{block}));
  retry_orphans();
  return appended;
}

void ConsensusNode::on_mined_block(const std::string& from, const Block& block, TimeUs now) {
  if (store_.has_block(block.hash())) return;
  (void)accept_block(from, block, now);
}

Result<AppendResult> ConsensusNode::accept_block(const std::string& from, const Block& block,
                                                 TimeUs now) {
  const BlockHeader& h = block.header;
  const std::uint8_t diff = h.type == BlockType::data ? config_.data_diff : config_.policy_diff;
  std::string problem;
  if (auto structure = check_block_structure(block); !structure) {
    problem = structure.error().message;
  } else if (h.diff != diff) {
    problem = "difficulty " + std::to_string(h.diff) + " where the chain requires " +
              std::to_string(diff);
  }
  // Structure, proof of work and difficulty are the same for every node: a peer that sends
  // such a block made it. The time is not (clocks differ).
  if (!problem.empty()) misbehaved(from, Offence::bad_block, problem);
  if (problem.empty() && h.timestamp > now + config_.max_skew) {
    problem = "timestamp " + format_time(h.timestamp) + " is in the future";
  }
  if (!problem.empty()) {
    ++counters_.bad_blocks;
    log("refusing mature block " + to_hex(block.hash()).substr(0, 16) + " from " + from + ": " +
        problem);
    return fail(problem);
  }
  // A block on a body or parent this node does not have yet: it lags; keep the block and ask.
  const bool parent_known = h.height == 0 ? h.previous == Hash256{} : store_.has_block(h.previous);
  pass_on();  // its proof of work holds: worth passing on even if this node cannot use it yet
  if (!store_.is_confirmed(h.semi_finished) || !parent_known) {
    if (orphans_.size() >= kMaxOrphans) orphans_.erase(orphans_.begin());
    orphans_.emplace(block.hash(), block);
    request_sync(from, now);
    return fail("waiting for its parent or its semi-finished block");
  }
  auto appended = store_.append(block);
  if (!appended) {
    ++counters_.bad_blocks;
    log("refusing mature block from " + from + ": " + appended.error().message);
    return appended;
  }
  ++counters_.blocks_in;
  if (appended->new_tip && on_appended) on_appended(block, *appended);
  retry_orphans();
  return appended;
}

void ConsensusNode::retry_orphans() {
  for (bool progress = true; progress;) {
    progress = false;
    for (auto it = orphans_.begin(); it != orphans_.end();) {
      const BlockHeader& h = it->second.header;
      const bool parent_known =
          h.height == 0 ? h.previous == Hash256{} : store_.has_block(h.previous);
      if (!store_.is_confirmed(h.semi_finished) || !parent_known) {
        ++it;
        continue;
      }
      Block block = std::move(it->second);
      it = orphans_.erase(it);
      if (auto appended = store_.append(block); appended) {
        ++counters_.blocks_in;
        if (appended->new_tip && on_appended) on_appended(block, *appended);
        progress = true;
      }
    }
  }
}

// ---- rejoin

void ConsensusNode::maybe_rejoin(TimeUs now) {
  if (!suspended() || now - rejoin_asked_at_ < kRejoinInterval) return;
  // Caught up: some peer reported lately, and none has confirmed more than this node.
  bool heard_any = false;
  for (const auto& [node, status] : peer_status_) {
    if (now - status.time > config_.silence) continue;
    heard_any = true;
    if (status.confirmed > confirmed_count_) return;
  }
  if (!heard_any) return;
  auto key = store_.node_key(config_.node, now);
  if (!key) return;
  auto package =
      make_membership_package({Uuid{}, "", config_.node, now},
                              MembershipRecord{MembershipAction::rejoin_node, config_.node, *key},
                              PackageSigners{nullptr, nullptr, config_.key});
  if (!package) return;
  rejoin_asked_at_ = now;
  ValidationResult r = submit(*package, now);
  log(r.ok() ? "caught up while suspended: asking to rejoin" : "rejoin refused here: " + r.detail);
}

}  // namespace mchain
