// Errors at module boundaries: std::expected with a human-readable message.
// Inside a module code may throw; every public entry point converts to Result.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace mchain {

struct Error {
  std::string message;
};

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(std::string message) {
  return std::unexpected(Error{std::move(message)});
}

}  // namespace mchain
