#include "chain/crypto/openssl_util.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

namespace mchain::crypto::detail {

void OpensslFree::operator()(void* p) const noexcept { OPENSSL_free(p); }

std::string drain_openssl_errors() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
      out += " (";
      out += data;
      out += ')';
    }
  }
  return out;
}

std::string openssl_error(std::string_view what) {
  std::string detail = drain_openssl_errors();
  std::string out(what);
  if (!detail.empty()) {
    out += ": ";
    out += detail;
  }
  return out;
}

void throw_openssl(std::string_view what) { throw OpensslError(openssl_error(what)); }

void fatal(std::string_view what) noexcept {
  std::string message = openssl_error(what);
  std::fprintf(stderr, "mchain: fatal crypto error: %s\n", message.c_str());
  std::abort();
}

namespace {

// The unique_ptr statics are constructed after the fetch has initialised OpenSSL, so they are
// destroyed before OpenSSL's own atexit cleanup runs.
template <class Ptr, class Fetch>
Ptr fetch_or_die(Fetch fetch, const char* name) {
  Ptr p(fetch(nullptr, name, nullptr));
  if (!p) fatal(std::string("cannot fetch ") + name + " from the default provider");
  return p;
}

}  // namespace

const EVP_MD* sha256_md() {
  static const MdPtr md = fetch_or_die<MdPtr>(EVP_MD_fetch, "SHA2-256");
  return md.get();
}

const EVP_MD* sha512_md() {
  static const MdPtr md = fetch_or_die<MdPtr>(EVP_MD_fetch, "SHA2-512");
  return md.get();
}

const EVP_CIPHER* aes256gcm_cipher() {
  static const CipherPtr cipher = fetch_or_die<CipherPtr>(EVP_CIPHER_fetch, "AES-256-GCM");
  return cipher.get();
}

EVP_MAC* hmac_mac() {
  static const MacPtr mac = fetch_or_die<MacPtr>(EVP_MAC_fetch, "HMAC");
  return mac.get();
}

EVP_KDF* hkdf_kdf() {
  static const KdfPtr kdf = fetch_or_die<KdfPtr>(EVP_KDF_fetch, "HKDF");
  return kdf.get();
}

P256Coordinates p256_coordinates(const EVP_PKEY* pkey) {
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  check(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1,
        "reading the P-256 public x coordinate");
  P256Coordinates out{BnPtr(x), nullptr};
  check(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1,
        "reading the P-256 public y coordinate");
  out.y = BnPtr(y);
  return out;
}

BioPtr memory_bio(std::string_view data) {
  if (data.size() > static_cast<std::size_t>(INT_MAX)) {
    throw OpensslError("input too large for a memory BIO");
  }
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  check(bio != nullptr, "BIO_new_mem_buf");
  return bio;
}

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len < 0 || (len > 0 && data == nullptr)) throw_openssl("BIO_get_mem_data");
  return std::string(data, static_cast<std::size_t>(len));
}

}  // namespace mchain::crypto::detail
