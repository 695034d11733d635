// mchain-bench: the project's one benchmark driver. Each subcommand is one entry in
// kSubcommands and prints one report, as JSON with --json.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <vector>

#include "bench/bench.h"

namespace mchain::bench {

namespace {

// Adding a subcommand: define its Subcommand in its own file and list it here.
constexpr const Subcommand* kSubcommands[] = {
    &kValidateCommand,   &kPowCommand,     &kBuildCommand,   &kMeasureCommand,
    &kVerifyRateCommand, &kConfirmCommand, &kPairingCommand, &kAbeCommand,
};

constexpr int kExitUsage = 2;

void print_usage(std::ostream& out) {
  out << "usage: mchain-bench SUBCOMMAND [FLAGS]\n"
         "       mchain-bench SUBCOMMAND --help\n"
         "subcommands:\n";
  std::size_t width = 0;
  for (const Subcommand* command : kSubcommands) width = std::max(width, command->name.size());
  for (const Subcommand* command : kSubcommands) {
    out << "  " << command->name << std::string(width + 3 - command->name.size(), ' ')
        << command->summary << '\n';
  }
}

const Subcommand* find_subcommand(std::string_view name) {
  for (const Subcommand* command : kSubcommands) {
    if (command->name == name) return command;
  }
  return nullptr;
}

std::string format_number(const nlohmann::ordered_json& value) {
  if (!value.is_number_float()) return value.dump();
  const double x = value.get<double>();
  char text[64];
  // Rates are large and only their integer part is meaningful; durations are small.
  std::snprintf(text, sizeof text, std::fabs(x) >= 100 ? "%.1f" : "%.6g", x);
  return text;
}

}  // namespace

WorkDir::WorkDir(const std::optional<std::filesystem::path>& given, std::string_view prefix) {
  namespace fs = std::filesystem;
  if (given) {
    fs::create_directories(*given);
    if (!fs::is_empty(*given)) throw UsageError("--dir: " + given->string() + " is not empty");
    path_ = *given;
    return;
  }
  std::string pattern = (fs::temp_directory_path() / (std::string(prefix) + ".XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("cannot create a temporary directory in " +
                             fs::temp_directory_path().string());
  }
  path_ = pattern;
  remove_ = true;
}

WorkDir::~WorkDir() {
  std::error_code ignored;
  if (remove_) std::filesystem::remove_all(path_, ignored);
}

std::optional<std::string_view> ArgCursor::next_flag() {
  if (inline_value_) throw UsageError(std::string(flag_) + " takes no value");
  if (next_ >= args_.size()) return std::nullopt;
  std::string_view arg = args_[next_++];
  if (!arg.starts_with("--") || arg.size() == 2) {
    throw UsageError("unexpected argument '" + std::string(arg) + "'");
  }
  if (std::size_t eq = arg.find('='); eq != std::string_view::npos) {
    flag_ = arg.substr(0, eq);
    inline_value_ = arg.substr(eq + 1);
  } else {
    flag_ = arg;
    inline_value_.reset();
  }
  return flag_;
}

std::string_view ArgCursor::value() {
  if (inline_value_) {
    std::string_view v = *inline_value_;
    inline_value_.reset();
    return v;
  }
  if (next_ >= args_.size()) throw UsageError(std::string(flag_) + " needs a value");
  return args_[next_++];
}

std::uint64_t ArgCursor::uint_value(std::uint64_t min, std::uint64_t max) {
  const std::string flag(flag_);
  std::string_view text = value();
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  const bool whole = !text.empty() && end == text.data() + text.size();
  if (!whole || (ec != std::errc{} && ec != std::errc::result_out_of_range)) {
    throw UsageError(flag + ": '" + std::string(text) + "' is not a non-negative integer");
  }
  if (ec == std::errc::result_out_of_range || v < min || v > max) {
    throw UsageError(flag + ": " + std::string(text) + " is outside [" + std::to_string(min) +
                     ", " + std::to_string(max) + "]");
  }
  return v;
}

void ArgCursor::no_value() {
  if (inline_value_) throw UsageError(std::string(flag_) + " takes no value");
}

double median(std::vector<double> sample) {
  std::sort(sample.begin(), sample.end());
  const std::size_t n = sample.size();
  return n % 2 == 1 ? sample[n / 2] : (sample[n / 2 - 1] + sample[n / 2]) / 2;
}

void print_report(const nlohmann::ordered_json& report, bool json) {
  if (json) {
    std::cout << report.dump() << '\n';
    return;
  }
  std::size_t width = 0;
  for (const auto& [key, value] : report.items()) width = std::max(width, key.size());
  for (const auto& [key, value] : report.items()) {
    std::cout << key << std::string(width + 2 - key.size(), ' ')
              << (value.is_string() ? value.get<std::string>() : format_number(value)) << '\n';
  }
}

}  // namespace mchain::bench

int main(int argc, char** argv) {
  using namespace mchain::bench;
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    print_usage(std::cerr);
    return kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(std::cout);
    return 0;
  }
  const Subcommand* command = find_subcommand(args[0]);
  if (command == nullptr) {
    std::cerr << "mchain-bench: unknown subcommand '" << args[0] << "'\n";
    print_usage(std::cerr);
    return kExitUsage;
  }
  const std::span<const std::string_view> rest(args.begin() + 1, args.end());
  if (std::ranges::any_of(rest, [](std::string_view a) { return a == "--help" || a == "-h"; })) {
    std::cout << command->usage;
    return 0;
  }
  try {
    return command->run(rest);
  } catch (const UsageError& e) {
    std::cerr << "mchain-bench " << command->name << ": " << e.what() << '\n' << command->usage;
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "mchain-bench " << command->name << ": " << e.what() << '\n';
    return 1;
  }
}
