// Layer-1 consensus of one node (paper Algorithm 2, SPEC §6), as a single-threaded state
// machine driven by time (tick) and messages (receive), so that one host, several in-process
// nodes and the networked cluster run the same code. It also keeps the node's chain in step
// with its peers: mature blocks in, catch-up from a locator, packages re-sent on new links.
//
// Rounds. A round is identified by the last semi-finished block L and an attempt number k (0
// after each confirmation). Its leader is elect_leader(L, k, pool(L)), where pool(L), the
// valid pool, follows from the chain: the genesis nodes, changed by the membership packages of
// every confirmed block (add and rejoin put a node in, suspend and remove take it out). When a
// candidate is due in the leader's buffers (policy blocks first), the leader signs and
// broadcasts it. Every node validates every package against the store's view; if all are valid
// it broadcasts its valid mark, otherwise a signed accusation with the proposal as evidence.
// The marks of every required node make the semi-finished block, which every node confirms in
// its store (durably): the producers' confirmation. The required nodes are pool(L) less the
// nodes the candidate itself suspends or removes.
//
// Validation modes (paper Fig. 7). Concurrent: every node validates as soon as the proposal
// reaches it. In order: node by node, starting after the leader in pool order; a node validates
// once it holds the marks of every node before it.
//
// Liveness and exclusion (docs/consensus.md has the safety argument):
//   - A round with work waiting (a due candidate, or a proposal not yet confirmed) that does
//     not confirm within round_timeout (longer for each further attempt) moves the node to
//     attempt k+1, whose leader is another draw. A valid proposal of a later attempt on the same
//     L moves a node there at once.
//   - Every node reports a signed status every status_period. A leader that has not heard from
//     a pool node for `silence` proposes its suspension (a membership package in a policy
//     block); a node marks it only if that node has been silent to it too (for half that time).
//     A suspended node that has caught up proposes its own rejoin.
//   - A leader proved wrong by an accusation is not followed again (its rounds are skipped);
//     the next leader proposes its removal, and a node marks that only if it has verified the
//     accusation itself.
//   - A candidate that takes nodes out of the pool needs the marks of more than half of pool(L),
//     so that two sides of a partition cannot both go on.
//   - Messages are passed on only once they check out (validate before relay), so a peer that
//     sends this node something no honest node would pass on — a mark or signature that does
//     not verify, a mature block of bad structure or proof of work, bytes that do not decode —
//     made it itself. The node alarms and treats it like an accused leader: proposes its
//     removal when it leads, and marks such a removal only if it saw that node misbehave
//     itself (the evidence is the authenticated link, which no other node can re-check).
//   - A leader whose own take-out timed out (the others did not agree) does not propose that
//     take-out again for a few round timeouts, so one node's grudge cannot stall every round
//     it leads.
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

class SignatureCache;
class ValidationPool;

enum class ValidationMode : std::uint8_t { concurrent, in_order };
std::string_view to_string(ValidationMode mode);

struct ConsensusConfig {
  std::string node;                     // this node's id
  const crypto::Signer* key = nullptr;  // this node's key (signs proposals, marks, status)
  std::vector<std::string> pool;        // the genesis members
  BufferOptions buffers;
  TimeUs max_skew = 120'000'000;  // for packages submitted or gossiped now
  ValidationMode mode = ValidationMode::concurrent;
  // Optional: packages whose signatures this node verified when they were gossiped are not
  // verified again in the round (warm rounds); and a candidate's packages verified on several
  // threads. Both outlive the node.
  SignatureCache* signature_cache = nullptr;
  ValidationPool* validation_pool = nullptr;
  // The difficulty every mature block must carry (the genesis file's).
  std::uint8_t data_diff = 16;
  std::uint8_t policy_diff = 16;
  TimeUs round_timeout = 2'000'000;
  TimeUs status_period = 250'000;
  TimeUs silence = 3'000'000;
};

// Data a peer sent that an honest node would not have passed on (see the header).
enum class Offence : std::uint8_t { malformed_message, forged_signature, forged_mark, bad_block };
std::string_view to_string(Offence offence);

struct Misbehaviour {
  std::string node;     // the peer that sent it
  std::string witness;  // the node that saw it (this one)
  Offence offence = Offence::malformed_message;
  std::string detail;
};

