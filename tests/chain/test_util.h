// Helpers shared by the chain tests: hex test data, unwrapping results, fixed keys.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "chain/crypto/sign.h"
#include "chain/error.h"
#include "chain/types.h"

namespace mchain::testing {

// Test data written as hex; a typo fails the test instead of silently producing no bytes.
inline Bytes hex(std::string_view text) {
  auto bytes = from_hex(text);
  if (!bytes) {
    ADD_FAILURE() << "bad hex in test data: " << text;
    return {};
  }
  return *bytes;
}

template <std::size_t N>
std::array<std::uint8_t, N> hex_array(std::string_view text) {
  Bytes bytes = hex(text);
  std::array<std::uint8_t, N> out{};
  EXPECT_EQ(bytes.size(), N);
  std::copy_n(bytes.begin(), std::min(N, bytes.size()), out.begin());
  return out;
}

// The value of a result that the test requires to succeed.
template <class T>
T must(Result<T> result) {
  EXPECT_TRUE(result.has_value()) << result.error().message;
  return *std::move(result);
}

inline crypto::PrivateKey make_key(crypto::SigAlg alg = crypto::SigAlg::ecdsa_p256_sha256) {
  return must(crypto::PrivateKey::generate(alg));
}

inline std::string base64(ByteView data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                          static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// The unencrypted PKCS#8 PEM (RFC 8410) of an Ed25519 key given by its 32-byte seed: a fixed
// 16-byte DER prefix, then the seed.
inline std::string ed25519_pkcs8_pem(ByteView seed) {
  Bytes der = hex("302e020100300506032b657004220420");
  der.insert(der.end(), seed.begin(), seed.end());
  return "-----BEGIN PRIVATE KEY-----\n" + base64(der) + "\n-----END PRIVATE KEY-----\n";
}

// A fixed Ed25519 key, so that signatures in golden vectors are deterministic.
inline crypto::PrivateKey ed25519_from_seed(std::string_view seed_hex) {
  return must(crypto::PrivateKey::from_pem(ed25519_pkcs8_pem(hex(seed_hex))));
}

}  // namespace mchain::testing
