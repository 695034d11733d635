#include "chain/package/signature_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "chain/crypto/hash.h"
#include "test_world.h"

namespace mchain {
namespace {

using testing::kT0;
using testing::make_key;
using testing::must;
using testing::World;

Hash256 numbered(std::uint64_t n) {
  Bytes text(8);
  for (int i = 0; i < 8; ++i) text[i] = static_cast<std::uint8_t>(n >> (8 * i));
  return crypto::sha256(text);
}

// The package with one role's signature bytes changed: the same id (the id covers only the
// unsigned package), and a signature that no longer verifies.
Package tampered(const Package& package, Role role) {
  Bytes encoded = package.encode();
  const Bytes& signature = package.signature(role)->bytes;
  auto at = std::search(encoded.begin(), encoded.end(), signature.begin(), signature.end());
  EXPECT_NE(at, encoded.end());
  at[31] ^= 1;  // the last byte of ECDSA's r (Ed25519's R): still well formed, now wrong
  Package out = must(Package::decode(encoded));
  EXPECT_EQ(out.id(), package.id());
  EXPECT_NE(out.signature(role), package.signature(role));
  return out;
}

TEST(SignatureCacheEntry, NamesIdKeysAndSignaturesInRoleOrder) {
  auto k1 = make_key();
  auto k2 = make_key(crypto::SigAlg::ed25519);
  const crypto::Signature s1 = must(k1.sign(as_bytes("m")));
  const crypto::Signature s2 = must(k2.sign(as_bytes("m")));
  crypto::Signature s1_changed = s1;
  s1_changed.bytes[0] ^= 1;
  const Hash256 id = numbered(1);
  using C = SignatureCache::Checked;
  const auto& pk1 = k1.public_key();
  const auto& pk2 = k2.public_key();

  const Hash256 base = SignatureCache::entry(id, {C{&pk1, &s1}, C{}, C{&pk2, &s2}});
  EXPECT_EQ(base, SignatureCache::entry(id, {C{&pk1, &s1}, C{}, C{&pk2, &s2}}));
  const std::vector<Hash256> others = {
      SignatureCache::entry(numbered(2), {C{&pk1, &s1}, C{}, C{&pk2, &s2}}),  // id
      SignatureCache::entry(id, {C{&pk2, &s1}, C{}, C{&pk2, &s2}}),           // a key
      SignatureCache::entry(id, {C{&pk1, &s1_changed}, C{}, C{&pk2, &s2}}),   // a signature
      SignatureCache::entry(id, {C{}, C{&pk1, &s1}, C{&pk2, &s2}}),           // a role
      SignatureCache::entry(id, {C{&pk1, &s1}, C{}, C{}}),                    // one absent
      SignatureCache::entry(id, {C{nullptr, &s1}, C{}, C{&pk2, &s2}}),        // no key
  };
  for (std::size_t i = 0; i < others.size(); ++i) EXPECT_NE(others[i], base) << i;
}

// The entry's layout is fixed (entries from before a change must still mean the same): the
// domain, the id, then per role a tag (0 absent, 1 signed, 2 signed without a key), the key's
// algorithm, length and bytes, and the signature's algorithm, length and bytes.
TEST(SignatureCacheEntry, IsSha256OfTheDocumentedLayout) {
  auto k1 = make_key();
  auto k2 = make_key(crypto::SigAlg::ed25519);
  const crypto::Signature s1 = must(k1.sign(as_bytes("m")));
  const crypto::Signature s2 = must(k2.sign(as_bytes("m")));
  const Hash256 id = numbered(7);
  auto length = [](std::size_t n) {
    return Bytes{static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                 static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  };
  auto tag = [](std::uint8_t b) { return Bytes{b}; };
  crypto::Sha256 sha;
  sha.update(as_bytes("mchain/sigcache/v1")).update(id);
  sha.update(tag(1)).update(tag(static_cast<std::uint8_t>(k1.public_key().alg())));
  sha.update(length(k1.public_key().raw().size())).update(k1.public_key().raw());
  sha.update(tag(static_cast<std::uint8_t>(s1.alg))).update(length(s1.bytes.size()));
  sha.update(s1.bytes);
  sha.update(tag(0));
  sha.update(tag(2)).update(tag(static_cast<std::uint8_t>(s2.alg)));
  sha.update(length(s2.bytes.size())).update(s2.bytes);
  using C = SignatureCache::Checked;
  const auto& pk1 = k1.public_key();
  EXPECT_EQ(SignatureCache::entry(id, {C{&pk1, &s1}, C{}, C{nullptr, &s2}}), sha.finish());
}

TEST(SignatureCache, ContainsWhatWasInsertedAndCounts) {
  SignatureCache cache(10);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.contains(numbered(1)));
  cache.insert(numbered(1));
  cache.insert(numbered(1));  // again: no second entry
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_TRUE(cache.contains(numbered(1)));
  EXPECT_TRUE(cache.contains(numbered(1)));
  EXPECT_FALSE(cache.contains(numbered(2)));
  EXPECT_EQ(cache.stats().hits, 2u);
  EXPECT_EQ(cache.stats().misses, 2u);
}

TEST(SignatureCache, EvictsOldestInsertedAtCapacity) {
  SignatureCache cache(3);
  for (std::uint64_t n = 1; n <= 3; ++n) cache.insert(numbered(n));
  cache.insert(numbered(1));  // already there: keeps its age
  cache.insert(numbered(4));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_FALSE(cache.contains(numbered(1)));
  for (std::uint64_t n = 2; n <= 4; ++n) EXPECT_TRUE(cache.contains(numbered(n))) << n;
  for (std::uint64_t n = 5; n <= 100; ++n) cache.insert(numbered(n));
  EXPECT_EQ(cache.size(), 3u);
  for (std::uint64_t n = 98; n <= 100; ++n) EXPECT_TRUE(cache.contains(numbered(n))) << n;
  EXPECT_FALSE(cache.contains(numbered(97)));
}

TEST(SignatureCache, ZeroCapacityStoresNothing) {
  SignatureCache cache(0);
  cache.insert(numbered(1));
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.contains(numbered(1)));
}

TEST(SignatureCache, ConcurrentInsertAndContains) {
  constexpr int kThreads = 8;
  constexpr std::uint64_t kPerThread = 2000;
  SignatureCache roomy(kThreads * kPerThread);
  SignatureCache small(500);  // evicts all the time
  std::atomic<int> missing{0};
  {
    std::vector<std::jthread> threads;
    for (int k = 0; k < kThreads; ++k) {
      threads.emplace_back([&, k] {
        for (std::uint64_t i = 0; i < kPerThread; ++i) {
          const Hash256 e = numbered(k * kPerThread + i);
          roomy.insert(e);
          small.insert(e);
          if (!roomy.contains(e)) ++missing;
          small.contains(e);
          small.contains(numbered(k * kPerThread + i / 2));
        }
      });
    }
  }
  EXPECT_EQ(missing.load(), 0);
  EXPECT_EQ(roomy.size(), kThreads * kPerThread);
  EXPECT_EQ(roomy.stats().hits, kThreads * kPerThread);
  EXPECT_EQ(small.size(), 500u);
  EXPECT_EQ(small.stats().hits + small.stats().misses, 2 * kThreads * kPerThread);
}

// validate() with a cache.
class CachedValidate : public ::testing::Test {
 protected:
  ValidationResult check(const Package& p, const View& view) {
    ValidationOptions options = w.at(p.header().timestamp);
    options.signature_cache = &cache;
    return validate(p, view, options);
  }
  ValidationResult check(const Package& p) { return check(p, w.view); }

