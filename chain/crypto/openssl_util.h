// Internal to chain/crypto: ownership of OpenSSL objects, algorithm objects fetched once, and
// conversion of the OpenSSL error queue into messages. Not part of the module's public API.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace mchain::crypto::detail {

// Calls an OpenSSL *_free function; all of them accept nullptr.
template <auto Free>
struct OpensslDeleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

template <class T, auto Free>
using OpensslPtr = std::unique_ptr<T, OpensslDeleter<Free>>;

using PkeyPtr = OpensslPtr<EVP_PKEY, &EVP_PKEY_free>;
using PkeyCtxPtr = OpensslPtr<EVP_PKEY_CTX, &EVP_PKEY_CTX_free>;
using MdPtr = OpensslPtr<EVP_MD, &EVP_MD_free>;
using MdCtxPtr = OpensslPtr<EVP_MD_CTX, &EVP_MD_CTX_free>;
using CipherPtr = OpensslPtr<EVP_CIPHER, &EVP_CIPHER_free>;
using CipherCtxPtr = OpensslPtr<EVP_CIPHER_CTX, &EVP_CIPHER_CTX_free>;
using MacPtr = OpensslPtr<EVP_MAC, &EVP_MAC_free>;
using MacCtxPtr = OpensslPtr<EVP_MAC_CTX, &EVP_MAC_CTX_free>;
using KdfPtr = OpensslPtr<EVP_KDF, &EVP_KDF_free>;
using KdfCtxPtr = OpensslPtr<EVP_KDF_CTX, &EVP_KDF_CTX_free>;
using BioPtr = OpensslPtr<BIO, &BIO_free_all>;
using EcdsaSigPtr = OpensslPtr<ECDSA_SIG, &ECDSA_SIG_free>;
using EcGroupPtr = OpensslPtr<EC_GROUP, &EC_GROUP_free>;
using BnPtr = OpensslPtr<BIGNUM, &BN_free>;
using BnCtxPtr = OpensslPtr<BN_CTX, &BN_CTX_free>;
using ParamBldPtr = OpensslPtr<OSSL_PARAM_BLD, &OSSL_PARAM_BLD_free>;
using ParamPtr = OpensslPtr<OSSL_PARAM, &OSSL_PARAM_free>;
using Pkcs8Ptr = OpensslPtr<PKCS8_PRIV_KEY_INFO, &PKCS8_PRIV_KEY_INFO_free>;

// For buffers OpenSSL allocates and hands to the caller (OPENSSL_free is a macro).
struct OpensslFree {
  void operator()(void* p) const noexcept;
};
template <class T>
using OpensslBuffer = std::unique_ptr<T, OpensslFree>;

// Thrown inside the module only; public entry points turn it into an Error or a fatal stop.
class OpensslError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Empties this thread's OpenSSL error queue and returns its entries joined by "; " (empty if
// the queue held nothing).
std::string drain_openssl_errors();

// "<what>: <queued OpenSSL errors>", emptying the queue.
std::string openssl_error(std::string_view what);

[[noreturn]] void throw_openssl(std::string_view what);

inline void check(bool ok, std::string_view what) {
  if (!ok) throw_openssl(what);
}

// For functions whose signature cannot report failure: OpenSSL failing there means an internal
// error or exhausted memory, so print what happened (with the queued errors) and abort.
[[noreturn]] void fatal(std::string_view what) noexcept;

// Runs `f`, turning any exception into fatal(). Used by value-returning public functions, which
// must not let exceptions escape.
template <class F>
auto or_abort(std::string_view what, F&& f) noexcept -> std::invoke_result_t<F> {
  try {
    return std::forward<F>(f)();
  } catch (const std::exception& e) {
    fatal(std::string(what) + ": " + e.what());
  } catch (...) {
    fatal(what);
  }
}

// Algorithm objects fetched from the default provider once per process; fetching per call is
// slow in OpenSSL 3. A failed fetch is fatal (the default provider is always present).
const EVP_MD* sha256_md();
const EVP_MD* sha512_md();
const EVP_CIPHER* aes256gcm_cipher();
EVP_MAC* hmac_mac();
EVP_KDF* hkdf_kdf();

// The affine coordinates of a P-256 public key.
struct P256Coordinates {
  BnPtr x;
  BnPtr y;
};
P256Coordinates p256_coordinates(const EVP_PKEY* pkey);

// Wraps a read-only memory BIO around `data` (which must outlive the BIO).
BioPtr memory_bio(std::string_view data);
// Copies the contents of a memory BIO into a string.
std::string bio_contents(BIO* bio);

}  // namespace mchain::crypto::detail
