// The chain store on LevelDB (SPEC §6 "Store").
//
// What it keeps:
//   - confirmed semi-finished blocks (layer 1), in confirmation order; each is the user's
//     confirmation and is never lost: a reorganisation of mature blocks puts it back in the
//     mining queue;
//   - mature blocks (layer 2) by hash, their height, cumulative work and parent, a height
//     index, and the tip: the chain with the most work (ties: the lower block hash);
//   - the validation view, built from the packages of every confirmed semi-finished block
//     (package_effects), and an index of packages by (VM, time).
// The view depends only on which semi-finished blocks are confirmed, not on which mature
// branch wins, so a reorganisation never changes what later packages are validated against.
//
// Every consensus-critical change is one synced LevelDB WriteBatch, so a crash (SIGKILL,
// power loss) leaves either all of it or none of it.
//
// Thread safety: one writer at a time (confirm, append); reads may run concurrently with
// each other and with a writer. A read that overlaps a write sees the state before it or
// after it; one that starts after a write returned sees that write.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "chain/block/block.h"
#include "chain/error.h"
#include "chain/package/view.h"

namespace mchain {

// Cumulative proof of work: the sum of 2^diff over a branch, as a 256-bit number.
class Work {
 public:
  static Work of_block(unsigned diff);
  Work& operator+=(const Work& other);
  auto operator<=>(const Work&) const = default;
  const std::array<std::uint8_t, 32>& big_endian() const { return be_; }
  static Work from_big_endian(ByteView bytes);  // 32 bytes

 private:
  std::array<std::uint8_t, 32> be_{};
};

struct StoreOptions {
  bool create_if_missing = true;
  // fsync every consensus-critical batch. Only tests of non-crash behaviour turn it off.
  bool sync = true;
  std::size_t cache_bytes = 8 << 20;
  BlockLimits limits;
  // View answers (node and user keys; a VM's key, owner, host and policy) kept between two
  // writes, per subject, so that a round re-validating many packages of one VM reads its
  // history once; any write drops them all. Entries of each of the two caches; 0: no cache.
  std::size_t history_cache_entries = 4096;
};

struct ChainTip {
  Hash256 hash{};
  std::uint64_t height = 0;
  Work work;
};

// Where a confirmed package is: its semi-finished block and position there.
struct PackageLocation {
  Hash256 package_id{};
  Hash256 semi_finished{};
  std::uint32_t index = 0;
  TimeUs timestamp = 0;
};

struct AppendResult {
  bool new_tip = false;
  // Semi-finished blocks the reorganisation took out of the main chain and put back in the
  // mining queue (not mined on the new main chain), and those it took out of the queue.
  std::vector<Hash256> requeued;
  std::vector<Hash256> dequeued;
};

class Store final : public View {
 public:
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& directory,
                                             const StoreOptions& options = {});
  ~Store() override;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Genesis membership: a node known from the cluster configuration, not from a package.
  // Idempotent for the same (node, key, since).
  Status add_genesis_node(const std::string& node, const crypto::PublicKey& key, TimeUs since);

  // ---- layer 1
  // Records a semi-finished block that gathered its marks (the caller, the consensus layer,
  // has validated every package and mark). Durable when this returns. Its packages join the
  // view and the VM index; it joins the mining queue. Confirming the same block again is a
  // no-op; a block containing a package already confirmed elsewhere is refused.
  Status confirm(const SemiFinishedBlock& block);
  Result<SemiFinishedBlock> semi_finished(const Hash256& hash) const;
  bool is_confirmed(const Hash256& semi_finished_hash) const;
  // The most recently confirmed semi-finished block: the next candidate's `previous`.
  std::optional<Hash256> last_confirmed() const;
  // Confirmed blocks not in the main chain, oldest confirmation first: what to mine next.
  std::vector<Hash256> mining_queue() const;
  // Every confirmed semi-finished block, oldest confirmation first.
  std::vector<Hash256> confirmed() const;

  // ---- layer 2
  // Adds a mature block whose body is confirmed and whose parent is known (the zero hash at
  // height 0). Checks the structure (check_block_structure), the height, that the body is
  // not already mined in the block's own ancestry, and moves the tip to the branch with the
  // most work, reorganising the mining queue.
  Result<AppendResult> append(const Block& block);
  std::optional<ChainTip> tip() const;
  Result<Block> block(const Hash256& hash) const;
  bool has_block(const Hash256& hash) const;
  // Every stored block at `height`, side branches included, in hash order.
  std::vector<Hash256> blocks_at(std::uint64_t height) const;
  // The main-chain block at `height`.
  std::optional<Hash256> main_chain_at(std::uint64_t height) const;
  // The main-chain block that mined a semi-finished block, if any.
  std::optional<Hash256> mined_in(const Hash256& semi_finished_hash) const;

  // ---- packages
  std::optional<PackageLocation> find_package(const Hash256& package_id) const;
  // A VM's confirmed packages with from <= timestamp < to, in time order.
  std::vector<PackageLocation> vm_packages(const Uuid& vm, TimeUs from, TimeUs to) const;

  // ---- View, answered from the stored histories
  std::optional<crypto::PublicKey> node_key(std::string_view node, TimeUs t) const override;
  std::optional<crypto::PublicKey> user_key(std::string_view user, TimeUs t) const override;
  std::optional<VmAt> vm_at(const Uuid& vm, TimeUs t) const override;
  std::optional<PolicyInForce> policy_version(const Uuid& vm, std::uint64_t version) const override;
  bool has_package(const Hash256& id) const override;

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mchain
