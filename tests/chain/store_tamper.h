// Altering a closed store's bytes behind its back, through LevelDB itself: what an attacker
// with disk access (or a bad disk) does, and what `chain verify` must catch. Keys follow the
// schema at the top of chain/store/store.cc. Used by the chain unit tests and the CLI tests.
#pragma once

#include <leveldb/db.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "chain/error.h"
#include "chain/types.h"

namespace mchain::testing {

// tag || big-endian u64, e.g. 'M' height: the main-chain block at a height.
inline std::string store_key(char tag, std::uint64_t number) {
  std::string key(1, tag);
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>(number >> shift));
  return key;
}

// tag || 32-byte hash, e.g. 'B' block or 'S' semi-finished block.
inline std::string store_key(char tag, const Hash256& hash) {
  return std::string(1, tag) + std::string(hash.begin(), hash.end());
}

inline Hash256 hash_at(const std::string& value, std::size_t offset) {
  Hash256 out{};
  for (std::size_t i = 0; i < 32 && offset + i < value.size(); ++i) {
    out[i] = static_cast<std::uint8_t>(value[offset + i]);
  }
  return out;
}

// Where `needle` starts in a stored value, or npos. (std::search between the value's chars and
// Bytes would compare signed with unsigned and miss every byte above 0x7f.)
inline std::size_t find_bytes(const std::string& value, ByteView needle) {
  return value.find(std::string(needle.begin(), needle.end()));
}

// Reads the value under `key` of the store in `directory` (which no process may hold open),
// lets `edit` change it (nothing is written when `edit` is empty), and writes it back.
// Returns the value as it was before the edit.
inline Result<std::string> edit_store_entry(const std::filesystem::path& directory,
                                            const std::string& key,
                                            const std::function<void(std::string&)>& edit = {}) {
  leveldb::DB* raw = nullptr;
  leveldb::Options options;
  leveldb::Status s = leveldb::DB::Open(options, directory.string(), &raw);
  std::unique_ptr<leveldb::DB> db(raw);
  if (!s.ok()) return fail("open " + directory.string() + ": " + s.ToString());
  std::string value;
  if (s = db->Get(leveldb::ReadOptions(), key, &value); !s.ok()) {
    return fail("get: " + s.ToString());
  }
  if (edit) {
    std::string changed = value;
    edit(changed);
    leveldb::WriteOptions write;
    write.sync = true;
    if (s = db->Put(write, key, changed); !s.ok()) return fail("put: " + s.ToString());
  }
  return value;
}

// The main-chain block hash at `height` and the hash of its semi-finished body.
struct StoredMainBlock {
  Hash256 block{};
  Hash256 semi_finished{};
};

inline Result<StoredMainBlock> main_block_at(const std::filesystem::path& directory,
                                             std::uint64_t height) {
  auto hash = edit_store_entry(directory, store_key('M', height));
  if (!hash) return std::unexpected(hash.error());
  StoredMainBlock out{hash_at(*hash, 0), {}};
  auto stored = edit_store_entry(directory, store_key('B', out.block));
  if (!stored) return std::unexpected(stored.error());
  out.semi_finished = hash_at(*stored, 88);  // header offset 88: the semi-finished hash
  return out;
}

}  // namespace mchain::testing
