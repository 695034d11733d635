// The offline demonstration behind `mchainctl demo`: keys on disk, a real file measured into
// a data package, validation, the rejection of a package with one byte flipped, and the same
// packages confirmed and mined on a one-host chain in DIR/chain for the chain commands.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>

#include "chain/error.h"

namespace mchain::agent {

struct DemoOptions {
  std::filesystem::path directory;         // where keys and packages are written
  std::filesystem::path measured_file;     // the real file to measure
  std::optional<std::size_t> flip_offset;  // default: the middle byte
  std::uint8_t difficulty = 12;            // proof of work of the demo chain's blocks
  bool json = false;
};

// Runs the demo, narrating to `out`. Fails if any step fails, if the valid package is not
// accepted, or if the tampered one is.
Status run_demo(const DemoOptions& options, std::ostream& out);

}  // namespace mchain::agent
