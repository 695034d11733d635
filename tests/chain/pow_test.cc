#include "chain/pow/pow.h"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "chain/crypto/hash.h"
#include "chain/pow/sha256_compress.h"
#include "test_util.h"

namespace mchain {

using testing::hex_array;

namespace {

constexpr std::uint64_t kMaxLo = std::numeric_limits<std::uint64_t>::max();

// Runs a test body on one compression implementation; always returns to the automatic choice.
class ImplTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sha_ni" && !pow::sha256_ni_available()) {
      GTEST_SKIP() << "this CPU has no SHA extensions";
    }
    pow::sha256_force_portable(GetParam() == "portable");
    ASSERT_EQ(pow::sha256_compress_impl(), GetParam() == "portable" ? "portable" : "sha-ni");
  }
  void TearDown() override { pow::sha256_force_portable(false); }
};

std::string impl_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

}  // namespace

// ---- the compression function

using Sha256CompressImpl = ImplTest;

// FIPS 180-4 example digests (NIST "Examples with Intermediate Values", SHA256.pdf).
TEST_P(Sha256CompressImpl, FipsAbc) {
  EXPECT_EQ(to_hex(pow::sha256_via_midstate(as_bytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_P(Sha256CompressImpl, FipsTwoBlocks) {
  EXPECT_EQ(to_hex(pow::sha256_via_midstate(
                as_bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

// Every length from 0 to 300 bytes crosses each padding case (tail < 56, 56..63, whole
// blocks) several times; OpenSSL is the reference.
TEST_P(Sha256CompressImpl, RandomMessagesMatchOpenSsl) {
  std::mt19937_64 rng(20240613);
  for (std::size_t length = 0; length <= 300; ++length) {
    for (int round = 0; round < 4; ++round) {
      Bytes message(length);
      for (auto& b : message) b = static_cast<std::uint8_t>(rng());
      ASSERT_EQ(to_hex(pow::sha256_via_midstate(message)), to_hex(crypto::sha256(message)))
          << "length " << length;
    }
  }
}

// A midstate taken after some whole blocks finishes to the same digest, and finish() leaves
// it unchanged.
TEST_P(Sha256CompressImpl, MidstateResumes) {
  std::mt19937_64 rng(7);
  Bytes message(300);
  for (auto& b : message) b = static_cast<std::uint8_t>(rng());
  const ByteView all(message);
  for (std::size_t blocks = 0; blocks <= 4; ++blocks) {
    pow::Midstate m;
    for (std::size_t i = 0; i < blocks; ++i) m.compress(all.subspan(64 * i).first<64>());
    EXPECT_EQ(m.length(), 64 * blocks);
    const pow::Sha256State before = m.state();
    EXPECT_EQ(m.finish(all.subspan(64 * blocks)), crypto::sha256(message));
    EXPECT_EQ(m.state(), before);
  }
  EXPECT_EQ(pow::Midstate().state(), pow::kSha256Init);
}

INSTANTIATE_TEST_SUITE_P(Sha256Compress, Sha256CompressImpl,
                         ::testing::Values("portable", "sha_ni"), impl_name);

// The two implementations on arbitrary states, not only the ones reachable from H(0).
TEST(Sha256Compress, ShaNiMatchesPortableOnRandomStates) {
  if (!pow::sha256_ni_available()) GTEST_SKIP() << "this CPU has no SHA extensions";
  std::mt19937_64 rng(99);
  for (int i = 0; i < 2000; ++i) {
    pow::Sha256State state;
    for (auto& w : state) w = static_cast<std::uint32_t>(rng());
    std::array<std::uint8_t, 64> block;
    for (auto& b : block) b = static_cast<std::uint8_t>(rng());
    pow::Sha256State portable = state;
    pow::Sha256State sha_ni = state;
    pow::sha256_compress_portable(portable, block.data());
    pow::sha256_compress_sha_ni(sha_ni, block.data());
    ASSERT_EQ(portable, sha_ni) << "block " << i;
  }
}

TEST(Sha256Compress, ImplementationNameFollowsTheCpu) {
  EXPECT_EQ(pow::sha256_compress_impl(), pow::sha256_ni_available() ? "sha-ni" : "portable");
  pow::sha256_force_portable(true);
  EXPECT_EQ(pow::sha256_compress_impl(), "portable");
  pow::sha256_force_portable(false);
}

// ---- difficulty

namespace {

Hash256 hash_with_bits(std::initializer_list<unsigned> ones) {
  Hash256 h{};
  for (unsigned i : ones) h[i / 8] |= static_cast<std::uint8_t>(0x80u >> (i % 8));
  return h;
}

Hash256 all_bits_from(unsigned first) {
  Hash256 h{};
  for (unsigned i = first; i < 256; ++i) h[i / 8] |= static_cast<std::uint8_t>(0x80u >> (i % 8));
  return h;
}

}  // namespace

TEST(PowDifficulty, DataBlockEdgeBits) {
  for (unsigned diff : {1u, 8u, 15u, 16u, 17u}) {
    SCOPED_TRACE("diff " + std::to_string(diff));
    EXPECT_TRUE(pow::meets_difficulty(Hash256{}, pow::kDataType, diff));
    for (unsigned i = 0; i < diff; ++i) {
      EXPECT_FALSE(pow::meets_difficulty(hash_with_bits({i}), pow::kDataType, diff)) << i;
    }
    EXPECT_TRUE(pow::meets_difficulty(hash_with_bits({diff}), pow::kDataType, diff));
    EXPECT_TRUE(pow::meets_difficulty(all_bits_from(diff), pow::kDataType, diff));
    EXPECT_FALSE(pow::meets_difficulty(all_bits_from(diff - 1), pow::kDataType, diff));
  }
}

TEST(PowDifficulty, PolicyBlockEdgeBits) {
  for (unsigned diff : {1u, 8u, 15u, 16u, 17u}) {
    SCOPED_TRACE("diff " + std::to_string(diff));
    EXPECT_FALSE(pow::meets_difficulty(Hash256{}, pow::kPolicyType, diff));
    EXPECT_TRUE(pow::meets_difficulty(hash_with_bits({0}), pow::kPolicyType, diff));
    for (unsigned i = 1; i < diff; ++i) {
      EXPECT_FALSE(pow::meets_difficulty(hash_with_bits({0, i}), pow::kPolicyType, diff)) << i;
    }
    EXPECT_TRUE(pow::meets_difficulty(hash_with_bits({0, diff}), pow::kPolicyType, diff));
    Hash256 tail_set = all_bits_from(diff);
    tail_set[0] |= 0x80;
    EXPECT_TRUE(pow::meets_difficulty(tail_set, pow::kPolicyType, diff));
    // A data-block hash never meets a policy difficulty, and the other way round.
    EXPECT_FALSE(pow::meets_difficulty(hash_with_bits({diff}), pow::kPolicyType, diff));
    EXPECT_FALSE(pow::meets_difficulty(hash_with_bits({0}), pow::kDataType, diff));
  }
}

// Every difficulty 1..256 against every single set bit, and bit 0 plus one more, against the
// definition written out once more.
TEST(PowDifficulty, ExhaustiveSingleBits) {
  for (unsigned diff = 1; diff <= 256; ++diff) {
    EXPECT_TRUE(pow::meets_difficulty(Hash256{}, pow::kDataType, diff));
    for (unsigned i = 0; i < 256; ++i) {
      ASSERT_EQ(pow::meets_difficulty(hash_with_bits({i}), pow::kDataType, diff), i >= diff)
          << diff << " " << i;
      ASSERT_EQ(pow::meets_difficulty(hash_with_bits({0, i}), pow::kPolicyType, diff),
                i == 0 || i >= diff)
          << diff << " " << i;
    }
  }
}

TEST(PowDifficulty, InvalidTargetsAreNeverMet) {
  EXPECT_FALSE(pow::meets_difficulty(Hash256{}, pow::kDataType, 0));
  EXPECT_FALSE(pow::meets_difficulty(hash_with_bits({0}), pow::kPolicyType, 0));
  EXPECT_FALSE(pow::meets_difficulty(Hash256{}, pow::kDataType, 257));
  EXPECT_FALSE(pow::meets_difficulty(hash_with_bits({0}), pow::kPolicyType, 1000));
  EXPECT_FALSE(pow::meets_difficulty(Hash256{}, 2, 1));
  EXPECT_FALSE(pow::meets_difficulty(hash_with_bits({0}), 255, 1));
  EXPECT_TRUE(pow::meets_difficulty(Hash256{}, pow::kDataType, 256));
  EXPECT_TRUE(pow::meets_difficulty(hash_with_bits({0}), pow::kPolicyType, 256));
}

// ---- known answers

namespace {

// Headers: version 1, the type and diff given, height 7, timestamp_us 1700000000000000,
// prev = SHA-256("prev"), merkle = SHA-256("merkle"), semi = SHA-256("semi"), nonces 0.
// The expected nonces and hashes were computed once by an independent brute force in Python
// (hashlib.sha256 over the full 136 bytes for nonce_lo = start, start+1, ..., checking the
// difficulty bit by bit), not by this code.
constexpr std::string_view kHeaderData16 =
    "0000000100100000000000000000000700060a24181e400084fd9bac333ad79154348296204fa7f8c537a96e"
    "08983e5f73b3f5aca8e8edf77975edd9e7393c229e744913fe0d0bb86fb4cf46906e2e51152137e20ad15590"
    "8fbbd06a906c38c093777907af638ed1a6507e943a05008659e6d7cd15d67c24000000000000000000000000"
    "00000000";
constexpr std::string_view kHeaderPolicy16 =
    "0000000101100000000000000000000700060a24181e400084fd9bac333ad79154348296204fa7f8c537a96e"
    "08983e5f73b3f5aca8e8edf77975edd9e7393c229e744913fe0d0bb86fb4cf46906e2e51152137e20ad15590"
    "8fbbd06a906c38c093777907af638ed1a6507e943a05008659e6d7cd15d67c24000000000000000000000000"
    "00000000";
constexpr std::string_view kHeaderData20 =
    "0000000100140000000000000000000700060a24181e400084fd9bac333ad79154348296204fa7f8c537a96e"
    "08983e5f73b3f5aca8e8edf77975edd9e7393c229e744913fe0d0bb86fb4cf46906e2e51152137e20ad15590"
    "8fbbd06a906c38c093777907af638ed1a6507e943a05008659e6d7cd15d67c24000000000000000000000000"
    "00000000";

pow::HeaderBytes header(std::string_view hex_text) { return hex_array<pow::kHeaderSize>(hex_text); }

struct Kat {
  std::string_view header_hex;
  std::uint8_t type;
  unsigned diff;
  std::uint64_t hi;
  std::uint64_t lo_begin;
  std::uint64_t nonce_lo;
  std::string_view hash;
};

constexpr Kat kKats[] = {
    {kHeaderData16, pow::kDataType, 16, 0, 0, 13917,
     "000041eb1b94f20bda44b849efdb68ab10b31e362b2940849c6ff0576550c927"},
    {kHeaderPolicy16, pow::kPolicyType, 16, 0, 0, 37246,
     "8000862f940601ba7d521157864522a305efaccb227231667a92604342cc4e87"},
    {kHeaderData20, pow::kDataType, 20, 0, 0, 1326357,
     "0000060f242a89f5f857c1bd7f20b5263d596b450d7574c09bf81a5c06518e63"},
    // nonce_hi 2 (the midstate includes it), and a search that starts past the first answer.
    {kHeaderData16, pow::kDataType, 16, 2, 0, 3827,
     "00001c513f8bc993cf55432b5e23b2a0c6c5ec8a06185480d009c22bfc481b4b"},
    {kHeaderData16, pow::kDataType, 16, 0, 13918, 88509,
     "00009306247c09bf2bd5c59f30bf303ead6952b5a2fc9ae6d37603a7f2a24a95"},
};

}  // namespace

TEST(PowKatHeader, FieldsAreWhereTheLayoutSays) {
  const pow::HeaderBytes h = header(kHeaderPolicy16);
  EXPECT_EQ(h[3], 1);   // version
  EXPECT_EQ(h[4], 1);   // type
  EXPECT_EQ(h[5], 16);  // diff
  EXPECT_EQ(to_hex(ByteView(h).subspan(24, 32)), to_hex(crypto::sha256(as_bytes("prev"))));
  EXPECT_EQ(to_hex(ByteView(h).subspan(56, 32)), to_hex(crypto::sha256(as_bytes("merkle"))));
  EXPECT_EQ(to_hex(ByteView(h).subspan(88, 32)), to_hex(crypto::sha256(as_bytes("semi"))));
}

using PowKat = ImplTest;

TEST_P(PowKat, FindFirstGivesTheKnownNonce) {
  for (const Kat& kat : kKats) {
    SCOPED_TRACE("nonce " + std::to_string(kat.nonce_lo));
    const pow::HeaderBytes tmpl = header(kat.header_hex);
    auto found = pow::find_first(tmpl, kat.diff, kat.type, {kat.hi, kat.lo_begin, kMaxLo});
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->nonce_hi, kat.hi);
    EXPECT_EQ(found->nonce_lo, kat.nonce_lo);
    EXPECT_EQ(to_hex(found->hash), kat.hash);
    EXPECT_EQ(found->hashes_tried, kat.nonce_lo - kat.lo_begin + 1);
    EXPECT_EQ(to_hex(pow::header_hash(pow::with_nonce(tmpl, kat.hi, kat.nonce_lo))), kat.hash);
  }
}

// A range that ends just before the answer finds nothing; one that ends just after finds it.
TEST_P(PowKat, RangeEndIsExclusive) {
  const pow::HeaderBytes tmpl = header(kHeaderData16);
  EXPECT_FALSE(pow::find_first(tmpl, 16, pow::kDataType, {0, 0, 13917}).has_value());
  auto found = pow::find_first(tmpl, 16, pow::kDataType, {0, 13917, 13918});
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->nonce_lo, 13917u);
  EXPECT_FALSE(pow::find_first(tmpl, 16, pow::kDataType, {0, 5, 5}).has_value());
  EXPECT_FALSE(pow::find_first(tmpl, 16, pow::kDataType, {0, 9, 5}).has_value());
}

INSTANTIATE_TEST_SUITE_P(Pow, PowKat, ::testing::Values("portable", "sha_ni"), impl_name);

TEST(PowFindFirst, InvalidTargetsFindNothing) {
  const pow::HeaderBytes tmpl = header(kHeaderData16);
  EXPECT_FALSE(pow::find_first(tmpl, 0, pow::kDataType, {0, 0, kMaxLo}).has_value());
  EXPECT_FALSE(pow::find_first(tmpl, 257, pow::kDataType, {0, 0, kMaxLo}).has_value());
  EXPECT_FALSE(pow::find_first(tmpl, 16, 2, {0, 0, kMaxLo}).has_value());
}

// Difficulties above 32 bits go through the whole-hash check after the first-word filter: at
// diff 33 a nonce passing the filter at diff 32 may still fail, and every answer must meet 33.
TEST(PowFindFirst, LowDifficultiesAndTheFilterBoundary) {
  const pow::HeaderBytes tmpl = header(kHeaderData16);
  for (unsigned diff : {1u, 2u, 5u}) {
    for (std::uint8_t type : {pow::kDataType, pow::kPolicyType}) {
      auto found = pow::find_first(tmpl, diff, type, {0, 0, kMaxLo});
      ASSERT_TRUE(found.has_value());
      EXPECT_TRUE(pow::meets_difficulty(found->hash, type, diff));
      // Every nonce before it fails (checked against OpenSSL).
      for (std::uint64_t lo = 0; lo < found->nonce_lo; ++lo) {
        EXPECT_FALSE(
            pow::meets_difficulty(pow::header_hash(pow::with_nonce(tmpl, 0, lo)), type, diff));
      }
    }
  }
}

// ---- Miner

TEST(Miner, ManyThreadsFindAValidNonce) {
  pow::Miner miner(4);
  const std::atomic<bool> stop{false};
  for (const std::string_view h : {kHeaderData16, kHeaderPolicy16}) {
    const pow::HeaderBytes tmpl = header(h);
    const std::uint8_t type = tmpl[4];
    auto found = miner.mine(tmpl, 16, type, {5, 0, kMaxLo}, stop);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->nonce_hi, 5u);
    const Hash256 reference = pow::header_hash(pow::with_nonce(tmpl, 5, found->nonce_lo));
    EXPECT_EQ(reference, found->hash);
    EXPECT_TRUE(pow::meets_difficulty(reference, type, 16));
    EXPECT_GE(found->hashes_tried, 1u);
    EXPECT_EQ(miner.last_hashes_tried(), found->hashes_tried);
  }
}

// [13900, 13950) holds exactly one answer (13917; the next is 88509), so every thread count
// must find that one.
TEST(Miner, ThreadCountsAgreeWhenTheAnswerIsUnique) {
  const pow::HeaderBytes tmpl = header(kHeaderData16);
  const std::atomic<bool> stop{false};
  for (unsigned threads : {1u, 2u, 3u, 7u, 64u}) {
    pow::Miner miner(threads);
    auto found = miner.mine(tmpl, 16, pow::kDataType, {0, 13900, 13950}, stop);
    ASSERT_TRUE(found.has_value()) << threads;
    EXPECT_EQ(found->nonce_lo, 13917u);
    EXPECT_EQ(to_hex(found->hash),
              "000041eb1b94f20bda44b849efdb68ab10b31e362b2940849c6ff0576550c927");
  }
}

TEST(Miner, ExhaustedRangeReturnsNullopt) {
  const pow::HeaderBytes tmpl = header(kHeaderData16);
  const std::atomic<bool> stop{false};
  for (unsigned threads : {1u, 3u, 8u}) {
    pow::Miner miner(threads);
    EXPECT_FALSE(miner.mine(tmpl, 16, pow::kDataType, {0, 0, 13917}, stop).has_value());
    EXPECT_EQ(miner.last_hashes_tried(), 13917u);  // every nonce once, no more
    EXPECT_FALSE(miner.mine(tmpl, 16, pow::kDataType, {0, 7, 7}, stop).has_value());
    EXPECT_EQ(miner.last_hashes_tried(), 0u);
  }
}

TEST(Miner, StopFromAnotherThreadEndsTheSearch) {
  const pow::HeaderBytes tmpl = header(kHeaderData16);
  pow::Miner miner(2);
  std::atomic<bool> stop{false};
  std::jthread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stop.store(true);
  });
  // Diff 64 in a 2^64 range: in practice never found, so only `stop` ends this.
  EXPECT_FALSE(miner.mine(tmpl, 64, pow::kDataType, {0, 0, kMaxLo}, stop).has_value());
  EXPECT_TRUE(stop.load());
  EXPECT_GT(miner.last_hashes_tried(), 0u);
}

TEST(Miner, AlreadyStoppedDoesNoWork) {
  const pow::HeaderBytes tmpl = header(kHeaderData16);
  pow::Miner miner(3);
  const std::atomic<bool> stop{true};
  EXPECT_FALSE(miner.mine(tmpl, 16, pow::kDataType, {0, 0, kMaxLo}, stop).has_value());
  EXPECT_EQ(miner.last_hashes_tried(), 0u);
}

TEST(Miner, ZeroThreadsMeansHardwareConcurrency) {
  EXPECT_GE(pow::Miner(0).threads(), 1u);
  EXPECT_EQ(pow::Miner(5).threads(), 5u);
}

TEST(Miner, CooperativeSlicesAreDisjoint) {
  std::set<std::uint64_t> his;
  for (unsigned node = 0; node < 4; ++node) {
    const pow::NonceRange r = testing::must(pow::cooperative_slice(node, 4));
    EXPECT_EQ(r.hi, node);
    EXPECT_EQ(r.lo_begin, 0u);
    EXPECT_EQ(r.lo_end, kMaxLo);
    his.insert(r.hi);
  }
  // Distinct nonce_hi values: no (hi, lo) pair, hence no header, is in two slices.
  EXPECT_EQ(his.size(), 4u);
  EXPECT_FALSE(pow::cooperative_slice(4, 4).has_value());
  EXPECT_FALSE(pow::cooperative_slice(0, 0).has_value());

  // Two nodes mining the same template find different headers.
  const pow::HeaderBytes tmpl = header(kHeaderData16);
  auto a = pow::find_first(tmpl, 8, pow::kDataType, *pow::cooperative_slice(0, 4));
  auto b = pow::find_first(tmpl, 8, pow::kDataType, *pow::cooperative_slice(1, 4));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->hash, b->hash);
}

}  // namespace mchain
