// Checks and limits shared by the parser and Policy::from_parts, so that a policy built either
// way obeys the same rules and its canonical text always parses back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mchain::measure::detail {

inline constexpr std::size_t kMaxPolicyBytes = std::size_t{1} << 20;
inline constexpr std::size_t kMaxRules = 100000;
inline constexpr std::size_t kMaxStopPoints = 100000;
inline constexpr std::size_t kMaxPathBytes = 4096;  // PATH_MAX on Linux
inline constexpr std::size_t kMaxNameBytes = 4096;  // a default name is the path
inline constexpr std::uint32_t kMaxSeverity = 1000000;

// Why `path` is not an absolute, normalised path; empty when it is.
std::string path_problem(std::string_view path);
// Why `name` cannot be a rule name; empty when it can.
std::string name_problem(std::string_view name);

// `text` as a double-quoted string with \" \\ and \$ escaped.
std::string quote(std::string_view text);

}  // namespace mchain::measure::detail
