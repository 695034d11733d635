// The chain store on LevelDB.
//
// Key schema. Every key starts with a one-byte tag; integers are big-endian and fixed width,
// so that LevelDB's bytewise order is numeric order. "seq" is the store's write sequence
// (key 'c'): each confirmation takes one, and so does each genesis node.
//
//   'F'                                  -> "mchain-store/1"; written when the store is created
//   'c'                                  -> next write sequence (8)
//  layer 1
//   'S' semi(32)                         -> semi-finished block encoding (confirmed)
//   'C' semi(32)                         -> its confirmation seq (8)
//   's' seq(8)                           -> semi hash: every confirmed block, in order
//   'Q' seq(8)                           -> semi hash: the mining queue, present iff
//                                           confirmed and not mined on the main chain
//  layer 2
//   'B' block(32)                        -> header (136) || cumulative work (32); the body
//                                           is the 'S' entry named by the header
//   'H' height(8) block(32)              -> "": every block at a height, forks included
//   'M' height(8)                        -> main-chain block hash
//   'W' semi(32)                         -> the main-chain block that mined it
//   'T'                                  -> tip hash
//  packages
//   'P' package(32)                      -> semi(32) || index(4) || timestamp(8)
//   'V' vm(16) timestamp(8) package(32)  -> semi(32) || index(4)
//  view histories (package_effects, genesis nodes)
//   'h' kind(1) len(1) subject since(8) seq(8) n(4)  -> value
//         key kinds: "" (none from then on) or CBOR [alg, raw]; owner and host: the text
//         (an empty host: running nowhere); policy: version(8) || hash(32).
//         n numbers the entries of one confirmed block in package order, 0 for genesis.
//   'p' vm(16) version(8) since(8) seq(8) n(4)       -> policy hash(32), for policy_version
//   'G' len(1) node since(8) key(CBOR)               -> "": genesis nodes already added
//
// Equal times: of two entries with the same subject and `since`, the one with the larger
// (seq, n) applies, i.e. the one written later. MemoryView keeps insertion order for equal
// times, so both agree when MemoryView applies genesis nodes and packages in the order the
// store got them (confirmation order, then position in the block).
#include "chain/store/store.h"

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unordered_map>

#include "chain/crypto/hash.h"
#include "chain/encoding/fields.h"
#include "chain/package/effects.h"

