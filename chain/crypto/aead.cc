#include "chain/crypto/aead.h"

#include "chain/crypto/hash.h"
#include "chain/crypto/openssl_util.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <string>

namespace mchain::crypto {

namespace {

using detail::check;

// EVP_*Update take int lengths; longer inputs go through in pieces.
constexpr std::size_t kMaxChunk = 1u << 30;

detail::CipherCtxPtr new_gcm_ctx(const AeadKey& key, const AeadNonce& nonce, bool encrypt) {
  detail::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  check(ctx != nullptr, "EVP_CIPHER_CTX_new");
  // The default GCM IV length is 96 bits, matching kAeadNonceSize.
  int ok = encrypt ? EVP_EncryptInit_ex2(ctx.get(), detail::aes256gcm_cipher(), key.data(),
                                         nonce.data(), nullptr)
                   : EVP_DecryptInit_ex2(ctx.get(), detail::aes256gcm_cipher(), key.data(),
                                         nonce.data(), nullptr);
  check(ok == 1, "AES-256-GCM init");
  return ctx;
}

// Feeds `in` through the cipher; out == nullptr passes associated data.
void gcm_update(EVP_CIPHER_CTX* ctx, bool encrypt, ByteView in, std::uint8_t* out) {
  while (!in.empty()) {
    std::size_t n = std::min(in.size(), kMaxChunk);
    int out_len = 0;
    int ok = encrypt ? EVP_EncryptUpdate(ctx, out, &out_len, in.data(), static_cast<int>(n))
                     : EVP_DecryptUpdate(ctx, out, &out_len, in.data(), static_cast<int>(n));
    // GCM is a stream mode: output always equals input for the payload.
    check(ok == 1 && (out == nullptr || static_cast<std::size_t>(out_len) == n),
          "AES-256-GCM update");
    in = in.subspan(n);
    if (out != nullptr) out += n;
  }
}

}  // namespace

AeadKey random_aead_key() {
  AeadKey key;
  random_bytes(key);
  return key;
}

AeadNonce random_aead_nonce() {
  AeadNonce nonce;
  random_bytes(nonce);
  return nonce;
}

Bytes aes256gcm_seal(const AeadKey& key, const AeadNonce& nonce, ByteView aad,
                     ByteView plaintext) {
  return detail::or_abort("aes256gcm_seal", [&] {
    detail::CipherCtxPtr ctx = new_gcm_ctx(key, nonce, true);
    gcm_update(ctx.get(), true, aad, nullptr);
    Bytes out(plaintext.size() + kAeadTagSize);
    gcm_update(ctx.get(), true, plaintext, out.data());
    int final_len = 0;
    check(EVP_EncryptFinal_ex(ctx.get(), out.data() + plaintext.size(), &final_len) == 1 &&
              final_len == 0,
          "AES-256-GCM final");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                          out.data() + plaintext.size(), kAeadTagSize),
        OSSL_PARAM_construct_end()};
    check(EVP_CIPHER_CTX_get_params(ctx.get(), params) == 1, "AES-256-GCM tag");
    return out;
  });
}

Result<Bytes> aes256gcm_open(const AeadKey& key, const AeadNonce& nonce, ByteView aad,
                             ByteView ciphertext_and_tag) {
  if (ciphertext_and_tag.size() < kAeadTagSize) {
    return fail("AES-256-GCM: input of " + std::to_string(ciphertext_and_tag.size()) +
                " bytes is shorter than the " + std::to_string(kAeadTagSize) + "-byte tag");
  }
  ByteView ciphertext = ciphertext_and_tag.first(ciphertext_and_tag.size() - kAeadTagSize);
  ByteView tag = ciphertext_and_tag.last(kAeadTagSize);
  Bytes plaintext;
  try {
    detail::CipherCtxPtr ctx = new_gcm_ctx(key, nonce, false);
    gcm_update(ctx.get(), false, aad, nullptr);
    plaintext.resize(ciphertext.size());
    gcm_update(ctx.get(), false, ciphertext, plaintext.data());
    // OpenSSL copies the tag; the const_cast only satisfies the OSSL_PARAM type.
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                          const_cast<std::uint8_t*>(tag.data()), tag.size()),
        OSSL_PARAM_construct_end()};
    check(EVP_CIPHER_CTX_set_params(ctx.get(), params) == 1, "AES-256-GCM set tag");
    int final_len = 0;
    if (EVP_DecryptFinal_ex(ctx.get(), plaintext.data() + plaintext.size(), &final_len) != 1) {
      detail::drain_openssl_errors();
      OPENSSL_cleanse(plaintext.data(), plaintext.size());
      return fail(
          "AES-256-GCM: authentication failed (wrong key or nonce, different associated data, "
          "or modified ciphertext)");
    }
    return plaintext;
  } catch (const std::exception& e) {
    if (!plaintext.empty()) OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return fail(e.what());
  }
}

}  // namespace mchain::crypto
