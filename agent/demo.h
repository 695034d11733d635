// The offline demonstration behind `mchainctl demo`: keys on disk, a real file measured into
// a data package, validation, and the rejection of a package with one byte flipped.
#pragma once

#include "chain/error.h"

#include <filesystem>
#include <iosfwd>
#include <optional>

namespace mchain::agent {

struct DemoOptions {
  std::filesystem::path directory;      // where keys and packages are written
  std::filesystem::path measured_file;  // the real file to measure
  std::optional<std::size_t> flip_offset;  // default: the middle byte
  bool json = false;
};

// Runs the demo, narrating to `out`. Fails if any step fails, if the valid package is not
// accepted, or if the tampered one is.
Status run_demo(const DemoOptions& options, std::ostream& out);

}  // namespace mchain::agent