namespace mchain {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kFormat = "mchain-store/1";

// A read that failed for a reason other than "not found" (I/O error, corruption): thrown
// inside this file only, turned into an Error (or an empty answer) at the public boundary.
class StoreFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void put_u64(std::string& out, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

void put_u32(std::string& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

std::uint64_t get_be(std::string_view in, std::size_t at, std::size_t bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    value = value << 8 | static_cast<std::uint8_t>(in[at + i]);
  }
  return value;
}

template <std::size_t N>
void put_bytes(std::string& out, const std::array<std::uint8_t, N>& bytes) {
  out.append(reinterpret_cast<const char*>(bytes.data()), N);
}

void put_bytes(std::string& out, ByteView bytes) {
  out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

Hash256 get_hash(std::string_view in, std::size_t at) {
  if (in.size() < at + 32) throw StoreFailure("corrupt store: truncated hash");
  Hash256 out;
  std::copy_n(reinterpret_cast<const std::uint8_t*>(in.data()) + at, 32, out.begin());
  return out;
}

std::string short_hex(const Hash256& hash) { return to_hex(hash).substr(0, 16); }

std::string tagged(char tag, const Hash256& hash) {
  std::string key(1, tag);
  put_bytes(key, hash);
  return key;
}

std::string tagged(char tag, std::uint64_t number) {
  std::string key(1, tag);
  put_u64(key, number);
  return key;
}

std::string hash_string(const Hash256& hash) { return std::string(hash.begin(), hash.end()); }

std::string history_prefix(HistoryEntry::Kind kind, std::string_view subject) {
  std::string key = "h";
  key.push_back(static_cast<char>(kind));
  key.push_back(static_cast<char>(subject.size()));
  key.append(subject);
  return key;
}

std::string history_key(HistoryEntry::Kind kind, std::string_view subject, TimeUs since,
                        std::uint64_t seq, std::uint32_t n) {
  std::string key = history_prefix(kind, subject);
  put_u64(key, since);
  put_u64(key, seq);
  put_u32(key, n);
  return key;
}

std::string policy_prefix(std::string_view vm_subject, std::uint64_t version) {
  std::string key = "p";
  key.append(vm_subject);
  put_u64(key, version);
  return key;
}

std::string vm_index_prefix(const Uuid& vm, TimeUs timestamp) {
  std::string key = "V";
  put_bytes(key, vm.bytes);
  put_u64(key, timestamp);
  return key;
}

std::string encode_key(const std::optional<crypto::PublicKey>& key) {
  if (!key) return {};
  cbor::Writer w;
  cbor::write_public_key(w, *key);
  std::string out;
  put_bytes(out, w.data());
  return out;
}

std::optional<crypto::PublicKey> decode_key(std::string_view value) {
  if (value.empty()) return std::nullopt;
  auto key = cbor::decode(as_bytes(value), "stored key",
                          [](cbor::Reader& r) { return cbor::read_public_key(r, "key"); });
  if (!key) throw StoreFailure("corrupt store: " + key.error().message);
  return *std::move(key);
}

std::string encode_policy(const PolicyRef& policy) {
  std::string out;
  put_u64(out, policy.version);
  put_bytes(out, policy.hash);
  return out;
}

PolicyRef decode_policy(std::string_view value) {
  if (value.size() != 40) throw StoreFailure("corrupt store: policy entry");
  return PolicyRef{get_be(value, 0, 8), get_hash(value, 8)};
}

std::string history_value(const HistoryEntry& e) {
  using Kind = HistoryEntry::Kind;
  switch (e.kind) {
    case Kind::node_key:
    case Kind::user_key:
    case Kind::vm_key: return encode_key(e.key);
    case Kind::vm_owner:
    case Kind::vm_host: return e.text;
    case Kind::vm_policy: return encode_policy(e.policy);
  }
  throw StoreFailure("unknown history entry kind");
}

// The stored form of a mature block without its body.
struct StoredBlock {
  BlockHeader header;
  Work work;
};

std::string encode_stored(const BlockHeader& header, const Work& work) {
  std::string out;
  put_bytes(out, header.encode());
  put_bytes(out, work.big_endian());
  return out;
}

StoredBlock decode_stored(std::string_view value) {
  if (value.size() != kHeaderSize + 32) throw StoreFailure("corrupt store: block entry size");
  auto header = BlockHeader::decode(as_bytes(value.substr(0, kHeaderSize)));
  if (!header) throw StoreFailure("corrupt store: " + header.error().message);
  return {*header, Work::from_big_endian(as_bytes(value.substr(kHeaderSize)))};
}

// Lets unordered maps keyed by std::string be searched with a string_view, without a copy.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// The history entry of one (kind, subject) in force at some time, and the times over which
// that stays the answer: from <= t < until, i.e. from the entry's `since` (0 if there is
// none) to the next entry's (no end if there is none). Between them no entry starts, so the
// same entry is in force, as long as the store does not change.
struct InForce {
  std::optional<TimeUs> since;           // nullopt: no entry at or before the time asked
  std::string value;                     // owner, host, policy: the stored value
  std::optional<crypto::PublicKey> key;  // key kinds: the decoded key (nullopt: none/removed)
  TimeUs from = 0;
  std::optional<TimeUs> until;  // nullopt: no later entry
};

struct UuidHash {
  std::size_t operator()(const Uuid& u) const {
    return std::hash<std::string_view>{}(
        std::string_view(reinterpret_cast<const char*>(u.bytes.data()), u.bytes.size()));
  }
};

// Counts the starts and ends of store writes: odd while a write is under way.
class WriteGeneration {
 public:
  std::uint64_t current() const { return value_.load(std::memory_order_acquire); }

  // Brackets one store write, from before the batch is applied to after, even if it fails.
  class Writing {
   public:
    explicit Writing(WriteGeneration& g) : g_(g) {
      g_.value_.fetch_add(1, std::memory_order_acq_rel);
    }
    ~Writing() { g_.value_.fetch_add(1, std::memory_order_acq_rel); }
    Writing(const Writing&) = delete;
    Writing& operator=(const Writing&) = delete;

   private:
    WriteGeneration& g_;
  };

 private:
  std::atomic<std::uint64_t> value_{0};
};

// View answers (a key, a VM's state) by subject, each valid only in the write generation it
// was read in, and only for the times its history entries cover.
//
// Validation asks about the same few subjects (a VM, its owner, its node) for every package
// of a round, and each question is a LevelDB seek and step back across every table, the bulk
// of a warm re-validation; between two writes the answers cannot change.
//
// A reader notes the generation before reading the store, and its answer is kept, tagged with
// it, only if it was even (no write under way) and is unchanged after the read. A read that
// sees a batch also sees the bump before it (LevelDB publishes a batch under a mutex that the
// read takes), so every answer of one generation comes from the same state of the store. A
// hit must carry the current generation: once confirm() returns, no answer read before it is
// served again, and a key revocation or a migration is seen by the next look-up.
template <class Key, class Value, class Hash>
class AnswerCache {
 public:
  // `value` holds at every t with from <= t < until (no end without one).
  struct Answer {
    Value value;
    TimeUs from = 0;
    std::optional<TimeUs> until;
  };

  AnswerCache(const WriteGeneration& generation, std::size_t capacity)
      : generation_(generation), capacity_(capacity) {}
  AnswerCache(const AnswerCache&) = delete;
  AnswerCache& operator=(const AnswerCache&) = delete;

  template <class K>
  std::optional<Value> find(const K& key, TimeUs t, std::uint64_t generation) const {
    if (!usable(generation)) return std::nullopt;
    std::shared_lock lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.generation != generation) return std::nullopt;
    const Answer& a = it->second.answer;
    if (t < a.from || (a.until && t >= *a.until)) return std::nullopt;
    return a.value;
  }

  // Keeps `answer`, read after `generation` was noted, unless a write may have begun since
  // (it could be the old state or the new one). One answer per subject: a round's packages
  // are about one moment.
  template <class K>
  void insert(const K& key, Answer answer, std::uint64_t generation) {
    if (!usable(generation) || generation_.current() != generation) return;
    std::unique_lock lock(mutex_);
    if (auto it = entries_.find(key); it != entries_.end()) {
      it->second = {generation, std::move(answer)};
      return;
    }
    if (entries_.size() >= capacity_) {
      std::erase_if(entries_, [&](const auto& e) { return e.second.generation != generation; });
      if (entries_.size() >= capacity_) entries_.clear();
    }
    entries_.emplace(Key(key), Slot{generation, std::move(answer)});
  }

 private:
  bool usable(std::uint64_t generation) const { return capacity_ != 0 && generation % 2 == 0; }

  struct Slot {
    std::uint64_t generation;
    Answer answer;
  };
  const WriteGeneration& generation_;
  const std::size_t capacity_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<Key, Slot, Hash, std::equal_to<>> entries_;
};

// Node and user keys by history prefix (kind and subject); VM states by VM.
using KeyCache = AnswerCache<std::string, std::optional<crypto::PublicKey>, StringHash>;
using VmCache = AnswerCache<Uuid, std::optional<VmAt>, UuidHash>;

// Whether every file in `directory` could have been written by LevelDB: a directory that
// holds anything else and no CURRENT file is not a store, and we refuse to make it one.
bool looks_like_leveldb(const fs::path& directory) {
  for (const fs::directory_entry& entry : fs::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    auto ends_with = [&](std::string_view suffix) { return name.ends_with(suffix); };
    if (name == "LOCK" || name == "LOG" || name == "LOG.old" || name == "CURRENT" ||
        name.starts_with("MANIFEST-") || ends_with(".log") || ends_with(".ldb") ||
        ends_with(".sst") || ends_with(".dbtmp")) {
      continue;
    }
    return false;
  }
  return true;
}

std::string describe_open_error(const fs::path& directory, const leveldb::Status& status) {
  const std::string where = "store " + directory.string() + ": ";
  const std::string message = status.ToString();
  if (status.IsIOError() && message.find("/LOCK") != std::string::npos) {
    return where + "locked by another process (LOCK): " + message;
  }
  if (status.IsCorruption()) return where + "corrupt database: " + message;
  return where + "cannot open: " + message;
}

}  // namespace

// ---- Work

Work Work::of_block(unsigned diff) {
  Work w;
  if (diff >= 256) {
    w.be_.fill(0xff);  // 2^256 does not fit; saturate (headers carry at most 255)
    return w;
  }
  w.be_[31 - diff / 8] = static_cast<std::uint8_t>(1u << (diff % 8));
  return w;
}

Work& Work::operator+=(const Work& other) {
  unsigned carry = 0;
  for (int i = 31; i >= 0; --i) {
    unsigned sum =
        be_[static_cast<std::size_t>(i)] + other.be_[static_cast<std::size_t>(i)] + carry;
    be_[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(sum);
    carry = sum >> 8;
  }
  if (carry != 0) be_.fill(0xff);  // saturate rather than wrap: more work never compares less
  return *this;
}

Work Work::from_big_endian(ByteView bytes) {
  Work w;
  const std::size_t n = std::min<std::size_t>(bytes.size(), 32);
  std::copy_n(bytes.end() - static_cast<std::ptrdiff_t>(n), n, w.be_.end() - n);
  return w;
}

// ---- Impl

struct Store::Impl {
  explicit Impl(const StoreOptions& options)
      : options(options),
        key_answers(generation, options.history_cache_entries),
        vm_answers(generation, options.history_cache_entries) {}

  struct SnapshotRelease {
    leveldb::DB* db;
    void operator()(const leveldb::Snapshot* snapshot) const { db->ReleaseSnapshot(snapshot); }
  };
  using Snapshot = std::unique_ptr<const leveldb::Snapshot, SnapshotRelease>;

  fs::path directory;
  StoreOptions options;
  // The cache and filter must outlive the database, so they are declared before it.
  std::unique_ptr<leveldb::Cache> cache;
  std::unique_ptr<const leveldb::FilterPolicy> filter;
  std::unique_ptr<leveldb::DB> db;
  std::mutex writer;       // one confirm / append / add_genesis_node at a time
  std::uint64_t next_seq;  // guarded by `writer`

  Snapshot snapshot() const { return Snapshot(db->GetSnapshot(), SnapshotRelease{db.get()}); }

  leveldb::ReadOptions read_options(const leveldb::Snapshot* snapshot = nullptr,
                                    bool verify_checksums = true) const {
    leveldb::ReadOptions read;
    read.verify_checksums = verify_checksums;
    read.snapshot = snapshot;
    return read;
  }

  // Iterators serve the history look-ups of validation, several per package in every round.
  // With checksums verified they re-checksum every table block they pass over, in software
  // (Debian's LevelDB has no SSE4.2 path), and once compaction mixes 600 KB block bodies into
  // those tables a round costs ten times as much (mchain-bench confirm --runs 40, 200 packages: p90 204 ms,
  // 34 ms without). Point reads (blocks, bodies, package locations) keep verifying,
  // compaction verifies what it rewrites (paranoid_checks), and verify_chain re-reads and
  // re-hashes every block.
  std::unique_ptr<leveldb::Iterator> iterator(const leveldb::Snapshot* snapshot) const {
    return std::unique_ptr<leveldb::Iterator>(db->NewIterator(read_options(snapshot, false)));
  }

  static void check(const leveldb::Iterator& it) {
    if (!it.status().ok()) throw StoreFailure(it.status().ToString());
  }

  std::optional<std::string> get(std::string_view key,
                                 const leveldb::Snapshot* snapshot = nullptr) const {
    std::string value;
    leveldb::Status s =
        db->Get(read_options(snapshot), leveldb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) throw StoreFailure(s.ToString());
    return value;
  }

  Status write(leveldb::WriteBatch& batch) {
    const WriteGeneration::Writing writing(generation);
    leveldb::WriteOptions write;
    write.sync = options.sync;
    leveldb::Status s = db->Write(write, &batch);
    if (!s.ok()) return fail("store " + directory.string() + ": write failed: " + s.ToString());
    return {};
  }

  std::optional<StoredBlock> load_block(const Hash256& hash,
                                        const leveldb::Snapshot* snapshot = nullptr) const {
    auto value = get(tagged('B', hash), snapshot);
    if (!value) return std::nullopt;
    return decode_stored(*value);
  }

  StoredBlock must_load_block(const Hash256& hash) const {
    auto stored = load_block(hash);
    if (!stored) throw StoreFailure("corrupt store: block " + short_hex(hash) + " missing");
    return *std::move(stored);
  }

  std::optional<Hash256> get_hash_value(std::string_view key,
                                        const leveldb::Snapshot* snapshot = nullptr) const {
    auto value = get(key, snapshot);
    if (!value) return std::nullopt;
    return get_hash(*value, 0);
  }

  std::uint64_t confirmation_seq(const Hash256& semi) const {
    auto value = get(tagged('C', semi));
    if (!value || value->size() != 8) {
      throw StoreFailure("corrupt store: no confirmation of " + short_hex(semi));
    }
    return get_be(*value, 0, 8);
  }

  // The history entry of (kind, subject) in force at t, read with `it` (one iterator is one
  // consistent state of the store), and the times over which that answer holds.
  InForce read_in_force(HistoryEntry::Kind kind, std::string_view prefix, TimeUs t,
                        leveldb::Iterator& it) const {
    // Above every key with since <= t (no real seq is all ones), below any with since > t.
    std::string target(prefix);
    put_u64(target, t);
    target.append(12, '\xff');
    const leveldb::Slice prefix_slice(prefix.data(), prefix.size());
    auto since_of = [&](const leveldb::Slice& key) {
      if (key.size() != prefix.size() + 20) throw StoreFailure("corrupt store: history key");
      return get_be(std::string_view(key.data(), key.size()), prefix.size(), 8);
    };
    InForce out;
    it.Seek(target);
    check(it);
    if (it.Valid()) {
      // The first entry after t: where the answer stops holding.
      if (it.key().starts_with(prefix_slice)) out.until = since_of(it.key());
      it.Prev();
    } else {
      it.SeekToLast();
    }
    check(it);
    if (!it.Valid() || !it.key().starts_with(prefix_slice)) return out;
    out.since = since_of(it.key());
    out.from = *out.since;
    const std::string_view value(it.value().data(), it.value().size());
    using Kind = HistoryEntry::Kind;
    if (kind == Kind::node_key || kind == Kind::user_key || kind == Kind::vm_key) {
      out.key = cached_key(value);
    } else {
      out.value = value;
    }
    return out;
  }

  std::optional<crypto::PublicKey> key_at(HistoryEntry::Kind kind, std::string_view subject,
                                          TimeUs t) const {
    if (subject.size() > 255) return std::nullopt;
    const std::uint64_t noted = generation.current();
    const std::string prefix = history_prefix(kind, subject);
    if (auto hit = key_answers.find(prefix, t, noted)) return *std::move(hit);
    auto it = iterator(nullptr);
    InForce entry = read_in_force(kind, prefix, t, *it);
    key_answers.insert(prefix, {entry.key, entry.from, entry.until}, noted);
    return std::move(entry.key);
  }

  std::optional<VmAt> vm_at(const Uuid& vm, TimeUs t) const {
    const std::uint64_t noted = generation.current();
    if (auto hit = vm_answers.find(vm, t, noted)) return *std::move(hit);
    // One iterator: the key, owner, host and policy as of one state of the store.
    auto it = iterator(nullptr);
    const std::string_view subject(reinterpret_cast<const char*>(vm.bytes.data()), 16);
    VmCache::Answer answer;
    auto read = [&](HistoryEntry::Kind kind) {
      InForce entry = read_in_force(kind, history_prefix(kind, subject), t, *it);
      // The VM's state holds where every part of it does.
      answer.from = std::max(answer.from, entry.from);
      if (entry.until && (!answer.until || *entry.until < *answer.until)) {
        answer.until = entry.until;
      }
      return entry;
    };
    using Kind = HistoryEntry::Kind;
    if (InForce key = read(Kind::vm_key); key.key) {
      VmAt at{*std::move(key.key), {}, std::nullopt, std::nullopt};
      if (InForce owner = read(Kind::vm_owner); owner.since) at.owner = std::move(owner.value);
      if (InForce host = read(Kind::vm_host); host.since && !host.value.empty()) {
        at.host = std::move(host.value);
      }
      if (InForce policy = read(Kind::vm_policy); policy.since) {
        at.policy = PolicyInForce{decode_policy(policy.value), *policy.since};
      }
      answer.value = std::move(at);
    }
    std::optional<VmAt> out = answer.value;
    vm_answers.insert(vm, std::move(answer), noted);
    return out;
  }

  // Decoding a stored key validates the point (a P-256 decompression): as costly as a third
  // of a signature check. A cluster has few keys, and every package looks up three, so the
  // decoded ones are kept, by their stored bytes.
  std::optional<crypto::PublicKey> cached_key(std::string_view stored) const {
    if (stored.empty()) return std::nullopt;
    std::lock_guard lock(key_cache_mutex);
    if (auto it = key_cache.find(stored); it != key_cache.end()) return it->second;
    auto key = decode_key(stored);
    if (key_cache.size() >= kKeyCacheEntries) key_cache.clear();
    key_cache.emplace(stored, *key);
    return key;
  }

  static constexpr std::size_t kKeyCacheEntries = 4096;
  mutable std::mutex key_cache_mutex;
  mutable std::unordered_map<std::string, crypto::PublicKey, StringHash, std::equal_to<>> key_cache;
  WriteGeneration generation;
  mutable KeyCache key_answers;
  mutable VmCache vm_answers;

  Status add_genesis_node(const std::string& node, const crypto::PublicKey& key, TimeUs since);
  Status confirm(const SemiFinishedBlock& block);
  Result<AppendResult> append(const Block& block);
};

Status Store::Impl::add_genesis_node(const std::string& node, const crypto::PublicKey& key,
                                     TimeUs since) {
  if (!valid_id(node)) return fail("genesis node: invalid node id \"" + node + "\"");
  std::string marker = "G";
  marker.push_back(static_cast<char>(node.size()));
  marker.append(node);
  put_u64(marker, since);
  marker.append(encode_key(key));
  if (get(marker)) return {};
  const std::uint64_t seq = next_seq;
  leveldb::WriteBatch batch;
  batch.Put(marker, "");
  batch.Put(history_key(HistoryEntry::Kind::node_key, node, since, seq, 0), encode_key(key));
  std::string counter;
  put_u64(counter, seq + 1);
  batch.Put("c", counter);
  if (auto written = write(batch); !written) return written;
  next_seq = seq + 1;
  return {};
}

Status Store::Impl::confirm(const SemiFinishedBlock& block) {
  const Bytes encoded = block.encode();
  const Hash256 hash = crypto::sha256(encoded);
  const std::string name = "semi-finished block " + short_hex(hash);
  if (get(tagged('C', hash))) return {};
  // What we store must decode within our limits, or we could not read it back. The block's
  // packages were decoded or built within package limits already; re-decoding the whole
  // block to check would cost a round as much as validating it, so check the block's own.
  const BlockLimits& limits = options.limits;
  if (block.candidate.packages.size() > limits.max_packages) {
    return fail(name + ": " + std::to_string(block.candidate.packages.size()) +
                " packages exceeds the limit of " + std::to_string(limits.max_packages));
  }
  if (encoded.size() > limits.max_block_bytes) {
    return fail(name + ": " + std::to_string(encoded.size()) + " bytes exceeds the limit of " +
                std::to_string(limits.max_block_bytes));
  }
  for (const Package& p : block.candidate.packages) {
    if (p.body().size() > limits.package.max_body_bytes) {
      return fail(name + ": package " + short_hex(p.id()) + " body exceeds the limit of " +
                  std::to_string(limits.package.max_body_bytes));
    }
  }

  const std::uint64_t seq = next_seq;
  leveldb::WriteBatch batch;
  std::string encoded_string;
  put_bytes(encoded_string, encoded);
  batch.Put(tagged('S', hash), encoded_string);
  std::string seq_value;
  put_u64(seq_value, seq);
  batch.Put(tagged('C', hash), seq_value);
  batch.Put(tagged('s', seq), hash_string(hash));
  batch.Put(tagged('Q', seq), hash_string(hash));

  std::set<Hash256> seen;
  std::uint32_t n = 0;
  const auto& packages = block.candidate.packages;
  for (std::uint32_t index = 0; index < packages.size(); ++index) {
    const Package& package = packages[index];
    const Hash256& id = package.id();
    if (!seen.insert(id).second) {
      return fail(name + ": package " + short_hex(id) + " appears twice");
    }
    if (auto where = get(tagged('P', id))) {
      return fail(name + ": package " + short_hex(id) + " is already confirmed in block " +
                  short_hex(get_hash(*where, 0)));
    }
    const PackageHeader& header = package.header();
    std::string location = hash_string(hash);
    put_u32(location, index);
    batch.Put(vm_index_prefix(header.vm, header.timestamp) + hash_string(id), location);
    put_u64(location, header.timestamp);
    batch.Put(tagged('P', id), location);

    auto effects = package_effects(package);
    if (!effects) {
      return fail(name + ": package " + short_hex(id) + ": " + effects.error().message);
    }
    for (const HistoryEntry& e : *effects) {
      if (e.subject.size() > 255) return fail(name + ": history subject too long");
      batch.Put(history_key(e.kind, e.subject, e.since, seq, n), history_value(e));
      if (e.kind == HistoryEntry::Kind::vm_policy) {
        std::string key = policy_prefix(e.subject, e.policy.version);
        put_u64(key, e.since);
        put_u64(key, seq);
        put_u32(key, n);
        batch.Put(key, hash_string(e.policy.hash));
      }
      ++n;
    }
  }
  std::string counter;
  put_u64(counter, seq + 1);
  batch.Put("c", counter);
  if (auto written = write(batch); !written) return written;
  next_seq = seq + 1;
  return {};
}

// Appends a block; if its branch now has the most work, reorganises the main chain:
//   1. walk back from the parent to the first main-chain ancestor (the fork point), checking
//      on the way and through 'W' below the fork that the body is not mined on the branch;
//   2. old main blocks above the fork lose 'M' and 'W'; the new branch's blocks gain them;
//   3. bodies mined only by the old blocks go back to 'Q' under their confirmation seq (so the
//      queue keeps confirmation order); bodies the new branch mines leave 'Q';
// all in one batch with the block itself.
Result<AppendResult> Store::Impl::append(const Block& block) {
  const BlockHeader& h = block.header;
  const Hash256 hash = h.hash();
  const std::string name = "block " + short_hex(hash);
  if (get(tagged('B', hash))) return AppendResult{};
  if (auto structure = check_block_structure(block); !structure) {
    return fail(name + ": " + structure.error().message);
  }
  if (!get(tagged('C', h.semi_finished))) {
    return fail(name + ": its semi-finished block " + short_hex(h.semi_finished) +
                " is not confirmed");
  }

  const Hash256 zero{};
  Work work = Work::of_block(h.diff);
  std::optional<StoredBlock> parent;
  if (h.previous == zero) {
    if (h.height != 0) {
      return fail(name + ": height " + std::to_string(h.height) +
                  " without a parent (only height 0 may have the zero previous hash)");
    }
  } else {
    parent = load_block(h.previous);
    if (!parent) return fail(name + ": unknown parent " + short_hex(h.previous));
    if (h.height != parent->header.height + 1) {
      return fail(name + ": height " + std::to_string(h.height) + ", expected " +
                  std::to_string(parent->header.height + 1) + " after its parent");
    }
    work = parent->work;
    work += Work::of_block(h.diff);
  }

  // 1. The side part of the block's branch (parent first) and the fork height.
  std::vector<std::pair<Hash256, BlockHeader>> side;
  std::optional<std::uint64_t> fork_height;
  for (Hash256 at = h.previous; at != zero;) {
    const StoredBlock stored = at == h.previous ? *parent : must_load_block(at);
    if (get_hash_value(tagged('M', stored.header.height)) == at) {
      fork_height = stored.header.height;
      break;
    }
    if (stored.header.semi_finished == h.semi_finished) {
      return fail(name + ": semi-finished block " + short_hex(h.semi_finished) +
                  " is already mined in its ancestor " + short_hex(at));
    }
    side.emplace_back(at, stored.header);
    at = stored.header.previous;
  }
  if (fork_height) {
    if (auto miner = get_hash_value(tagged('W', h.semi_finished))) {
      if (must_load_block(*miner).header.height <= *fork_height) {
        return fail(name + ": semi-finished block " + short_hex(h.semi_finished) +
                    " is already mined in its ancestor " + short_hex(*miner));
      }
    }
  }

  leveldb::WriteBatch batch;
  batch.Put(tagged('B', hash), encode_stored(h, work));
  batch.Put(tagged('H', h.height) + hash_string(hash), "");

  std::optional<StoredBlock> tip;
  if (auto tip_hash = get_hash_value("T")) tip = must_load_block(*tip_hash);
  AppendResult result;
  const bool wins = !tip || work > tip->work || (work == tip->work && hash < tip->header.hash());
  if (!wins) {
    if (auto written = write(batch); !written) return std::unexpected(written.error());
    return result;
  }

  // 2. Old main blocks above the fork, and the new branch in height order.
  const std::uint64_t first = fork_height ? *fork_height + 1 : 0;
  std::vector<std::pair<std::uint64_t, Hash256>> old_bodies;  // (height, body)
  if (tip) {
    for (std::uint64_t height = first; height <= tip->header.height; ++height) {
      auto old = get_hash_value(tagged('M', height));
      if (!old) throw StoreFailure("corrupt store: main chain has no block at a height");
      old_bodies.emplace_back(height, must_load_block(*old).header.semi_finished);
    }
  }
  std::vector<std::pair<Hash256, BlockHeader>> branch(side.rbegin(), side.rend());
  branch.emplace_back(hash, h);

  std::set<Hash256> old_set, new_set;
  for (const auto& [height, body] : old_bodies) {
    old_set.insert(body);
    batch.Delete(tagged('W', body));
    if (height > h.height) batch.Delete(tagged('M', height));
  }
  for (const auto& [block_hash, header] : branch) {
    new_set.insert(header.semi_finished);
    batch.Put(tagged('M', header.height), hash_string(block_hash));
    batch.Put(tagged('W', header.semi_finished), hash_string(block_hash));
  }
  // 3. The mining queue.
  for (const auto& [height, body] : old_bodies) {
    if (new_set.contains(body)) continue;
    batch.Put(tagged('Q', confirmation_seq(body)), hash_string(body));
    result.requeued.push_back(body);
  }
  for (const auto& [block_hash, header] : branch) {
    if (old_set.contains(header.semi_finished)) continue;
    batch.Delete(tagged('Q', confirmation_seq(header.semi_finished)));
    result.dequeued.push_back(header.semi_finished);
  }
  batch.Put("T", hash_string(hash));
  if (auto written = write(batch); !written) return std::unexpected(written.error());
  result.new_tip = true;
  return result;
}

// ---- Store

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const fs::path& directory, const StoreOptions& options) {
  const std::string where = "store " + directory.string() + ": ";
  try {
    std::error_code ec;
    const bool exists = fs::exists(directory, ec);
    if (ec) return fail(where + ec.message());
    if (exists && !fs::is_directory(directory)) return fail(where + "not a directory");
    if (!exists) {
      if (!options.create_if_missing) return fail(where + "does not exist");
      fs::create_directories(directory, ec);
      if (ec) return fail(where + "cannot create: " + ec.message());
    } else if (!fs::exists(directory / "CURRENT") && !looks_like_leveldb(directory)) {
      return fail(where +
                  "not a store: the directory holds other files and no LevelDB "
                  "CURRENT file");
    }

    auto impl = std::make_unique<Impl>(options);
    impl->directory = directory;
    impl->cache.reset(leveldb::NewLRUCache(options.cache_bytes));
    impl->filter.reset(leveldb::NewBloomFilterPolicy(10));
    leveldb::Options db_options;
    db_options.create_if_missing = options.create_if_missing;
    db_options.paranoid_checks = true;
    db_options.block_cache = impl->cache.get();
    db_options.filter_policy = impl->filter.get();
    leveldb::DB* db = nullptr;
    leveldb::Status s = leveldb::DB::Open(db_options, directory.string(), &db);
    impl->db.reset(db);
    if (!s.ok()) return fail(describe_open_error(directory, s));

    auto format = impl->get("F");
    if (!format) {
      // Only an empty database becomes a store (a crash may have come between creating the
      // database and writing the marker); anything else is someone else's LevelDB.
      auto it = impl->iterator(nullptr);
      it->SeekToFirst();
      Impl::check(*it);
      if (it->Valid()) return fail(where + "not an mchain store (LevelDB without its marker)");
      it.reset();
      leveldb::WriteBatch batch;
      batch.Put("F", leveldb::Slice(kFormat.data(), kFormat.size()));
      std::string counter;
      put_u64(counter, 1);
      batch.Put("c", counter);
      leveldb::WriteOptions write;
      write.sync = true;
      if (s = impl->db->Write(write, &batch); !s.ok()) {
        return fail(where + "cannot initialise: " + s.ToString());
      }
    } else if (*format != kFormat) {
      return fail(where + "unsupported store format \"" + *format + "\"");
    }
    auto counter = impl->get("c");
    if (!counter || counter->size() != 8) return fail(where + "corrupt store: no sequence");
    impl->next_seq = get_be(*counter, 0, 8);
    return std::unique_ptr<Store>(new Store(std::move(impl)));
  } catch (const std::exception& e) {
    return fail(where + e.what());
  }
}

Status Store::add_genesis_node(const std::string& node, const crypto::PublicKey& key,
                               TimeUs since) {
  try {
    std::lock_guard lock(impl_->writer);
    return impl_->add_genesis_node(node, key, since);
  } catch (const std::exception& e) {
    return fail("store: genesis node " + node + ": " + e.what());
  }
}

Status Store::confirm(const SemiFinishedBlock& block) {
  try {
    std::lock_guard lock(impl_->writer);
    return impl_->confirm(block);
  } catch (const std::exception& e) {
    return fail(std::string("store: confirm: ") + e.what());
  }
}

Result<SemiFinishedBlock> Store::semi_finished(const Hash256& hash) const {
  try {
    auto value = impl_->get(tagged('S', hash));
    if (!value) return fail("semi-finished block " + short_hex(hash) + " is not confirmed");
    return SemiFinishedBlock::decode(as_bytes(*value), impl_->options.limits);
  } catch (const std::exception& e) {
    return fail(std::string("store: ") + e.what());
  }
}

bool Store::is_confirmed(const Hash256& semi_finished_hash) const {
  try {
    return impl_->get(tagged('C', semi_finished_hash)).has_value();
  } catch (const std::exception&) {
    return false;
  }
}

namespace {

// The 32-byte values of every key under a one-byte tag, in key order.
std::vector<Hash256> hashes_under(const Store::Impl& impl, std::string_view prefix) {
  std::vector<Hash256> out;
  auto it = impl.iterator(nullptr);
  for (it->Seek(leveldb::Slice(prefix.data(), prefix.size()));
       it->Valid() && it->key().starts_with(leveldb::Slice(prefix.data(), prefix.size()));
       it->Next()) {
    out.push_back(get_hash(std::string_view(it->value().data(), it->value().size()), 0));
  }
  Store::Impl::check(*it);
  return out;
}

}  // namespace

std::vector<Hash256> Store::mining_queue() const {
  try {
    return hashes_under(*impl_, "Q");
  } catch (const std::exception&) {
    return {};
  }
}

std::vector<Hash256> Store::confirmed() const {
  try {
    return hashes_under(*impl_, "s");
  } catch (const std::exception&) {
    return {};
  }
}

std::optional<Hash256> Store::last_confirmed() const {
  try {
    // The last key under 's' (confirmation order): seek past the tag and step back.
    auto it = impl_->iterator(nullptr);
    it->Seek("t");
    if (it->Valid()) {
      it->Prev();
    } else {
      it->SeekToLast();
    }
    Store::Impl::check(*it);
    if (!it->Valid() || !it->key().starts_with("s")) return std::nullopt;
    return get_hash(std::string_view(it->value().data(), it->value().size()), 0);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Result<AppendResult> Store::append(const Block& block) {
  try {
    std::lock_guard lock(impl_->writer);
    return impl_->append(block);
  } catch (const std::exception& e) {
    return fail(std::string("store: append: ") + e.what());
  }
}

std::optional<ChainTip> Store::tip() const {
  try {
    auto snapshot = impl_->snapshot();
    auto hash = impl_->get_hash_value("T", snapshot.get());
    if (!hash) return std::nullopt;
    auto stored = impl_->load_block(*hash, snapshot.get());
    if (!stored) return std::nullopt;
    return ChainTip{*hash, stored->header.height, stored->work};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Result<Block> Store::block(const Hash256& hash) const {
  try {
    auto snapshot = impl_->snapshot();
    auto stored = impl_->load_block(hash, snapshot.get());
    if (!stored) return fail("block " + short_hex(hash) + " is not stored");
    auto body = impl_->get(tagged('S', stored->header.semi_finished), snapshot.get());
    if (!body) return fail("corrupt store: the body of block " + short_hex(hash) + " is missing");
    auto semi = SemiFinishedBlock::decode(as_bytes(*body), impl_->options.limits);
    if (!semi) return std::unexpected(semi.error());
    return Block{stored->header, *std::move(semi)};
  } catch (const std::exception& e) {
    return fail(std::string("store: ") + e.what());
  }
}

bool Store::has_block(const Hash256& hash) const {
  try {
    return impl_->get(tagged('B', hash)).has_value();
  } catch (const std::exception&) {
    return false;
  }
}

std::vector<Hash256> Store::blocks_at(std::uint64_t height) const {
  try {
    std::vector<Hash256> out;
    const std::string prefix = tagged('H', height);
    auto it = impl_->iterator(nullptr);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      out.push_back(get_hash(std::string_view(it->key().data(), it->key().size()), 9));
    }
    Impl::check(*it);
    return out;
  } catch (const std::exception&) {
    return {};
  }
}

std::optional<Hash256> Store::main_chain_at(std::uint64_t height) const {
  try {
    return impl_->get_hash_value(tagged('M', height));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<Hash256> Store::mined_in(const Hash256& semi_finished_hash) const {
  try {
    return impl_->get_hash_value(tagged('W', semi_finished_hash));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<PackageLocation> Store::find_package(const Hash256& package_id) const {
  try {
    auto value = impl_->get(tagged('P', package_id));
    if (!value) return std::nullopt;
    if (value->size() != 44) throw StoreFailure("corrupt store: package location");
    return PackageLocation{package_id, get_hash(*value, 0),
                           static_cast<std::uint32_t>(get_be(*value, 32, 4)),
                           get_be(*value, 36, 8)};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::vector<PackageLocation> Store::vm_packages(const Uuid& vm, TimeUs from, TimeUs to) const {
  std::vector<PackageLocation> out;
  if (from >= to) return out;
  try {
    const std::string prefix = vm_index_prefix(vm, 0).substr(0, 17);
    const std::string end = vm_index_prefix(vm, to);
    auto it = impl_->iterator(nullptr);
    for (it->Seek(vm_index_prefix(vm, from)); it->Valid(); it->Next()) {
      const std::string_view key(it->key().data(), it->key().size());
      const std::string_view value(it->value().data(), it->value().size());
      if (key >= end || !key.starts_with(prefix)) break;
      if (key.size() != 57 || value.size() != 36) throw StoreFailure("corrupt store: VM index");
      out.push_back(PackageLocation{get_hash(key, 25), get_hash(value, 0),
                                    static_cast<std::uint32_t>(get_be(value, 32, 4)),
                                    get_be(key, 17, 8)});
    }
    Impl::check(*it);
    return out;
  } catch (const std::exception&) {
    return {};
  }
}

std::optional<crypto::PublicKey> Store::node_key(std::string_view node, TimeUs t) const {
  try {
    return impl_->key_at(HistoryEntry::Kind::node_key, node, t);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<crypto::PublicKey> Store::user_key(std::string_view user, TimeUs t) const {
  try {
    return impl_->key_at(HistoryEntry::Kind::user_key, user, t);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<VmAt> Store::vm_at(const Uuid& vm, TimeUs t) const {
  try {
    return impl_->vm_at(vm, t);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<PolicyInForce> Store::policy_version(const Uuid& vm, std::uint64_t version) const {
  try {
    // The first entry with this version in (since, seq, n) order, as MemoryView's scan.
    const std::string prefix = policy_prefix(
        std::string_view(reinterpret_cast<const char*>(vm.bytes.data()), 16), version);
    auto it = impl_->iterator(nullptr);
    it->Seek(prefix);
    Impl::check(*it);
    if (!it->Valid() || !it->key().starts_with(prefix)) return std::nullopt;
    const std::string_view key(it->key().data(), it->key().size());
    if (key.size() != prefix.size() + 20) throw StoreFailure("corrupt store: policy key");
    return PolicyInForce{
        PolicyRef{version, get_hash(std::string_view(it->value().data(), it->value().size()), 0)},
        get_be(key, prefix.size(), 8)};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool Store::has_package(const Hash256& id) const {
  try {
    return impl_->get(tagged('P', id)).has_value();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace mchain
