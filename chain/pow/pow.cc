#include "chain/pow/pow.h"

#include "chain/crypto/hash.h"
#include "chain/pow/sha256_compress.h"
#include "chain/pow/sha256_internal.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace mchain::pow {

static_assert(kHeaderSize * 8 == detail::kScanMessageBits);
static_assert(kNonceLoOffset == 128 && kNonceLoOffset + 8 == kHeaderSize,
              "the midstate covers exactly the two blocks before nonce_lo");

namespace {

// Nonces per scan call between two looks at the stop flags: at tens of millions of hashes a
// second per thread this is well under a millisecond, and the flag reads cost nothing.
constexpr std::uint64_t kPollInterval = 4096;

void store_be64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}

bool valid_target(unsigned diff, std::uint8_t type) {
  return diff >= 1 && diff <= kMaxDiff && type <= kPolicyType;
}

// One nonce_hi of one header: the midstate over bytes 0..127 and the first-word filter.
struct Search {
  HeaderBytes header{};
  Midstate midstate;
  detail::WordTarget target;
  unsigned diff = 0;
  std::uint8_t type = 0;
};

Search prepare(HeaderView header_template, unsigned diff, std::uint8_t type,
               std::uint64_t nonce_hi) {
  Search s;
  s.header = with_nonce(header_template, nonce_hi, 0);
  s.midstate.compress(std::span(s.header).subspan<0, 64>());
  s.midstate.compress(std::span(s.header).subspan<64, 64>());
  const unsigned bits = std::min(diff, 32u);
  s.target.mask = bits == 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
  s.target.want = type == kPolicyType ? 0x80000000u : 0;
  s.diff = diff;
  s.type = type;
  return s;
}

[[noreturn]] void fatal_mismatch(const Search& s, std::uint64_t lo, const Hash256& ours,
                                 const Hash256& reference) {
  std::fprintf(stderr,
               "mchain: proof-of-work bug: nonce_lo %llu at diff %u type %u: fast path hash %s, "
               "OpenSSL %s\n",
               static_cast<unsigned long long>(lo), s.diff, unsigned{s.type},
               to_hex(ours).c_str(), to_hex(reference).c_str());
  std::abort();
}

// The hash of a candidate from the word filter if it meets the whole difficulty (the filter
// sees only 32 bits), confirmed against OpenSSL.
std::optional<Hash256> confirm(const Search& s, std::uint64_t lo) {
  std::array<std::uint8_t, 8> tail;
  store_be64(tail.data(), lo);
  const Hash256 ours = s.midstate.finish(tail);
  if (!meets_difficulty(ours, s.type, s.diff)) return std::nullopt;
  HeaderBytes header = s.header;
  store_be64(header.data() + kNonceLoOffset, lo);
  const Hash256 reference = header_hash(header);
  if (reference != ours) fatal_mismatch(s, lo, ours, reference);
  return ours;
}

struct Hit {
  std::uint64_t lo = 0;
  Hash256 hash{};
};

// The lowest qualifying nonce_lo in [begin, end), or nullopt once a flag is set or the range
// is exhausted. Adds the nonces hashed to `tried`.
std::optional<Hit> search(const Search& s, std::uint64_t begin, std::uint64_t end,
                          const std::atomic<bool>& stop, const std::atomic<bool>& done,
                          std::uint64_t& tried) {
  std::uint64_t next = begin;
  while (next < end) {
    if (stop.load(std::memory_order_relaxed) || done.load(std::memory_order_relaxed)) break;
    const std::uint64_t chunk_end = end - next > kPollInterval ? next + kPollInterval : end;
    const std::optional<std::uint64_t> candidate =
        detail::scan_nonces(s.midstate.state(), next, chunk_end, s.target);
    if (!candidate) {
      tried += chunk_end - next;
      next = chunk_end;
      continue;
    }
    tried += *candidate - next + 1;
    if (std::optional<Hash256> hash = confirm(s, *candidate)) return Hit{*candidate, *hash};
    next = *candidate + 1;
  }
  return std::nullopt;
}

}  // namespace

