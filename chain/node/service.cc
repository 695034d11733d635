#include "chain/node/service.h"

#include <algorithm>

namespace mchain {

NodeService::NodeService(ServiceConfig config, Store& store, Transport& transport)
    : config_(std::move(config)), store_(store), node_(config_.consensus, store, transport) {
  node_.on_confirmed = [this](const SemiFinishedBlock& block) { confirmed(block); };
  node_.on_appended = [this](const Block& block, const AppendResult&) {
    mature(block);
    interrupt_mining_ = true;  // the search ran on the old tip
    mining_wake_.notify_all();
  };
  node_.on_pool_changed = [this] {
    update_slice();
    if (config_.on_pool_changed) config_.on_pool_changed();
  };
  if (config_.log) node_.on_log = config_.log;
  if (config_.on_proposed) node_.on_proposed = config_.on_proposed;
  if (config_.tamper_candidate) node_.tamper_candidate = config_.tamper_candidate;
  if (config_.on_accusation) node_.on_accusation = config_.on_accusation;
  if (config_.on_misbehaviour) node_.on_misbehaviour = config_.on_misbehaviour;
  update_slice();
  consensus_thread_ = std::jthread([this] { consensus_loop(); });
  mining_thread_ = std::jthread([this] { mining_loop(); });
}

NodeService::~NodeService() { stop(); }

void NodeService::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  interrupt_mining_ = true;
  wake_.notify_all();
  mining_wake_.notify_all();
  if (consensus_thread_.joinable()) consensus_thread_.join();
  if (mining_thread_.joinable()) mining_thread_.join();
  std::lock_guard lock(mutex_);
  fail_all(confirm_waiting_, "stopped before the package was confirmed");
  fail_all(mature_waiting_, "stopped before the package was mined");
  commands_.clear();
}

void NodeService::fail_all(std::multimap<Hash256, Promise>& waiting, const std::string& why) {
  for (auto& [id, promise] : waiting) promise.set_value(fail(why));
  waiting.clear();
}

void NodeService::update_slice() {
  // Cooperative mining: each node of the valid pool searches its own nonce_hi.
  const auto& pool = node_.valid_pool();
  auto self = std::find(pool.begin(), pool.end(), node_.id());
  pow::NonceRange slice{};
  if (self != pool.end()) {
    slice = *pow::cooperative_slice(static_cast<unsigned>(self - pool.begin()),
                                    static_cast<unsigned>(pool.size()));
  }
  std::lock_guard lock(mutex_);
  slice_ = slice;
}

std::future<Result<Hash256>> NodeService::submit(Package package) {
  Promise promise;
  auto future = promise.get_future();
  std::lock_guard lock(mutex_);
  if (stopping_) {
    promise.set_value(fail("stopped"));
    return future;
  }
  // The same package submitted twice is one submission with two waiters.
  const bool first = !confirm_waiting_.contains(package.id());
  confirm_waiting_.emplace(package.id(), std::move(promise));
  if (first) commands_.push_back(Command{std::move(package), std::nullopt, {}, {}});
  wake_.notify_all();
  return future;
}

std::future<Result<Hash256>> NodeService::wait_mature(const Hash256& package_id) {
  Promise promise;
  auto future = promise.get_future();
  std::lock_guard lock(mutex_);
  // Already mined? The lock orders this check against mature(), which also takes it.
  if (auto where = store_.find_package(package_id)) {
    if (auto block = store_.mined_in(where->semi_finished)) {
      promise.set_value(*block);
      return future;
    }
  }
  if (stopping_) {
    promise.set_value(fail("stopped"));
    return future;
  }
  mature_waiting_.emplace(package_id, std::move(promise));
  return future;
}

void NodeService::deliver(std::string from, Bytes message) {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  commands_.push_back(Command{std::nullopt, std::nullopt, std::move(from), std::move(message)});
  wake_.notify_all();
}

void NodeService::linked(std::string peer) {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  commands_.push_back(Command{std::nullopt, std::nullopt, std::move(peer), {}});
  wake_.notify_all();
}

NodeSnapshot NodeService::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

