#include "chain/encoding/cbor.h"

#include <cstring>

namespace mchain::cbor {

namespace {

constexpr std::uint8_t kUnsigned = 0;
constexpr std::uint8_t kBytes = 2;
constexpr std::uint8_t kText = 3;
constexpr std::uint8_t kArray = 4;
// Nesting bound for item(): our structures are at most a few levels deep.
constexpr int kMaxDepth = 16;

const char* major_name(std::uint8_t major) {
  switch (major) {
    case 0: return "unsigned integer";
    case 1: return "negative integer";
    case 2: return "byte string";
    case 3: return "text string";
    case 4: return "array";
    case 5: return "map";
    case 6: return "tag";
    default: return "simple value or float";
  }
}

}  // namespace

void Writer::head(std::uint8_t major, std::uint64_t value) {
  const std::uint8_t m = static_cast<std::uint8_t>(major << 5);
  if (value < 24) {
    out_.push_back(static_cast<std::uint8_t>(m | value));
    return;
  }
  int size;
  std::uint8_t info;
  if (value <= 0xff) {
    size = 1, info = 24;
  } else if (value <= 0xffff) {
    size = 2, info = 25;
  } else if (value <= 0xffffffff) {
    size = 4, info = 26;
  } else {
    size = 8, info = 27;
  }
  out_.push_back(static_cast<std::uint8_t>(m | info));
  for (int shift = 8 * (size - 1); shift >= 0; shift -= 8) {
    out_.push_back(static_cast<std::uint8_t>(value >> shift));
  }
}

Writer& Writer::uint(std::uint64_t value) {
  head(kUnsigned, value);
  return *this;
}

Writer& Writer::bytes(ByteView value) {
  head(kBytes, value.size());
  out_.insert(out_.end(), value.begin(), value.end());
  return *this;
}

Writer& Writer::text(std::string_view value) {
  head(kText, value.size());
  out_.insert(out_.end(), value.begin(), value.end());
  return *this;
}

Writer& Writer::array(std::size_t count) {
  head(kArray, count);
  return *this;
}

Writer& Writer::raw(ByteView encoded) {
  out_.insert(out_.end(), encoded.begin(), encoded.end());
  return *this;
}

DecodeError::DecodeError(std::string field, std::string reason, std::size_t offset)
    : field_(std::move(field)),
      message_(field_ + ": " + reason + " (at byte " + std::to_string(offset) + ")") {}

void Reader::error(std::string_view field, std::string reason) const {
  throw DecodeError(std::string(field), std::move(reason), pos_);
}

std::uint64_t Reader::head(std::string_view field, std::uint8_t expected_major) {
  if (pos_ >= in_.size()) error(field, "input ends where the field should start");
  const std::uint8_t initial = in_[pos_];
  const std::uint8_t major = initial >> 5;
  const std::uint8_t info = initial & 0x1f;
  if (major != expected_major) {
    error(field, std::string("expected ") + major_name(expected_major) + ", found " +
                     major_name(major));
  }
  if (info < 24) {
    ++pos_;
    return info;
  }
  if (info > 27) error(field, "indefinite length or reserved encoding is not canonical");
  const std::size_t size = std::size_t{1} << (info - 24);
  if (in_.size() - pos_ - 1 < size) error(field, "input ends inside the field's header");
  std::uint64_t value = 0;
  for (std::size_t k = 0; k < size; ++k) value = value << 8 | in_[pos_ + 1 + k];
  // Shortest form: a value must not fit the next smaller encoding.
  static constexpr std::uint64_t kMinForSize[] = {24, 0x100, 0x10000, 0x100000000};
  if (value < kMinForSize[info - 24]) error(field, "integer or length not in shortest form");
  pos_ += 1 + size;
  return value;
}

std::uint64_t Reader::uint(std::string_view field, std::uint64_t max) {
  const std::size_t start = pos_;
  std::uint64_t value = head(field, kUnsigned);
  if (value > max) {
    pos_ = start;
    error(field, "value " + std::to_string(value) + " exceeds the maximum " + std::to_string(max));
  }
  return value;
}

ByteView Reader::payload(std::string_view field, std::uint8_t major, std::size_t max_size) {
  const char* noun = major == kText ? "text" : "byte string";
  const std::size_t start = pos_;
  std::uint64_t size = head(field, major);
  if (size > max_size) {
    pos_ = start;
    error(field, std::string(noun) + " of " + std::to_string(size) +
                     " bytes exceeds the limit of " + std::to_string(max_size));
  }
  if (size > in_.size() - pos_) error(field, std::string("input ends inside the ") + noun);
  ByteView out = in_.subspan(pos_, size);
  pos_ += size;
  return out;
}

ByteView Reader::bytes(std::string_view field, std::size_t max_size) {
  return payload(field, kBytes, max_size);
}

ByteView Reader::bytes_exact(std::string_view field, std::size_t size) {
  const std::size_t start = pos_;
  ByteView out = bytes(field, size);
  if (out.size() != size) {
    pos_ = start;
    error(field, "expected exactly " + std::to_string(size) + " bytes, found " +
                     std::to_string(out.size()));
  }
  return out;
}

std::string_view Reader::text(std::string_view field, std::size_t max_size) {
  ByteView raw = payload(field, kText, max_size);
  if (!valid_utf8(raw)) {
    pos_ -= raw.size();
    error(field, "text is not valid UTF-8");
  }
  return {reinterpret_cast<const char*>(raw.data()), raw.size()};
}

std::size_t Reader::array(std::string_view field, std::size_t max_count) {
  const std::size_t start = pos_;
  std::uint64_t count = head(field, kArray);
  if (count > max_count) {
    pos_ = start;
    error(field, "array of " + std::to_string(count) + " items exceeds the limit of " +
                     std::to_string(max_count));
  }
  return static_cast<std::size_t>(count);
}

void Reader::array_exact(std::string_view field, std::size_t count) {
  const std::size_t start = pos_;
  std::size_t found = array(field, SIZE_MAX);
  if (found != count) {
    pos_ = start;
    error(field, "expected an array of " + std::to_string(count) + " items, found " +
                     std::to_string(found));
  }
}

void Reader::skip_item(std::string_view field, int depth) {
  if (depth > kMaxDepth) error(field, "nesting deeper than " + std::to_string(kMaxDepth));
  if (pos_ >= in_.size()) error(field, "input ends where an item should start");
  switch (in_[pos_] >> 5) {
    case kUnsigned:
      uint(field);
      return;
    case kBytes:
      bytes(field, in_.size());
      return;
    case kText:
      text(field, in_.size());
      return;
    case kArray: {
      std::size_t count = array(field, in_.size() - pos_);
      for (std::size_t k = 0; k < count; ++k) skip_item(field, depth + 1);
      return;
    }
    default:
      error(field, std::string("unsupported CBOR type: ") + major_name(in_[pos_] >> 5));
  }
}

ByteView Reader::item(std::string_view field) {
  const std::size_t start = pos_;
  skip_item(field, 0);
  return in_.subspan(start, pos_ - start);
}

void Reader::finish(std::string_view what) {
  if (pos_ != in_.size()) {
    error(what, std::to_string(in_.size() - pos_) + " trailing bytes after the encoding");
  }
}

}  // namespace mchain::cbor