// What happened at this node, for logs and metrics.
struct ConsensusCounters {
  std::uint64_t proposals = 0, marks = 0, confirmed = 0, timeouts = 0;
  std::uint64_t accusations = 0;  // made or accepted
  std::uint64_t bad_marks = 0;    // marks whose signature does not verify
  std::uint64_t offences = 0;     // messages a peer made that no honest node would relay
  std::uint64_t blocks_in = 0;    // mature blocks appended from peers
  std::uint64_t bad_blocks = 0;   // refused mature blocks (structure, PoW, difficulty)
  std::uint64_t synced = 0;       // semi-finished blocks confirmed through catch-up
  std::uint64_t bad_sync = 0;     // catch-up blocks that failed validation
};

class ConsensusNode {
 public:
  ConsensusNode(ConsensusConfig config, Store& store, Transport& transport);

  // A package produced on this host: validated against the view, buffered and gossiped.
  // Returns the verdict; an invalid package is not buffered (the caller alarms).
  ValidationResult submit(const Package& package, TimeUs now);
  // Proposes when this node leads a round and a candidate is due; times rounds out; reports
  // status; asks for catch-up.
  void tick(TimeUs now);
  // A message from a peer, as the transport delivers it.
  void receive(const std::string& from, const Bytes& message, TimeUs now);
  // A link to `peer` came up: it may have missed gossip, so it gets our status and every
  // package still waiting here.
  void peer_linked(const std::string& peer, TimeUs now);
  // A block this node mined: appended (if it still fits) and flooded.
  Result<AppendResult> mined(const Block& block);

  // Called with every candidate this node proposes, just before it goes out.
  std::function<void(const SemiFinishedBlock&)> on_proposed;
  // Called with every semi-finished block this node confirms, after it is durable.
  std::function<void(const SemiFinishedBlock&)> on_confirmed;
  // Called for every accusation this node makes or accepts (alarm the administrator).
  std::function<void(const Accusation&)> on_accusation;
  // Called the first time a peer is seen misbehaving (alarm the administrator).
  std::function<void(const Misbehaviour&)> on_misbehaviour;
  // Called for a buffered package that turned invalid before this node could propose it.
  std::function<void(const Package&, const ValidationResult&)> on_dropped;
  // Called when a mature block from a peer moved the tip (the miner starts over).
  std::function<void(const Block&, const AppendResult&)> on_appended;
  // Called when the valid pool changed (admission, mining slices).
  std::function<void()> on_pool_changed;
  // Called with a line worth a log entry (timeouts, suspensions, refused blocks).
  std::function<void(const std::string&)> on_log;
  // Test-only fault injection: may change a candidate before it is signed.
  std::function<void(Candidate&)> tamper_candidate;

  const std::string& id() const { return config_.node; }
  const std::vector<std::string>& valid_pool() const { return pool_; }
  bool suspended() const;
  std::uint64_t attempt() const { return attempt_; }
  std::uint64_t confirmed_count() const { return confirmed_count_; }
  const Hash256& last_semi_finished() const { return last_; }
  const CandidateBuffers& buffers() const { return buffers_; }
  // A round has work under way: a proposal being marked, or this node's own in flight.
  bool round_open() const { return current_.has_value() || proposed_; }
  const ConsensusCounters& counters() const { return counters_; }

 private:
  enum class Member : std::uint8_t { active, suspended, removed };
  // What one candidate has seen so far, for the per-candidate rules.
  struct Seen {
    std::set<Hash256> ids;
    std::set<Uuid> policy_vms;
    std::set<std::string> subjects;
  };
  std::optional<std::string> leader() const;
  void send(Message message, TimeUs now);
  void send_to(const std::string& to, const Message& message);
  // Handlers may move what they keep out of `message`.
  void handle(const std::string& from, Message& message, TimeUs now);
  // Validated and buffered, without gossip (submit() gossips, received packages are relayed).
  ValidationResult admit(const Package& package, TimeUs now);
  // The message being handled checked out: the transport may pass it on (once).
  void pass_on();
  // `peer` sent what no honest node relays (see the header).
  void misbehaved(const std::string& peer, Offence offence, const std::string& detail);
  void log(const std::string& line) const;

