#include "chain/crypto/hash.h"

#include "chain/crypto/openssl_util.h"

#include <openssl/core_names.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>

namespace mchain::crypto {

namespace {

using detail::fatal;

// One reusable context per thread and algorithm: the hot path hashes many small buffers, and
// allocating a context per call would dominate their cost.
EVP_MD_CTX* thread_md_ctx(int which) {
  thread_local detail::MdCtxPtr ctxs[2] = {detail::MdCtxPtr(EVP_MD_CTX_new()),
                                           detail::MdCtxPtr(EVP_MD_CTX_new())};
  EVP_MD_CTX* ctx = ctxs[which].get();
  if (ctx == nullptr) fatal("EVP_MD_CTX_new");
  return ctx;
}

template <std::size_t N>
std::array<std::uint8_t, N> digest(int which, const EVP_MD* md, ByteView data) {
  EVP_MD_CTX* ctx = thread_md_ctx(which);
  std::array<std::uint8_t, N> out;
  unsigned int len = 0;
  if (EVP_DigestInit_ex2(ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != N) {
    fatal("SHA-2 digest");
  }
  return out;
}

// An HMAC context per thread and digest, with the digest bound once: re-keying it with
// EVP_MAC_init avoids fetching the digest by name on every call.
EVP_MAC_CTX* thread_hmac_ctx(int which) {
  static const char* const kDigests[2] = {"SHA2-256", "SHA2-512"};
  thread_local detail::MacCtxPtr ctxs[2];
  detail::MacCtxPtr& ctx = ctxs[which];
  if (!ctx) {
    detail::MacCtxPtr fresh(EVP_MAC_CTX_new(detail::hmac_mac()));
    if (!fresh) fatal("EVP_MAC_CTX_new");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         const_cast<char*>(kDigests[which]), 0),
        OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(fresh.get(), params) != 1) fatal("HMAC digest selection");
    ctx = std::move(fresh);
  }
  return ctx.get();
}

template <std::size_t N>
std::array<std::uint8_t, N> hmac(int which, ByteView key, ByteView data) {
  EVP_MAC_CTX* ctx = thread_hmac_ctx(which);
  // A null key pointer means "keep the previous key" to EVP_MAC_init, so an empty key still
  // needs a valid address.
  static const std::uint8_t kEmpty = 0;
  const std::uint8_t* key_ptr = key.empty() ? &kEmpty : key.data();
  std::array<std::uint8_t, N> out;
  std::size_t len = 0;
  if (EVP_MAC_init(ctx, key_ptr, key.size(), nullptr) != 1 ||
      EVP_MAC_update(ctx, data.data(), data.size()) != 1 ||
      EVP_MAC_final(ctx, out.data(), &len, out.size()) != 1 || len != N) {
    fatal("HMAC");
  }
  return out;
}

}  // namespace

Hash256 sha256(ByteView data) { return digest<32>(0, detail::sha256_md(), data); }

Hash512 sha512(ByteView data) { return digest<64>(1, detail::sha512_md(), data); }

Hash256 hmac_sha256(ByteView key, ByteView data) { return hmac<32>(0, key, data); }

Hash512 hmac_sha512(ByteView key, ByteView data) { return hmac<64>(1, key, data); }

namespace detail {

struct DigestState {
  MdCtxPtr ctx;
  const EVP_MD* md;

  explicit DigestState(const EVP_MD* digest) : ctx(EVP_MD_CTX_new()), md(digest) {
    if (!ctx) fatal("EVP_MD_CTX_new");
    reset();
  }
  void reset() {
    if (EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1) fatal("EVP_DigestInit_ex2");
  }
};

namespace {
std::unique_ptr<DigestState> new_state(int which) {
  return or_abort("digest", [which] {
    return std::make_unique<DigestState>(which == 0 ? sha256_md() : sha512_md());
  });
}
}  // namespace

IncrementalDigest::IncrementalDigest(int which) : which_(which), state_(new_state(which)) {}
IncrementalDigest::~IncrementalDigest() = default;
IncrementalDigest::IncrementalDigest(IncrementalDigest&&) noexcept = default;
IncrementalDigest& IncrementalDigest::operator=(IncrementalDigest&&) noexcept = default;

void IncrementalDigest::update(ByteView data) {
  // A moved-from hasher starts over rather than dereferencing null.
  if (!state_) state_ = new_state(which_);
  if (EVP_DigestUpdate(state_->ctx.get(), data.data(), data.size()) != 1) {
    fatal("EVP_DigestUpdate");
  }
}

void IncrementalDigest::finish(std::span<std::uint8_t> out) {
  if (!state_) state_ = new_state(which_);
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(state_->ctx.get(), out.data(), &len) != 1 || len != out.size()) {
    fatal("EVP_DigestFinal_ex");
  }
  state_->reset();
}

}  // namespace detail

void random_bytes(std::span<std::uint8_t> out) {
  // RAND_bytes takes an int length.
  constexpr std::size_t kChunk = 1u << 30;
  while (!out.empty()) {
    std::size_t n = std::min(out.size(), kChunk);
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) fatal("RAND_bytes");
    out = out.subspan(n);
  }
}

}  // namespace mchain::crypto
