#include "chain/package/validation_pool.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "chain/package/signature_cache.h"
#include "test_world.h"

namespace mchain {
namespace {

using testing::kT0;
using testing::make_key;
using testing::must;
using testing::World;

// A view that answers from another one; the tests override has_package to watch or break it.
class ForwardingView : public View {
 public:
  explicit ForwardingView(const View& inner) : inner_(inner) {}
  std::optional<crypto::PublicKey> node_key(std::string_view node, TimeUs t) const override {
    return inner_.node_key(node, t);
  }
  std::optional<crypto::PublicKey> user_key(std::string_view user, TimeUs t) const override {
    return inner_.user_key(user, t);
  }
  std::optional<VmAt> vm_at(const Uuid& vm, TimeUs t) const override { return inner_.vm_at(vm, t); }
  std::optional<PolicyInForce> policy_version(const Uuid& vm,
                                              std::uint64_t version) const override {
    return inner_.policy_version(vm, version);
  }

 protected:
  const View& inner_;
};

// The process's thread count, from /proc.
int process_threads() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("Threads:")) return std::stoi(line.substr(8));
  }
  ADD_FAILURE() << "no Threads: line in /proc/self/status";
  return -1;
}

// Forwards to a view and records which threads asked, and in which call.
class RecordingView final : public ForwardingView {
 public:
  explicit RecordingView(const View& inner) : ForwardingView(inner) {}

  bool has_package(const Hash256& id) const override {
    // A thread_local is fresh in every new thread, even one that reuses an old thread's id:
    // a thread that remembers an earlier call is one the pool kept.
    thread_local int first_call = -1;
    std::lock_guard lock(mutex_);
    if (first_call == -1) first_call = call_;
    if (first_call != call_ && std::this_thread::get_id() != caller_) ++reused_;
    ++by_thread_[std::this_thread::get_id()];
    max_threads_ = std::max(max_threads_, process_threads());
    return inner_.has_package(id);
  }

  void start_call(int call) {
    std::lock_guard lock(mutex_);
    call_ = call;
  }

  const std::thread::id caller_ = std::this_thread::get_id();
  mutable std::mutex mutex_;
  int call_ = 0;
  mutable int reused_ = 0;
  mutable int max_threads_ = 0;
  mutable std::map<std::thread::id, int> by_thread_;
};

class Pool : public ::testing::Test {
 protected:
  // A mix of valid and invalid packages, the kind repeating every 6.
  std::vector<Package> mixed(std::size_t count) {
    auto other_vm = make_key();
    std::vector<Package> out;
    for (std::size_t i = 0; i < count; ++i) {
      const TimeUs t = kT0 + 100 + i;
      switch (i % 6) {
        case 0:
        case 1: out.push_back(w.data(t)); break;
        case 2:
          out.push_back(
              must(make_data_package({w.vm, "alice", "node-1", t}, w.policy1.ref(), w.data_key,
                                     as_bytes("x"), {&other_vm, &w.alice, &w.node1})));
          break;
        case 3:
          out.push_back(
              must(make_data_package({Uuid::random(), "alice", "node-1", t}, w.policy1.ref(),
                                     w.data_key, as_bytes("x"), w.signers("node-1"))));
          break;
        case 4:
          out.push_back(w.data(t));
          w.accept(out.back());  // already on the chain
          break;
        case 5:
          out.push_back(
              must(make_data_package({w.vm, "alice", "node-1", t}, w.policy1.ref(), w.data_key,
                                     as_bytes("x"), {nullptr, &w.alice, &w.node1})));
          break;
      }
    }
    return out;
  }

  static constexpr Verdict kExpected[] = {
      Verdict::ok,         Verdict::ok,        Verdict::bad_vm_signature,
      Verdict::unknown_vm, Verdict::duplicate, Verdict::malformed};

  ValidationOptions options() const { return w.at(kT0 + 100); }

  void expect_sequential(const std::vector<ValidationResult>& results,
                         const std::vector<Package>& packages, const ValidationOptions& o) {
    ASSERT_EQ(results.size(), packages.size());
    for (std::size_t i = 0; i < packages.size(); ++i) {
      const ValidationResult want = validate(packages[i], w.view, o);
      EXPECT_EQ(to_string(results[i].verdict), to_string(kExpected[i % 6])) << i;
      EXPECT_EQ(to_string(results[i].verdict), to_string(want.verdict)) << i;
      EXPECT_EQ(results[i].detail, want.detail) << i;
    }
  }

