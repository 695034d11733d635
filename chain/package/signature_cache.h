// A cache of signature checks that passed, so that a package validated on arrival is not
// verified again when a consensus round re-validates it (as Bitcoin Core's signature cache).
//
// An entry names exactly what was verified: the package id and, per role (vm, user, node),
// the key and the signature bytes. A different key (a rotated node key, another VM key) or
// different signature bytes under the same id (another signature, or a tampered one) is a
// different entry, so a hit can only stand for checks that really passed.
//
// Thread-safe; bounded: at capacity the oldest-inserted entry goes first.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_set>

#include "chain/crypto/sign.h"
#include "chain/types.h"

namespace mchain {

class SignatureCache {
 public:
  static constexpr std::size_t kDefaultCapacity = 200'000;

  // One role's part of an entry; a role without a signature leaves both null.
  struct Checked {
    const crypto::PublicKey* key = nullptr;
    const crypto::Signature* signature = nullptr;
  };
  // SHA-256 over "mchain/sigcache/v1", the id and the roles in order vm, user, node.
  static Hash256 entry(const Hash256& package_id, const std::array<Checked, 3>& roles);

  explicit SignatureCache(std::size_t capacity = kDefaultCapacity);  // 0: stores nothing
  SignatureCache(const SignatureCache&) = delete;
  SignatureCache& operator=(const SignatureCache&) = delete;

  // Counts a hit or a miss.
  bool contains(const Hash256& entry) const;
  // Inserting an entry already present changes nothing (not even its age).
  void insert(const Hash256& entry);
  std::size_t size() const;
  std::size_t capacity() const { return capacity_; }

  struct Stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
  };
  Stats stats() const;

 private:
  // Entries are SHA-256 outputs, uniform already; and only verified signatures get in, so
  // flooding one bucket would cost a signature per try.
  struct EntryHash {
    std::size_t operator()(const Hash256& h) const;
  };

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_set<Hash256, EntryHash> entries_;
  std::deque<Hash256> order_;  // insertion order, oldest first
  mutable Stats stats_;
};

}  // namespace mchain
