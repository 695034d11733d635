// Byte containers, digests and identifiers shared by every chain structure.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chain/error.h"

namespace mchain {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;
using Hash256 = std::array<std::uint8_t, 32>;
using Hash512 = std::array<std::uint8_t, 64>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::string to_hex(ByteView bytes);
// Lower- or upper-case hex, even length; nullopt on anything else.
std::optional<Bytes> from_hex(std::string_view hex);

// RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
bool valid_utf8(ByteView s);
inline bool valid_utf8(std::string_view s) { return valid_utf8(as_bytes(s)); }

// User and node ids: 1–64 characters of [A-Za-z0-9._:@-].
inline constexpr std::size_t kMaxIdLength = 64;
bool valid_id(std::string_view id);

// A VM's libvirt UUID (RFC 4122 layout, 16 bytes). The nil UUID marks "no VM".
struct Uuid {
  std::array<std::uint8_t, 16> bytes{};

  // Accepts the canonical 8-4-4-4-12 form, either case.
  static std::optional<Uuid> parse(std::string_view text);
  // A random version-4 UUID.
  static Uuid random();
  std::string to_string() const;
  bool is_nil() const;
  auto operator<=>(const Uuid&) const = default;
};

// Microseconds since the Unix epoch, UTC: the unit of every timestamp on the chain.
using TimeUs = std::uint64_t;
TimeUs now_us();
// ISO 8601 in UTC with microseconds, e.g. "2026-11-22T15:38:06.028474Z", for logs and errors.
std::string format_time(TimeUs t);
// A decimal integer, all of `text` and nothing else.
std::optional<std::uint64_t> parse_u64(std::string_view text);

// A time as people write it: microseconds since the epoch, or ISO 8601 UTC
// ("2026-11-22T15:38:58Z", optionally with up to six fractional digits).
Result<TimeUs> parse_time(std::string_view text);

}  // namespace mchain
