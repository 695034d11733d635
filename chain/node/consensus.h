// Layer-1 consensus of one node (paper Algorithm 2, SPEC §6), as a single-threaded state
// machine driven by time (tick) and messages (receive), so that one host, several in-process
// nodes and the networked cluster run the same code.
//
// A round is identified by the last semi-finished block L and an attempt number k (0 after
// each confirmation). Its leader is elect_leader(L, k, valid pool). When a candidate is due
// in the leader's buffers (policy blocks first), the leader signs and broadcasts it. Every
// node validates every package against the store's view; if all are valid it broadcasts its
// valid mark, otherwise a signed accusation with the proposal as evidence. Marks from every
// node of the valid pool make the semi-finished block, which every node confirms in its store
// (durably): the producers' confirmation. An accused leader leaves the valid pool and the
// next attempt elects another.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "chain/node/buffers.h"
#include "chain/node/messages.h"
#include "chain/node/transport.h"
#include "chain/store/store.h"

namespace mchain {

struct ConsensusConfig {
  std::string node;                     // this node's id
  const crypto::Signer* key = nullptr;  // this node's key (signs proposals and marks)
  std::vector<std::string> pool;        // the valid pool at start: every member node
  BufferOptions buffers;
  TimeUs max_skew = 120'000'000;  // for packages submitted or gossiped now
};

class ConsensusNode {
 public:
  ConsensusNode(ConsensusConfig config, Store& store, Transport& transport);

  // A package produced on this host: validated against the view, buffered and gossiped.
  // Returns the verdict; an invalid package is not buffered (the caller alarms).
  ValidationResult submit(const Package& package, TimeUs now);
  // Proposes when this node leads the round and a candidate is due.
  void tick(TimeUs now);
  // A message from a peer, as the transport delivers it.
  void receive(const std::string& from, const Bytes& message, TimeUs now);

  // Called with every semi-finished block this node confirms, after it is durable.
  std::function<void(const SemiFinishedBlock&)> on_confirmed;
  // Called for every accusation this node makes or accepts (alarm the administrator).
  std::function<void(const Accusation&)> on_accusation;
  // Called for a buffered package that turned invalid before this node could propose it.
  std::function<void(const Package&, const ValidationResult&)> on_dropped;

  const std::string& id() const { return config_.node; }
  const std::vector<std::string>& valid_pool() const { return pool_; }
  std::uint64_t attempt() const { return attempt_; }
  const Hash256& last_semi_finished() const { return last_; }
  const CandidateBuffers& buffers() const { return buffers_; }

 private:
  std::optional<std::string> leader() const;
  void send(const Message& message, TimeUs now);
  void handle(const Message& message, TimeUs now);
  void on_proposal(const Proposal& proposal, TimeUs now);
  void on_mark(const Mark& mark);
  void on_accusation_message(const Accusation& accusation);
  // What one candidate has seen so far, for the per-candidate rules.
  struct Seen {
    std::set<Hash256> ids;
    std::set<Uuid> policy_vms;
  };
  ValidationResult check_package(const Package& package, BlockType type, TimeUs candidate_time,
                                 Seen& seen) const;
  // The first invalid package of a proposal, or nullopt when all are valid.
  std::optional<std::pair<std::uint32_t, ValidationResult>> check_proposal(
      const SemiFinishedBlock& proposal) const;
  void suspect(const std::string& leader);
  void confirm_current();

  ConsensusConfig config_;
  Store& store_;
  Transport& transport_;
  CandidateBuffers buffers_;
  std::vector<std::string> pool_;             // sorted
  Hash256 last_{};                            // L: the last semi-finished block confirmed here
  std::uint64_t attempt_ = 0;                 // k
  std::optional<SemiFinishedBlock> current_;  // the proposal of this round being marked
  Hash256 current_hash_{};  // its candidate hash, computed once: every mark is checked against it
  bool proposed_ = false;   // this node proposed in this round
  // Marks by candidate hash, kept until the proposal they mark is here and complete.
  std::map<Hash256, std::map<std::string, ValidMark>> pending_marks_;
  std::vector<Package> taken_;  // what this node proposed, returned on failure
};

}  // namespace mchain
