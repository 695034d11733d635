#include "chain/block/block.h"

#include "chain/block/merkle.h"
#include "chain/crypto/hash.h"
#include "chain/encoding/cbor.h"
#include "chain/encoding/fields.h"
#include "chain/pow/pow.h"

#include <algorithm>
#include <set>

namespace mchain {

namespace {

constexpr std::uint64_t kBlockFormatVersion = 1;
static_assert(kHeaderSize == pow::kHeaderSize, "the miner's header is the block header");
// Marks come from the nodes of the valid pool; no cluster has more.
constexpr std::size_t kMaxMarks = 1024;

Bytes domain_message(std::string_view domain, const Hash256& hash) {
  Bytes message(domain.begin(), domain.end());
  message.push_back(0);
  message.insert(message.end(), hash.begin(), hash.end());
  return message;
}

void put_be(std::uint8_t* out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i, value >>= 8) out[i] = static_cast<std::uint8_t>(value);
}

std::uint64_t get_be(const std::uint8_t* in, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = value << 8 | in[i];
  return value;
}

void write_candidate(cbor::Writer& w, const Candidate& c) {
  w.array(7)
      .uint(kBlockFormatVersion)
      .uint(static_cast<std::uint64_t>(c.type))
      .text(c.leader)
      .uint(c.round)
      .uint(c.timestamp)
      .bytes(c.previous)
      .array(c.packages.size());
  for (const Package& p : c.packages) w.raw(p.encode());
}

Candidate read_candidate(cbor::Reader& r, const BlockLimits& limits) {
  r.array_exact("candidate", 7);
  cbor::expect_version(r, "candidate.version", kBlockFormatVersion, "block format");
  Candidate c;
  c.type = static_cast<BlockType>(r.uint("candidate.type", 1));
  c.leader = cbor::read_id(r, "candidate.leader");
  c.round = r.uint("candidate.round");
  c.timestamp = r.uint("candidate.timestamp");
  c.previous = r.fixed_bytes<32>("candidate.previous");
  const std::size_t count = r.array("candidate.packages", limits.max_packages);
  c.packages.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::string field = "candidate.packages[" + std::to_string(i) + "]";
    const std::size_t at = r.offset();
    auto package = Package::decode(r.item(field), limits.package);
    if (!package) throw cbor::DecodeError(field, package.error().message, at);
    c.packages.push_back(*std::move(package));
  }
  return c;
}

void write_semi(cbor::Writer& w, const SemiFinishedBlock& s) {
  w.array(4).uint(kBlockFormatVersion);
  write_candidate(w, s.candidate);
  cbor::write_signature(w, s.leader_signature);
  w.array(s.marks.size());
  for (const ValidMark& mark : s.marks) {
    w.array(2).text(mark.node);
    cbor::write_signature(w, mark.signature);
  }
}

SemiFinishedBlock read_semi(cbor::Reader& r, const BlockLimits& limits,
                            ByteView* candidate_bytes = nullptr) {
  r.array_exact("semi_finished", 4);
  cbor::expect_version(r, "semi_finished.version", kBlockFormatVersion, "block format");
  SemiFinishedBlock s;
  const std::size_t candidate_at = r.offset();
  s.candidate = read_candidate(r, limits);
  if (candidate_bytes != nullptr) {
    *candidate_bytes = candidate_bytes->subspan(candidate_at, r.offset() - candidate_at);
  }
  s.leader_signature = cbor::read_signature(r, "semi_finished.leader_signature");
  const std::size_t count = r.array("semi_finished.marks", kMaxMarks);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t at = r.offset();
    r.array_exact("semi_finished.marks", 2);
    ValidMark mark{cbor::read_id(r, "semi_finished.marks.node"),
                   cbor::read_signature(r, "semi_finished.marks.signature")};
    // One canonical order (strictly increasing node ids) makes the block hash unique.
    if (!s.marks.empty() && !(s.marks.back().node < mark.node)) {
      throw cbor::DecodeError("semi_finished.marks", "not sorted by node id, or repeated", at);
    }
    s.marks.push_back(std::move(mark));
  }
  return s;
}

}  // namespace

