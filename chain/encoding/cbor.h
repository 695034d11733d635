// Canonical CBOR: the one encoding of everything that is hashed or signed.
//
// We use a strict subset of RFC 8949 with its core deterministic rules (§4.2.1), so that
// every value has exactly one encoding (rules in docs/encoding.md):
//   - only unsigned integers (major 0), byte strings (2), UTF-8 text strings (3) and
//     definite-length arrays (4); no maps, tags, floats, negative integers or indefinite
//     lengths; structures are positional arrays whose first element is a format version;
//   - every length and integer in its shortest form;
//   - nothing may follow the top-level item.
// The decoder enforces all of this and every size cap, naming the offending field.
#pragma once

#include "chain/error.h"
#include "chain/types.h"

#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace mchain::cbor {

class Writer {
 public:
  Writer& uint(std::uint64_t value);
  Writer& bytes(ByteView value);
  Writer& text(std::string_view value);
  // Header of a definite-length array of `count` items; the items follow.
  Writer& array(std::size_t count);
  // Appends an already encoded item verbatim (e.g. a nested structure's encoding).
  Writer& raw(ByteView encoded);

  const Bytes& data() const { return out_; }
  Bytes take() { return std::move(out_); }

 private:
  void head(std::uint8_t major, std::uint64_t value);
  Bytes out_;
};

// Thrown by Reader inside the chain module only; decode() turns it into an Error.
class DecodeError : public std::exception {
 public:
  DecodeError(std::string field, std::string reason, std::size_t offset);
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& field() const { return field_; }

 private:
  std::string field_;
  std::string message_;
};

// Reads one canonical item at a time. Every read names the field it expects, so that an
// error says e.g. "package.header.user: text longer than 64 bytes (at byte 41)".
class Reader {
 public:
  explicit Reader(ByteView input) : in_(input) {}

  std::uint64_t uint(std::string_view field, std::uint64_t max = UINT64_MAX);
  ByteView bytes(std::string_view field, std::size_t max_size);
  template <std::size_t N>
  std::array<std::uint8_t, N> fixed_bytes(std::string_view field) {
    ByteView b = bytes_exact(field, N);
    std::array<std::uint8_t, N> out;
    std::copy(b.begin(), b.end(), out.begin());
    return out;
  }
  ByteView bytes_exact(std::string_view field, std::size_t size);
  std::string_view text(std::string_view field, std::size_t max_size);
  // Returns the item count of an array header; fails above max_count.
  std::size_t array(std::string_view field, std::size_t max_count);
  void array_exact(std::string_view field, std::size_t count);
  // Returns the complete encoding of the next item (of any allowed type), validated.
  ByteView item(std::string_view field);
  // Fails unless every input byte was consumed.
  void finish(std::string_view what);

  std::size_t offset() const { return pos_; }
  bool at_end() const { return pos_ == in_.size(); }

 private:
  // Reads a head of the expected major type; returns its argument.
  std::uint64_t head(std::string_view field, std::uint8_t expected_major);
  // Reads a byte or text string's head and returns its payload.
  ByteView payload(std::string_view field, std::uint8_t major, std::size_t max_size);
  [[noreturn]] void error(std::string_view field, std::string reason) const;
  void skip_item(std::string_view field, int depth);

  ByteView in_;
  std::size_t pos_ = 0;
};

// Runs `parse(reader)` over `input`, requires the whole input to be consumed, and turns a
// DecodeError into an Error. `what` names the top-level structure for the messages.
template <class Parse>
auto decode(ByteView input, std::string_view what, Parse&& parse)
    -> Result<decltype(parse(std::declval<Reader&>()))> {
  try {
    Reader reader(input);
    auto value = parse(reader);
    reader.finish(what);
    return value;
  } catch (const DecodeError& e) {
    return fail(e.what());
  }
}

}  // namespace mchain::cbor
