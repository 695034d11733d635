// Shared pieces of mchain-bench: the subcommand table entry, argument parsing and reporting.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "chain/error.h"

namespace mchain::bench {

// A bad command line: main prints the message and the subcommand's usage, then exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One subcommand. `run` gets the arguments after the subcommand's name and returns the exit
// code (0 ok, 1 the benchmark itself failed); it throws UsageError for a bad command line.
struct Subcommand {
  std::string_view name;
  std::string_view summary;
  std::string_view usage;  // the full usage text, from "usage: mchain-bench NAME" on
  int (*run)(std::span<const std::string_view> args);
};

// Walks "--flag value", "--flag=value" and "--switch" arguments in order.
class ArgCursor {
 public:
  explicit ArgCursor(std::span<const std::string_view> args) : args_(args) {}

  // The next flag's name including "--", or nullopt at the end. A non-flag is a UsageError.
  std::optional<std::string_view> next_flag();
  // The current flag's value: the "=..." part or the next argument.
  std::string_view value();
  // The value as an integer in [min, max].
  std::uint64_t uint_value(std::uint64_t min, std::uint64_t max);
  // Rejects "--switch=value" for a flag that takes none.
  void no_value();

 private:
  std::span<const std::string_view> args_;
  std::size_t next_ = 0;
  std::string_view flag_;
  std::optional<std::string_view> inline_value_;
};

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A failure in a benchmark's setup or pipeline is a bug in the chain code or the fixture:
// stop the run loudly (main reports it and exits 1).
template <class T>
T need(Result<T> result, std::string_view what) {
  if (!result) throw std::runtime_error(std::string(what) + ": " + result.error().message);
  return *std::move(result);
}

inline void need(const Status& status, std::string_view what) {
  if (!status) throw std::runtime_error(std::string(what) + ": " + status.error().message);
}

// A benchmark's working directory: the given one (which must be empty), or a fresh temporary
// one, removed at the end.
class WorkDir {
 public:
  WorkDir(const std::optional<std::filesystem::path>& given, std::string_view prefix);
  ~WorkDir();
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool remove_ = false;
};

// Median of a non-empty sample (the mean of the middle two for an even count).
double median(std::vector<double> sample);

// The median time in milliseconds of `runs` calls op(i), i = 0 .. runs-1, on this thread.
template <class Op>
double median_ms(std::uint64_t runs, Op op) {
  std::vector<double> sample;
  sample.reserve(runs);
  for (std::uint64_t i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    op(i);
    sample.push_back(seconds_since(start) * 1e3);
  }
  return median(std::move(sample));
}

// Prints `report` as one JSON line, or as aligned "key  value" lines for people.
void print_report(const nlohmann::ordered_json& report, bool json);

// ---- subcommands (one file each)
extern const Subcommand kValidateCommand;
extern const Subcommand kPowCommand;
extern const Subcommand kBuildCommand;
extern const Subcommand kMeasureCommand;
extern const Subcommand kVerifyRateCommand;
extern const Subcommand kConfirmCommand;
extern const Subcommand kPairingCommand;
extern const Subcommand kAbeCommand;

}  // namespace mchain::bench
