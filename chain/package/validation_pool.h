// Validates many packages at once on all cores: in a consensus round a node checks every
// package of the leader's candidate.
//
// Persistent worker threads plus the calling thread take packages one at a time from a shared
// index, so a few slow packages do not leave the other threads idle.
//
// The view is read from several threads at once. Safe: MemoryView as long as nobody calls
// apply() or add_node() during the call (its reads only read), and Store (reads may run
// concurrently with each other and with a writer). Another View must allow concurrent const
// calls. A SignatureCache in the options is shared by all threads; it locks.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "chain/package/validate.h"

namespace mchain {

class ValidationPool {
 public:
  // `threads` counts the calling thread: 1 runs every call inline and starts no thread;
  // 0 means one per hardware thread.
  explicit ValidationPool(unsigned threads = 0);
  ~ValidationPool();
  ValidationPool(const ValidationPool&) = delete;
  ValidationPool& operator=(const ValidationPool&) = delete;

  // results[i] = validate(packages[i], view, options). Concurrent calls take turns. No
  // exception leaves a worker: one from validate (out of memory, a View that throws) is
  // rethrown here once every thread is done with the call, as a sequential loop would throw.
  std::vector<ValidationResult> validate_all(std::span<const Package> packages, const View& view,
                                             const ValidationOptions& options);
  unsigned threads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mchain