std::string_view to_string(BlockType type) {
  return type == BlockType::data ? "data" : "policy";
}

BlockType block_type_for(PackageType type) {
  return type == PackageType::data ? BlockType::data : BlockType::policy;
}

Bytes Candidate::encode() const {
  cbor::Writer w;
  write_candidate(w, *this);
  return w.take();
}

Hash256 Candidate::hash() const { return crypto::sha256(encode()); }

Hash256 Candidate::merkle_root() const {
  std::vector<Hash256> ids;
  ids.reserve(packages.size());
  for (const Package& p : packages) ids.push_back(p.id());
  return mchain::merkle_root(ids);
}

Bytes candidate_signing_message(const Hash256& candidate_hash) {
  return domain_message("mchain/candidate/v1", candidate_hash);
}

Bytes valid_mark_signing_message(const Hash256& candidate_hash) {
  return domain_message("mchain/valid-mark/v1", candidate_hash);
}

Result<SemiFinishedBlock> SemiFinishedBlock::propose(Candidate candidate,
                                                     const crypto::Signer& leader) {
  if (!valid_id(candidate.leader)) return fail("invalid leader id '" + candidate.leader + "'");
  auto signature = leader.sign(candidate_signing_message(candidate.hash()));
  if (!signature) return fail("leader signature: " + signature.error().message);
  return SemiFinishedBlock{std::move(candidate), *std::move(signature), {}};
}

Status SemiFinishedBlock::add_mark(std::string node, const crypto::Signer& signer) {
  if (!valid_id(node)) return fail("invalid node id '" + node + "'");
  auto signature = signer.sign(valid_mark_signing_message(candidate.hash()));
  if (!signature) return fail("valid mark of " + node + ": " + signature.error().message);
  auto at = std::lower_bound(marks.begin(), marks.end(), node,
                             [](const ValidMark& m, const std::string& n) { return m.node < n; });
  if (at != marks.end() && at->node == node) {
    at->signature = *std::move(signature);
  } else {
    marks.insert(at, ValidMark{std::move(node), *std::move(signature)});
  }
  return {};
}

Bytes SemiFinishedBlock::encode() const {
  cbor::Writer w;
  write_semi(w, *this);
  return w.take();
}

Result<SemiFinishedBlock> SemiFinishedBlock::decode(ByteView encoded, const BlockLimits& limits) {
  if (encoded.size() > limits.max_block_bytes) {
    return fail("semi-finished block of " + std::to_string(encoded.size()) +
                " bytes exceeds the limit of " + std::to_string(limits.max_block_bytes));
  }
  return cbor::decode(encoded, "semi_finished",
                      [&](cbor::Reader& r) { return read_semi(r, limits); });
}

Result<SemiFinishedBlock> SemiFinishedBlock::decode(ByteView encoded, const BlockLimits& limits,
                                                    Hash256& candidate_hash) {
  if (encoded.size() > limits.max_block_bytes) return decode(encoded, limits);  // the error
  ByteView candidate = encoded;
  auto block = cbor::decode(encoded, "semi_finished",
                            [&](cbor::Reader& r) { return read_semi(r, limits, &candidate); });
  if (block) candidate_hash = crypto::sha256(candidate);
  return block;
}

Hash256 SemiFinishedBlock::hash() const { return crypto::sha256(encode()); }