  World w;
};

TEST_F(Pool, ResultsInOrderAndEqualToSequential) {
  const std::vector<Package> packages = mixed(60);
  for (unsigned threads : {1u, 2u, 4u, 0u}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    ValidationPool pool(threads);
    EXPECT_EQ(pool.threads(),
              threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency()));
    expect_sequential(pool.validate_all(packages, w.view, options()), packages, options());
  }
}

TEST_F(Pool, SharesASignatureCache) {
  const std::vector<Package> packages = mixed(60);
  SignatureCache cache;
  ValidationOptions o = options();
  o.signature_cache = &cache;
  ValidationPool pool(4);
  expect_sequential(pool.validate_all(packages, w.view, o), packages, options());
  EXPECT_EQ(cache.size(), 20u);  // the kinds 0 and 1
  EXPECT_EQ(cache.stats().hits, 0u);
  expect_sequential(pool.validate_all(packages, w.view, o), packages, options());
  EXPECT_EQ(cache.stats().hits, 20u);
}

TEST_F(Pool, OneThreadRunsInline) {
  const std::vector<Package> packages = mixed(12);
  RecordingView view(w.view);
  const int before = process_threads();
  ValidationPool pool(1);
  EXPECT_EQ(process_threads(), before);
  expect_sequential(pool.validate_all(packages, view, options()), packages, options());
  ASSERT_EQ(view.by_thread_.size(), 1u);
  EXPECT_EQ(view.by_thread_.begin()->first, std::this_thread::get_id());
  EXPECT_EQ(view.max_threads_, before);
}

TEST_F(Pool, ManyCallsReuseTheWorkers) {
  const std::vector<Package> packages = mixed(36);
  RecordingView view(w.view);
  const int before = process_threads();
  ValidationPool pool(4);
  const int with_workers = process_threads();
  EXPECT_EQ(with_workers, before + 3);
  constexpr int kCalls = 20;
  for (int call = 0; call < kCalls; ++call) {
    view.start_call(call);
    expect_sequential(pool.validate_all(packages, view, options()), packages, options());
    EXPECT_EQ(process_threads(), with_workers);
  }
  EXPECT_EQ(view.max_threads_, with_workers);  // no thread started during a call
  EXPECT_LE(view.by_thread_.size(), 4u);
  EXPECT_GE(view.by_thread_.size(), 2u);  // the workers took part
  EXPECT_GT(view.reused_, 0);             // and the same workers served later calls
}

TEST_F(Pool, EmptyInput) {
  for (unsigned threads : {1u, 4u}) {
    ValidationPool pool(threads);
    EXPECT_TRUE(pool.validate_all({}, w.view, options()).empty());
    EXPECT_TRUE(pool.validate_all({}, w.view, options()).empty());
  }
}

TEST_F(Pool, ConcurrentCallersTakeTurns) {
  const std::vector<Package> packages = mixed(30);
  ValidationPool pool(3);
  std::vector<std::vector<ValidationResult>> results(4);
  {
    std::vector<std::jthread> callers;
    for (std::size_t k = 0; k < results.size(); ++k) {
      callers.emplace_back([&, k] { results[k] = pool.validate_all(packages, w.view, options()); });
    }
  }
  for (const auto& r : results) expect_sequential(r, packages, options());
}

// A view that fails on one package, as a View that breaks the no-throw convention would.
class ThrowingView final : public ForwardingView {
 public:
  ThrowingView(const View& inner, Hash256 poison) : ForwardingView(inner), poison_(poison) {}
  bool has_package(const Hash256& id) const override {
    if (id == poison_) throw std::runtime_error("view failure");
    return inner_.has_package(id);
  }

 private:
  Hash256 poison_;
};

TEST_F(Pool, AnExceptionReachesTheCallerAndThePoolGoesOn) {
  const std::vector<Package> packages = mixed(30);
  ThrowingView view(w.view, packages[12].id());  // a valid one: has_package is asked
  ValidationPool pool(4);
  EXPECT_THROW(pool.validate_all(packages, view, options()), std::runtime_error);
  expect_sequential(pool.validate_all(packages, w.view, options()), packages, options());
}

}  // namespace
}  // namespace mchain