  World w;
  SignatureCache cache;
};

TEST_F(CachedValidate, IdenticalPackageHits) {
  const Package p = w.data(kT0 + 100);
  EXPECT_TRUE(check(p).ok());
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().hits, 0u);
  const Package copy = must(Package::decode(p.encode()));
  EXPECT_TRUE(check(copy).ok());
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(CachedValidate, HitSkipsVerification) {
  // An entry for signatures that do not verify, put there by hand: validate() trusts it, which
  // shows that a hit stands in for the verifications.
  const Package bad = tampered(w.data(kT0 + 100), Role::node);
  EXPECT_EQ(w.check(bad).verdict, Verdict::bad_node_signature);
  std::array<SignatureCache::Checked, 3> roles{
      {{&w.vm_key.public_key(), &*bad.signature(Role::vm)},
       {&w.alice.public_key(), &*bad.signature(Role::user)},
       {&w.node1.public_key(), &*bad.signature(Role::node)}}};
  cache.insert(SignatureCache::entry(bad.id(), roles));
  EXPECT_TRUE(check(bad).ok());
  EXPECT_EQ(cache.stats().hits, 1u);
}

TEST_F(CachedValidate, TamperedSignatureMissesAndIsRejected) {
  const Package p = w.data(kT0 + 100);
  ASSERT_TRUE(check(p).ok());
  for (Role role : {Role::vm, Role::user, Role::node}) {
    ValidationResult r = check(tampered(p, role));
    EXPECT_FALSE(r.ok()) << to_string(role);
  }
  EXPECT_EQ(check(tampered(p, Role::node)).verdict, Verdict::bad_node_signature);
  EXPECT_EQ(cache.stats().hits, 0u);
  EXPECT_EQ(cache.size(), 1u);  // failures are not recorded
}

TEST_F(CachedValidate, AnotherValidSignatureMissesAndIsRecorded) {
  // ECDSA signing is randomised: the same content signed again has the same id and other
  // signature bytes, which were never verified.
  const Package p = w.data(kT0 + 100);
  const Package again = must(Package::sign(p.content(), w.signers("node-1")));
  ASSERT_EQ(again.id(), p.id());
  ASSERT_NE(again.signature(Role::node), p.signature(Role::node));
  ASSERT_TRUE(check(p).ok());
  EXPECT_TRUE(check(again).ok());
  EXPECT_EQ(cache.stats().hits, 0u);
  EXPECT_EQ(cache.size(), 2u);
}

TEST_F(CachedValidate, RotatedKeyMisses) {
  const Package p = w.data(kT0 + 100);
  ASSERT_TRUE(check(p).ok());
  // Another view in which node-1's key at the package's time is another one.
  MemoryView rotated = w.view;
  auto new_key = make_key();
  rotated.add_node("node-1", new_key.public_key(), kT0 + 50);
  EXPECT_EQ(check(p, rotated).verdict, Verdict::bad_node_signature);
  EXPECT_EQ(cache.stats().hits, 0u);
  EXPECT_TRUE(check(p).ok());  // under the old key it still hits
  EXPECT_EQ(cache.stats().hits, 1u);
}

TEST_F(CachedValidate, FailuresAreNotRecorded) {
  auto other_vm = make_key();
  const Package p =
      must(make_data_package({w.vm, "alice", "node-1", kT0 + 100}, w.policy1.ref(), w.data_key,
                             as_bytes("x"), {&other_vm, &w.alice, &w.node1}));
  EXPECT_EQ(check(p).verdict, Verdict::bad_vm_signature);
  EXPECT_EQ(check(p).verdict, Verdict::bad_vm_signature);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.stats().hits, 0u);
}

TEST_F(CachedValidate, ViewChecksStillRunOnAHit) {
  const Package p = w.data(kT0 + 100);
  ASSERT_TRUE(check(p).ok());
  w.accept(p);  // now on the chain
  EXPECT_EQ(check(p).verdict, Verdict::duplicate);
  // And a policy revision since: the package's policy is stale at a later time.
  const Package later = w.data(kT0 + 300);
  ASSERT_TRUE(check(later).ok());
  PolicyRecord v2 = w.policy1;
  v2.version = 2;
  w.accept(
      must(make_policy_package({w.vm, "alice", "node-1", kT0 + 200}, v2, w.signers("node-1"))));
  EXPECT_EQ(check(later).verdict, Verdict::stale_policy);
}

}  // namespace
}  // namespace mchain