std::array<std::uint8_t, kHeaderSize> BlockHeader::encode() const {
  std::array<std::uint8_t, kHeaderSize> out{};
  put_be(&out[0], kHeaderVersion, 4);
  out[4] = static_cast<std::uint8_t>(type);
  out[5] = diff;
  // out[6..8): reserved, zero
  put_be(&out[8], height, 8);
  put_be(&out[16], timestamp, 8);
  std::copy(previous.begin(), previous.end(), out.begin() + 24);
  std::copy(merkle_root.begin(), merkle_root.end(), out.begin() + 56);
  std::copy(semi_finished.begin(), semi_finished.end(), out.begin() + 88);
  put_be(&out[120], nonce_hi, 8);
  put_be(&out[128], nonce_lo, 8);
  return out;
}

Result<BlockHeader> BlockHeader::decode(ByteView in) {
  if (in.size() != kHeaderSize) {
    return fail("block header: expected " + std::to_string(kHeaderSize) + " bytes, found " +
                std::to_string(in.size()));
  }
  if (std::uint64_t v = get_be(&in[0], 4); v != kHeaderVersion) {
    return fail("block header.version: unknown header version " + std::to_string(v));
  }
  if (in[4] > 1) return fail("block header.type: unknown block type " + std::to_string(in[4]));
  if (in[6] != 0 || in[7] != 0) return fail("block header.reserved: must be zero");
  BlockHeader h;
  h.type = static_cast<BlockType>(in[4]);
  h.diff = in[5];
  h.height = get_be(&in[8], 8);
  h.timestamp = get_be(&in[16], 8);
  std::copy_n(in.begin() + 24, 32, h.previous.begin());
  std::copy_n(in.begin() + 56, 32, h.merkle_root.begin());
  std::copy_n(in.begin() + 88, 32, h.semi_finished.begin());
  h.nonce_hi = get_be(&in[120], 8);
  h.nonce_lo = get_be(&in[128], 8);
  return h;
}

Hash256 BlockHeader::hash() const { return crypto::sha256(encode()); }

Bytes Block::encode() const {
  cbor::Writer w;
  w.array(3).uint(kBlockFormatVersion).bytes(header.encode());
  write_semi(w, body);
  return w.take();
}

Result<Block> Block::decode(ByteView encoded, const BlockLimits& limits) {
  if (encoded.size() > limits.max_block_bytes + 4096) {
    return fail("block of " + std::to_string(encoded.size()) + " bytes exceeds the limit of " +
                std::to_string(limits.max_block_bytes));
  }
  return cbor::decode(encoded, "block", [&](cbor::Reader& r) {
    r.array_exact("block", 3);
    cbor::expect_version(r, "block.version", kBlockFormatVersion, "block format");
    const std::size_t at = r.offset();
    auto header = BlockHeader::decode(r.bytes_exact("block.header", kHeaderSize));
    if (!header) throw cbor::DecodeError("block.header", header.error().message, at);
    return Block{*header, read_semi(r, limits)};
  });
}

Status check_block_structure(const Block& block) {
  const BlockHeader& h = block.header;
  const Candidate& c = block.body.candidate;
  if (h.type != c.type) return fail("header type differs from the candidate's");
  if (h.diff == 0) return fail("difficulty 0 is not allowed");
  std::set<Hash256> ids;
  for (const Package& p : c.packages) {
    if (block_type_for(p.header().type) != c.type) {
      return fail(std::string(to_string(p.header().type)) + " package " +
                  to_hex(p.id()).substr(0, 16) + " in a " + std::string(to_string(c.type)) +
                  " block");
    }
    if (!ids.insert(p.id()).second) {
      return fail("package " + to_hex(p.id()).substr(0, 16) + " appears twice");
    }
  }
  if (h.merkle_root != c.merkle_root()) return fail("Merkle root does not match the packages");
  if (h.semi_finished != block.body.hash()) {
    return fail("semi-finished hash does not match the block body");
  }
  if (!pow::meets_difficulty(h.hash(), static_cast<std::uint8_t>(h.type), h.diff)) {
    return fail("block hash does not meet difficulty " + std::to_string(h.diff));
  }
  return {};
}

}  // namespace mchain
