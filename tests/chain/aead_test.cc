#include "chain/crypto/aead.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "test_util.h"

using mchain::as_bytes;
using mchain::Bytes;
using mchain::ByteView;
using mchain::to_hex;
namespace crypto = mchain::crypto;
using mchain::testing::hex;
using mchain::testing::hex_array;

namespace {

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", appendix B, Test Case 16:
// AES-256, 96-bit IV, 60-byte plaintext, 20-byte additional data.
struct GcmCase16 {
  crypto::AeadKey key =
      hex_array<32>("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  crypto::AeadNonce nonce = hex_array<12>("cafebabefacedbaddecaf888");
  Bytes plaintext =
      hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  Bytes aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  std::string ciphertext_hex =
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662";
  std::string tag_hex = "76fc6ece0f4e1768cddf8853bb2d551b";
};

}  // namespace

TEST(AesGcmKat, McGrewViegaTestCase16Seal) {
  GcmCase16 tc;
  Bytes sealed = crypto::aes256gcm_seal(tc.key, tc.nonce, tc.aad, tc.plaintext);
  ASSERT_EQ(sealed.size(), tc.plaintext.size() + crypto::kAeadTagSize);
  EXPECT_EQ(to_hex(ByteView(sealed).first(tc.plaintext.size())), tc.ciphertext_hex);
  EXPECT_EQ(to_hex(ByteView(sealed).last(crypto::kAeadTagSize)), tc.tag_hex);
}

TEST(AesGcmKat, McGrewViegaTestCase16Open) {
  GcmCase16 tc;
  Bytes sealed = hex(tc.ciphertext_hex + tc.tag_hex);
  auto opened = crypto::aes256gcm_open(tc.key, tc.nonce, tc.aad, sealed);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(*opened, tc.plaintext);
}

TEST(AesGcmKat, TamperingIsDetected) {
  GcmCase16 tc;
  const Bytes sealed = hex(tc.ciphertext_hex + tc.tag_hex);
  auto expect_auth_failure = [&](const crypto::AeadKey& key, const crypto::AeadNonce& nonce,
                                 ByteView aad, ByteView input, const char* what) {
    auto opened = crypto::aes256gcm_open(key, nonce, aad, input);
    ASSERT_FALSE(opened.has_value()) << what;
    EXPECT_NE(opened.error().message.find("authentication failed"), std::string::npos)
        << opened.error().message;
  };
  for (std::size_t i : {std::size_t{0}, std::size_t{30}, sealed.size() - 17}) {
    Bytes bad = sealed;
    bad[i] ^= 0x01;
    expect_auth_failure(tc.key, tc.nonce, tc.aad, bad, "flipped ciphertext bit");
  }
  for (std::size_t i : {sealed.size() - 16, sealed.size() - 1}) {
    Bytes bad = sealed;
    bad[i] ^= 0x80;
    expect_auth_failure(tc.key, tc.nonce, tc.aad, bad, "flipped tag bit");
  }
  Bytes bad_aad = tc.aad;
  bad_aad[5] ^= 0x01;
  expect_auth_failure(tc.key, tc.nonce, bad_aad, sealed, "flipped aad bit");
  expect_auth_failure(tc.key, tc.nonce, {}, sealed, "missing aad");
  crypto::AeadKey bad_key = tc.key;
  bad_key[31] ^= 0x01;
  expect_auth_failure(bad_key, tc.nonce, tc.aad, sealed, "wrong key");
  crypto::AeadNonce bad_nonce = tc.nonce;
  bad_nonce[0] ^= 0x01;
  expect_auth_failure(tc.key, bad_nonce, tc.aad, sealed, "wrong nonce");
  // Dropping a ciphertext byte shifts the tag: also an authentication failure.
  Bytes shorter(sealed.begin() + 1, sealed.end());
  expect_auth_failure(tc.key, tc.nonce, tc.aad, shorter, "truncated ciphertext");
}

TEST(AesGcmKat, ShortInputIsRejected) {
  GcmCase16 tc;
  for (std::size_t n : {0u, 1u, 15u}) {
    auto opened = crypto::aes256gcm_open(tc.key, tc.nonce, tc.aad, Bytes(n, 0));
    ASSERT_FALSE(opened.has_value());
    EXPECT_NE(opened.error().message.find("shorter than the 16-byte tag"), std::string::npos)
        << opened.error().message;
  }
}

TEST(AesGcmRoundTrip, EmptyAndLargeMessages) {
  const crypto::AeadKey key = crypto::random_aead_key();
  for (std::size_t size : {0u, 1u, 16u, 1000u, 1u << 20}) {
    const crypto::AeadNonce nonce = crypto::random_aead_nonce();
    Bytes plaintext(size);
    for (std::size_t i = 0; i < size; ++i) plaintext[i] = static_cast<std::uint8_t>(i * 7);
    Bytes sealed = crypto::aes256gcm_seal(key, nonce, as_bytes("header"), plaintext);
    ASSERT_EQ(sealed.size(), size + crypto::kAeadTagSize);
    auto opened = crypto::aes256gcm_open(key, nonce, as_bytes("header"), sealed);
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    EXPECT_EQ(*opened, plaintext);
  }
}

TEST(AesGcmRoundTrip, RandomKeysAndNoncesDiffer) {
  EXPECT_NE(crypto::random_aead_key(), crypto::random_aead_key());
  EXPECT_NE(crypto::random_aead_nonce(), crypto::random_aead_nonce());
}
