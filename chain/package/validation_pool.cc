#include "chain/package/validation_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <stop_token>
#include <thread>

namespace mchain {

namespace {

// One validate_all call, shared by every thread that works on it.
struct Call {
  std::span<const Package> packages;
  const View& view;
  const ValidationOptions& options;
  std::vector<ValidationResult>& results;
  std::atomic<std::size_t> next{0};
  std::mutex error_mutex{};
  std::exception_ptr error{};  // the first one thrown

  // Validates packages until none is left. Each index is taken once, so every result slot
  // has one writer.
  void run() {
    for (;;) {
      const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= packages.size()) return;
      try {
        results[i] = validate(packages[i], view, options);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        next.store(packages.size(), std::memory_order_relaxed);  // the call fails anyway
      }
    }
  }
};

}  // namespace

struct ValidationPool::Impl {
  explicit Impl(unsigned threads) : threads(threads) {
    workers.reserve(threads - 1);
    for (unsigned k = 1; k < threads; ++k) {
      workers.emplace_back([this](std::stop_token stop) { work(stop); });
    }
  }

  void work(std::stop_token stop) {
    std::uint64_t seen = 0;
    std::unique_lock lock(mutex);
    for (;;) {
      if (!wake.wait(lock, stop, [&] { return call != nullptr && generation != seen; })) return;
      seen = generation;
      Call* mine = call;
      ++busy;
      lock.unlock();
      mine->run();
      lock.lock();
      if (--busy == 0) done.notify_all();
    }
  }

  // Hands `c` to the workers, works on it too, and returns once no worker still holds it.
  void share(Call& c) {
    std::lock_guard one_call(call_mutex);
    {
      std::lock_guard lock(mutex);
      call = &c;
      ++generation;
    }
    wake.notify_all();
    c.run();
    // Every package is taken; a worker that wakes only now must not see the call.
    std::unique_lock lock(mutex);
    call = nullptr;
    done.wait(lock, [&] { return busy == 0; });
  }

  const unsigned threads;
  std::mutex call_mutex;  // one call at a time
  std::mutex mutex;       // guards call, generation, busy
  std::condition_variable_any wake;
  std::condition_variable done;
  Call* call = nullptr;
  std::uint64_t generation = 0;       // which call `call` is, so a worker takes each call once
  unsigned busy = 0;                  // workers inside the current call
  std::vector<std::jthread> workers;  // last: stopped and joined before the members above go
};

ValidationPool::ValidationPool(unsigned threads)
    : impl_(std::make_unique<Impl>(
          threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency()))) {}

ValidationPool::~ValidationPool() = default;

unsigned ValidationPool::threads() const { return impl_->threads; }

std::vector<ValidationResult> ValidationPool::validate_all(std::span<const Package> packages,
                                                           const View& view,
                                                           const ValidationOptions& options) {
  std::vector<ValidationResult> results(packages.size());
  Call call{packages, view, options, results};
  if (impl_->workers.empty() || packages.size() <= 1) {
    call.run();
  } else {
    impl_->share(call);
  }
  if (call.error) std::rethrow_exception(call.error);
  return results;
}

}  // namespace mchain