void NodeService::consensus_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::microseconds(config_.tick),
                   [this] { return stopping_ || !commands_.empty(); });
    if (stopping_) break;
    std::deque<Command> batch;
    batch.swap(commands_);
    lock.unlock();
    // The node runs without the lock: confirmations call back into confirmed(), which
    // takes it.
    for (Command& c : batch) {
      const TimeUs now = now_us();
      if (c.mined) {
        if (auto appended = node_.mined(*c.mined); appended) mature(*c.mined);
        std::lock_guard relock(mutex_);
        --mined_pending_;
        mining_wake_.notify_all();
        continue;
      }
      if (!c.package) {
        if (c.message.empty()) {
          node_.peer_linked(c.from, now);
        } else {
          node_.receive(c.from, c.message, now);
        }
        continue;
      }
      ValidationResult r = node_.submit(*c.package, now);
      if (r.ok()) continue;
      // Already confirmed (a peer's block got there first) is a confirmation, not an error.
      auto where =
          r.verdict == Verdict::duplicate ? store_.find_package(c.package->id()) : std::nullopt;
      std::lock_guard relock(mutex_);
      auto range = confirm_waiting_.equal_range(c.package->id());
      for (auto it = range.first; it != range.second; ++it) {
        it->second.set_value(where ? Result<Hash256>(where->semi_finished)
                                   : fail(std::string(to_string(r.verdict)) + ": " + r.detail));
      }
      confirm_waiting_.erase(range.first, range.second);
    }
    node_.tick(now_us());
    NodeSnapshot snap{node_.counters(), node_.valid_pool(),      node_.suspended(),
                      node_.attempt(),  node_.confirmed_count(), 0};
    if (auto tip = store_.tip()) snap.height = tip->height;
    snap.waiting = node_.buffers().size(BlockType::data) + node_.buffers().size(BlockType::policy);
    snap.round_open = node_.round_open();
    snap.ticks = snapshot_ticks_++;
    lock.lock();
    snapshot_ = std::move(snap);
  }
}

void NodeService::confirmed(const SemiFinishedBlock& block) {
  if (config_.on_confirmed) config_.on_confirmed(block);
  const Hash256 hash = node_.last_semi_finished();  // this block's hash, already known
  {
    std::lock_guard lock(mutex_);
    for (const Package& p : block.candidate.packages) {
      auto range = confirm_waiting_.equal_range(p.id());
      for (auto it = range.first; it != range.second; ++it) it->second.set_value(hash);
      confirm_waiting_.erase(range.first, range.second);
    }
  }
  mining_wake_.notify_all();
}

void NodeService::mature(const Block& block) {
  const Hash256 hash = block.hash();
  std::lock_guard lock(mutex_);
  for (const Package& p : block.body.candidate.packages) {
    auto range = mature_waiting_.equal_range(p.id());
    for (auto it = range.first; it != range.second; ++it) it->second.set_value(hash);
    mature_waiting_.erase(range.first, range.second);
  }
}

void NodeService::mining_loop() {
  pow::Miner miner(config_.miner_threads);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    interrupt_mining_ = false;
    MiningConfig mining = config_.mining;
    mining.slice = slice_;
    const bool can_mine = mining.slice.lo_begin < mining.slice.lo_end;
    lock.unlock();
    auto found = can_mine ? mine_next(store_, miner, mining, now_us(), interrupt_mining_)
                          : Result<std::optional<Block>>(std::optional<Block>());
    lock.lock();
    if (stopping_) break;
    if (found && *found) {
      // The consensus thread appends (it is the store's only writer) and floods the block;
      // wait for it, so that the next search starts on the new tip.
      ++mined_pending_;
      commands_.push_back(Command{std::nullopt, *std::move(*found), {}, {}});
      wake_.notify_all();
      mining_wake_.wait(lock, [this] { return stopping_ || mined_pending_ == 0; });
      continue;
    }
    if (interrupt_mining_) continue;  // a peer's block moved the tip: start over at once
    // Nothing to mine (or a store error): sleep until a confirmation or a tick passes.
    mining_wake_.wait_for(lock, std::chrono::microseconds(config_.tick * 10),
                          [this] { return stopping_ || interrupt_mining_.load(); });
  }
}

}  // namespace mchain
