#include "chain/package/signature_cache.h"

#include <cstring>

#include "chain/crypto/hash.h"

namespace mchain {

namespace {

constexpr std::string_view kDomain = "mchain/sigcache/v1";

// Role tags: the roles sit at fixed positions, so only presence needs a tag; lengths prefix
// every variable field, so no two role lists encode alike.
constexpr std::uint8_t kAbsent = 0;
constexpr std::uint8_t kSigned = 1;
constexpr std::uint8_t kSignedNoKey = 2;  // never verifies; distinct anyway

void put_length(crypto::Sha256& sha, std::size_t n) {
  const std::array<std::uint8_t, 4> be{
      static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
      static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  sha.update(be);
}

void put_byte(crypto::Sha256& sha, std::uint8_t b) { sha.update(ByteView(&b, 1)); }

}  // namespace

Hash256 SignatureCache::entry(const Hash256& package_id, const std::array<Checked, 3>& roles) {
  crypto::Sha256 sha;
  sha.update(as_bytes(kDomain)).update(package_id);
  for (const Checked& role : roles) {
    if (role.signature == nullptr) {
      put_byte(sha, kAbsent);
      continue;
    }
    put_byte(sha, role.key != nullptr ? kSigned : kSignedNoKey);
    if (role.key != nullptr) {
      put_byte(sha, static_cast<std::uint8_t>(role.key->alg()));
      put_length(sha, role.key->raw().size());
      sha.update(role.key->raw());
    }
    put_byte(sha, static_cast<std::uint8_t>(role.signature->alg));
    put_length(sha, role.signature->bytes.size());
    sha.update(role.signature->bytes);
  }
  return sha.finish();
}

std::size_t SignatureCache::EntryHash::operator()(const Hash256& h) const {
  std::size_t out;
  std::memcpy(&out, h.data(), sizeof out);
  return out;
}

SignatureCache::SignatureCache(std::size_t capacity) : capacity_(capacity) {}

bool SignatureCache::contains(const Hash256& entry) const {
  std::lock_guard lock(mutex_);
  const bool hit = entries_.contains(entry);
  ++(hit ? stats_.hits : stats_.misses);
  return hit;
}

void SignatureCache::insert(const Hash256& entry) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mutex_);
  if (!entries_.insert(entry).second) return;
  order_.push_back(entry);
  if (order_.size() > capacity_) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
}

std::size_t SignatureCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

SignatureCache::Stats SignatureCache::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace mchain