  // ---- rounds (consensus.cc)
  void propose(TimeUs now);
  std::vector<Package> membership_changes(TimeUs now);
  void on_proposal(const std::string& from, Proposal& proposal, TimeUs now);
  // Validates and marks current_ once it is this node's turn and it agrees.
  void evaluate_current(TimeUs now);
  bool silent(const std::string& node, TimeUs now, TimeUs threshold) const;
  void on_mark(const std::string& from, const Mark& mark, TimeUs now);
  void on_accusation_message(const std::string& from, const Accusation& accusation, TimeUs now);
  void confirm_current(TimeUs now);
  void next_attempt(TimeUs now, const std::string& why);
  void reset_round(TimeUs now);
  void check_timeout(TimeUs now);
  // The rules a package must meet in a candidate beyond validate(): block type, no repeats,
  // membership changes that fit the pool. Cheap: no signature.
  ValidationResult candidate_rules(const Package& package, BlockType type, Seen& seen) const;
  ValidationResult check_package(const Package& package, BlockType type, TimeUs candidate_time,
                                 Seen& seen) const;
  // The first package that makes a proposal invalid — provably, so it is accused — or
  // nullopt. The costly check: every package against the view, signatures included.
  std::optional<std::pair<std::uint32_t, ValidationResult>> invalid_package(
      const SemiFinishedBlock& proposal) const;
  // Whether this node agrees with the proposal's membership changes (see the header).
  bool agrees(const SemiFinishedBlock& proposal, TimeUs now) const;
  // The nodes whose marks a candidate needs.
  std::vector<std::string> required_marks(const Candidate& candidate) const;
  bool turn_to_validate(const Hash256& hash) const;  // in-order mode
  // Records a confirmed block: store, buffers, pool, round state.
  Status adopt(const SemiFinishedBlock& block, TimeUs now);
  void apply_membership(const SemiFinishedBlock& block, TimeUs now);
  void heard(const std::string& node, TimeUs now);

  // ---- keeping up with peers (consensus_sync.cc)
  void report_status(TimeUs now);
  void on_status(const std::string& from, const StatusReport& status, TimeUs now);
  void request_sync(const std::string& peer, TimeUs now);
  void on_sync_request(const SyncRequest& request);
  void on_sync_reply(const std::string& from, const SyncReply& reply, TimeUs now);
  Status check_confirmed_block(const SemiFinishedBlock& block) const;
  std::vector<Hash256> confirmed_locator() const;
  std::vector<Hash256> mature_locator() const;
  void on_mined_block(const std::string& from, const Block& block, TimeUs now);
  Result<AppendResult> accept_block(const std::string& from, const Block& block, TimeUs now);
  void retry_orphans();
  void maybe_rejoin(TimeUs now);

  ConsensusConfig config_;
  Store& store_;
  Transport& transport_;
  CandidateBuffers buffers_;
  ConsensusCounters counters_;

  std::map<std::string, Member> members_;  // from genesis and the chain
  std::vector<std::string> pool_;          // the active members, sorted: pool(L)
  std::uint64_t confirmed_count_ = 0;

  Hash256 last_{};                    // L: the last semi-finished block confirmed here
  std::uint64_t attempt_ = 0;         // k
  TimeUs started_ = 0;                // the first tick: nodes unheard since then count from it
  TimeUs round_started_ = 0;          // when this node entered (L, k)
  std::optional<TimeUs> work_since_;  // when this round first had work waiting here
  std::optional<SemiFinishedBlock> current_;  // the proposal of this round being marked
  Hash256 current_hash_{};    // its candidate hash, computed once: every mark is checked against it
  bool checked_ = false;      // current_ is valid (checked once: the costly part)
  bool marked_ = false;       // this node marked current_ (it may wait: in order, or disputed)
  bool proposed_ = false;     // this node proposed in this round
  bool late_logged_ = false;  // said once that current_'s marks came too late
  // Marks by candidate hash, kept until the proposal they mark is here and complete.
  std::map<Hash256, std::map<std::string, ValidMark>> pending_marks_;
  std::vector<Package> taken_;  // what this node proposed, returned on failure

  std::set<std::string> accused_;             // leaders proved wrong; removal pending
  std::set<std::string> misbehaving_;         // peers seen sending bad data; removal pending
  std::map<std::string, TimeUs> disputed_;    // take-outs not proposed again before then
  const Bytes* relaying_ = nullptr;           // the received message being handled
  std::string relaying_from_;                 // and the peer it came from
  std::map<std::string, TimeUs> last_heard_;  // signed messages by node
  std::map<std::string, StatusReport> peer_status_;
  TimeUs next_status_ = 0;
  TimeUs sync_asked_at_ = 0;
  std::string sync_peer_;
  TimeUs rejoin_asked_at_ = 0;
  std::map<Hash256, Block> orphans_;  // mature blocks waiting for their parent or body
};

}  // namespace mchain