bool meets_difficulty(const Hash256& hash, std::uint8_t type, unsigned diff) {
  if (!valid_target(diff, type)) return false;
  auto bit = [&](unsigned i) { return (hash[i / 8] >> (7 - i % 8)) & 1u; };
  if (bit(0) != type) return false;
  for (unsigned i = 1; i < diff; ++i) {
    if (bit(i) != 0) return false;
  }
  return true;
}

Hash256 header_hash(HeaderView header) { return crypto::sha256(header); }

Result<NonceRange> cooperative_slice(unsigned node_index, unsigned node_count) {
  if (node_index >= node_count) {
    return fail("cooperative mining: node index " + std::to_string(node_index) +
                " is not below the node count " + std::to_string(node_count));
  }
  return NonceRange{node_index, 0, std::numeric_limits<std::uint64_t>::max()};
}

HeaderBytes with_nonce(HeaderView header_template, std::uint64_t nonce_hi,
                       std::uint64_t nonce_lo) {
  HeaderBytes header;
  std::copy(header_template.begin(), header_template.end(), header.begin());
  store_be64(header.data() + kNonceHiOffset, nonce_hi);
  store_be64(header.data() + kNonceLoOffset, nonce_lo);
  return header;
}

std::optional<MinedNonce> find_first(HeaderView header_template, unsigned diff,
                                     std::uint8_t type, NonceRange range) {
  if (!valid_target(diff, type)) return std::nullopt;
  const Search s = prepare(header_template, diff, type, range.hi);
  const std::atomic<bool> never{false};
  std::uint64_t tried = 0;
  const std::optional<Hit> hit = search(s, range.lo_begin, range.lo_end, never, never, tried);
  if (!hit) return std::nullopt;
  return MinedNonce{range.hi, hit->lo, hit->hash, tried};
}

Miner::Miner(unsigned threads)
    : threads_(threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency())) {}

std::optional<MinedNonce> Miner::mine(HeaderView header_template, unsigned diff,
                                      std::uint8_t type, NonceRange range,
                                      const std::atomic<bool>& stop) {
  last_hashes_tried_ = 0;
  if (!valid_target(diff, type) || range.lo_begin >= range.lo_end) return std::nullopt;
  const Search s = prepare(header_template, diff, type, range.hi);

  // Contiguous shares; the first `extra` threads take one nonce more.
  const std::uint64_t count = range.lo_end - range.lo_begin;
  const unsigned n = static_cast<unsigned>(std::min<std::uint64_t>(threads_, count));
  const std::uint64_t share = count / n;
  const std::uint64_t extra = count % n;
  auto share_begin = [&](unsigned k) {
    return range.lo_begin + share * k + std::min<std::uint64_t>(k, extra);
  };

  std::atomic<bool> done{false};  // a nonce was found, or starting the threads failed
  std::optional<Hit> winner;      // written once, by the thread that flips `done` first
  std::vector<std::uint64_t> tried(n, 0);
  // noexcept: nothing in a search throws, and nothing may escape a worker thread.
  auto work = [&](unsigned k) noexcept {
    std::uint64_t local = 0;
    std::optional<Hit> hit = search(s, share_begin(k), share_begin(k + 1), stop, done, local);
    if (hit && !done.exchange(true)) winner = *hit;
    tried[k] = local;
  };
  {
    std::vector<std::jthread> workers;
    workers.reserve(n - 1);
    try {
      for (unsigned k = 1; k < n; ++k) workers.emplace_back(work, k);
    } catch (...) {
      done.store(true);  // the started workers return, and are joined, before we rethrow
      throw;
    }
    work(0);
  }  // the jthreads join here; their writes are visible after the join
  for (std::uint64_t t : tried) last_hashes_tried_ += t;
  if (!winner) return std::nullopt;
  return MinedNonce{range.hi, winner->lo, winner->hash, last_hashes_tried_};
}

}  // namespace mchain::pow
