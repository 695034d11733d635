#include "chain/crypto/hash.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

using mchain::as_bytes;
using mchain::Bytes;
using mchain::ByteView;
using mchain::to_hex;
namespace crypto = mchain::crypto;

namespace {

// The FIPS 180 example messages.
constexpr std::string_view kAbc = "abc";
constexpr std::string_view k448Bits = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
constexpr std::string_view k896Bits =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
    "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

std::string million_a() { return std::string(1'000'000, 'a'); }

// RFC 4231 section 4.7 (Test Case 6) data.
constexpr std::string_view kRfc4231Case6Data =
    "Test Using Larger Than Block-Size Key - Hash Key First";

}  // namespace

// Expected digests: NIST FIPS 180-4 example values (SHA256.pdf / SHA512.pdf from the CSRC
// "Examples with Intermediate Values" page); the empty-string digests are from the same set of
// NIST SHA-2 examples.
TEST(Sha256Kat, EmptyString) {
  EXPECT_EQ(to_hex(crypto::sha256({})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Kat, Abc) {
  EXPECT_EQ(to_hex(crypto::sha256(as_bytes(kAbc))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Kat, TwoBlockMessage448Bits) {
  EXPECT_EQ(to_hex(crypto::sha256(as_bytes(k448Bits))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Kat, OneMillionA) {
  EXPECT_EQ(to_hex(crypto::sha256(as_bytes(million_a()))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha512Kat, EmptyString) {
  EXPECT_EQ(to_hex(crypto::sha512({})),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
            "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
}

TEST(Sha512Kat, Abc) {
  EXPECT_EQ(to_hex(crypto::sha512(as_bytes(kAbc))),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

TEST(Sha512Kat, TwoBlockMessage896Bits) {
  EXPECT_EQ(to_hex(crypto::sha512(as_bytes(k896Bits))),
            "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
            "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909");
}

TEST(Sha512Kat, OneMillionA) {
  EXPECT_EQ(to_hex(crypto::sha512(as_bytes(million_a()))),
            "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
            "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
}

TEST(Sha256Incremental, MatchesOneShotAtEverySplit) {
  const std::string data(std::string(k896Bits) + std::string(k448Bits));
  const auto expected = crypto::sha256(as_bytes(data));
  for (std::size_t split = 0; split <= data.size(); ++split) {
    crypto::Sha256 h;
    h.update(as_bytes(std::string_view(data).substr(0, split)))
        .update(as_bytes(std::string_view(data).substr(split)));
    ASSERT_EQ(h.finish(), expected) << "split at " << split;
  }
}

TEST(Sha256Incremental, MillionAInPieces) {
  crypto::Sha256 h;
  const std::string chunk(997, 'a');  // not a divisor of the 64-byte block
  std::size_t left = 1'000'000;
  while (left > 0) {
    std::size_t n = std::min(left, chunk.size());
    h.update(as_bytes(std::string_view(chunk).substr(0, n)));
    left -= n;
  }
  EXPECT_EQ(to_hex(h.finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha512Incremental, MillionAInPiecesAndReuse) {
  crypto::Sha512 h;
  const std::string chunk(1009, 'a');  // not a divisor of the 128-byte block
  std::size_t left = 1'000'000;
  while (left > 0) {
    std::size_t n = std::min(left, chunk.size());
    h.update(as_bytes(std::string_view(chunk).substr(0, n)));
    left -= n;
  }
  EXPECT_EQ(to_hex(h.finish()),
            "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
            "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
  h.update(as_bytes(kAbc));
  EXPECT_EQ(h.finish(), crypto::sha512(as_bytes(kAbc)));
}

TEST(Sha256Incremental, ReusableAfterFinishAndMovable) {
  crypto::Sha256 h;
  h.update(as_bytes(kAbc));
  EXPECT_EQ(h.finish(), crypto::sha256(as_bytes(kAbc)));
  // finish() resets: the next digest covers only what follows.
  EXPECT_EQ(h.finish(), crypto::sha256({}));
  h.update(as_bytes("ab"));
  crypto::Sha256 moved(std::move(h));
  moved.update(as_bytes("c"));
  EXPECT_EQ(moved.finish(), crypto::sha256(as_bytes(kAbc)));
  crypto::Sha256 assigned;
  assigned = std::move(moved);
  assigned.update(as_bytes(kAbc));
  EXPECT_EQ(assigned.finish(), crypto::sha256(as_bytes(kAbc)));
}

TEST(Sha256Threads, ConcurrentHashesAgree) {
  const Bytes data(3000, 0x5a);
  const auto expected = crypto::sha256(data);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        if (crypto::sha256(data) != expected) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

// RFC 4231 section 4.2 (Test Case 1), 4.3 (Test Case 2) and 4.7 (Test Case 6).
TEST(HmacSha256Kat, Rfc4231Case1) {
  const Bytes key(20, 0x0b);
  EXPECT_EQ(to_hex(crypto::hmac_sha256(key, as_bytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HmacSha256Kat, Rfc4231Case2) {
  EXPECT_EQ(to_hex(crypto::hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256Kat, Rfc4231Case6LongKey) {
  const Bytes key(131, 0xaa);
  EXPECT_EQ(to_hex(crypto::hmac_sha256(key, as_bytes(kRfc4231Case6Data))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha512Kat, Rfc4231Case1) {
  const Bytes key(20, 0x0b);
  EXPECT_EQ(to_hex(crypto::hmac_sha512(key, as_bytes("Hi There"))),
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
            "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854");
}

TEST(HmacSha512Kat, Rfc4231Case2) {
  EXPECT_EQ(to_hex(crypto::hmac_sha512(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
            "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
}

TEST(HmacSha512Kat, Rfc4231Case6LongKey) {
  const Bytes key(131, 0xaa);
  EXPECT_EQ(to_hex(crypto::hmac_sha512(key, as_bytes(kRfc4231Case6Data))),
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
            "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598");
}

TEST(HmacProperties, EmptyKeyEqualsAllZeroBlockKey) {
  // HMAC pads short keys with zeros to the block size, so these keys are equivalent.
  const Bytes zero64(64, 0);
  const Bytes zero128(128, 0);
  EXPECT_EQ(crypto::hmac_sha256({}, as_bytes("m")), crypto::hmac_sha256(zero64, as_bytes("m")));
  EXPECT_EQ(crypto::hmac_sha512({}, as_bytes("m")), crypto::hmac_sha512(zero128, as_bytes("m")));
}

TEST(HmacProperties, KeyChangesBetweenCallsTakeEffect) {
  // The per-thread HMAC context is re-keyed on each call; a stale key would show up here.
  const auto a1 = crypto::hmac_sha256(as_bytes("key-a"), as_bytes("m"));
  const auto b = crypto::hmac_sha256(as_bytes("key-b"), as_bytes("m"));
  const auto a2 = crypto::hmac_sha256(as_bytes("key-a"), as_bytes("m"));
  EXPECT_NE(a1, b);
  EXPECT_EQ(a1, a2);
}

TEST(RandomBytes, FillsAndDiffers) {
  std::set<Bytes> seen;
  for (int i = 0; i < 16; ++i) {
    Bytes buf(32, 0);
    crypto::random_bytes(buf);
    seen.insert(buf);
  }
  EXPECT_EQ(seen.size(), 16u);
  crypto::random_bytes({});  // an empty span is fine
}
