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

void put_length(Bytes& out, std::size_t n) {
  const std::array<std::uint8_t, 4> be{
      static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
      static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  out.insert(out.end(), be.begin(), be.end());
}

void put(Bytes& out, ByteView bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); }

}  // namespace

Hash256 SignatureCache::entry(const Hash256& package_id, const std::array<Checked, 3>& roles) {
  // Laid out whole, then hashed in one call: every package of a round computes its entry,
  // and a streaming hasher (a digest context per call, an update per field) cost more than
  // the hashing itself.
  std::size_t size = kDomain.size() + package_id.size();
  for (const Checked& role : roles) {
    size += 1;
    if (role.signature == nullptr) continue;
    if (role.key != nullptr) size += 1 + 4 + role.key->raw().size();
    size += 1 + 4 + role.signature->bytes.size();
  }
  Bytes preimage;
  preimage.reserve(size);
  put(preimage, as_bytes(kDomain));
  put(preimage, package_id);
  for (const Checked& role : roles) {
    if (role.signature == nullptr) {
      preimage.push_back(kAbsent);
      continue;
    }
    preimage.push_back(role.key != nullptr ? kSigned : kSignedNoKey);
    if (role.key != nullptr) {
      preimage.push_back(static_cast<std::uint8_t>(role.key->alg()));
      put_length(preimage, role.key->raw().size());
      put(preimage, role.key->raw());
    }
    preimage.push_back(static_cast<std::uint8_t>(role.signature->alg));
    put_length(preimage, role.signature->bytes.size());
    put(preimage, role.signature->bytes);
  }
  return crypto::sha256(preimage);
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
