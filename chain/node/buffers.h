// The two candidate package buffers of a node (SPEC §6, paper §IV.C.1).
//
// Data packages wait oldest first; a data candidate closes when it reaches its package or
// byte cap, or when its oldest package has waited the window t_dw (small blocks allowed).
// Policy-block packages (policies, bindings, key links, membership) wait in a second buffer
// whose candidate closes t_pw after its first package arrived; a newer policy for a VM
// replaces an older one still waiting, so a revision takes effect as one policy.
// Packages are gossiped to every node as they are produced, so every node buffers them and
// whichever node leads a round can propose them; packages confirmed in another leader's block
// are removed.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "chain/block/block.h"

namespace mchain {

struct BufferOptions {
  std::size_t max_data_packages = 1000;
  std::size_t max_data_bytes = 1 << 20;  // encoded package bytes per data candidate
  std::size_t max_policy_packages = 10'000;
  TimeUs data_window = 2'000'000;    // t_dw
  TimeUs policy_window = 1'000'000;  // t_pw
};

class CandidateBuffers {
 public:
  explicit CandidateBuffers(BufferOptions options = {});

  enum class Added {
    queued,      // waits for its block
    replaced,    // a newer policy took the place of an older one of the same VM
    superseded,  // an older policy than the one already waiting: dropped
    duplicate,   // already buffered
  };
  // Buffers a validated package that arrived at `now`.
  Added add(Package package, TimeUs now);

  // The packages of the next candidate of `type` if one is due at `now` (caps reached or
  // window elapsed), taken out of the buffer in block order; nullopt if none is due.
  std::optional<std::vector<Package>> take_due(BlockType type, TimeUs now);
  // Returns the packages of a failed round to the buffer, as arrived at `arrived` (the
  // original arrival, so that they stay due).
  void put_back(std::vector<Package> packages, TimeUs arrived);
  // Drops packages that were confirmed in a block (proposed by any leader).
  void remove(const std::vector<Hash256>& ids);

  // When the next candidate becomes due without new arrivals (nullopt: both buffers empty).
  std::optional<TimeUs> next_deadline() const;
  std::size_t size(BlockType type) const;
  // Every waiting package (to re-send to a peer that was not linked when they were gossiped).
  std::vector<Package> waiting() const;
  bool contains(const Hash256& id) const { return ids_.contains(id); }

 private:
  struct Waiting {
    Package package;
    TimeUs arrived;
    std::size_t bytes;
  };
  bool data_due(TimeUs now) const;
  bool policy_due(TimeUs now) const;

  BufferOptions options_;
  std::deque<Waiting> data_;  // ordered by package timestamp, then id
  std::size_t data_bytes_ = 0;
  std::vector<Waiting> policy_;  // arrival order
  std::optional<TimeUs> policy_opened_;
  std::set<Hash256> ids_;
};

}  // namespace mchain
