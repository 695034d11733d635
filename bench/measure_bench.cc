// mchain-bench measure: the paper's measurement workload (294 configuration files) through a
// real qemu-ga on a private socket, with both collectors, against sha256sum over the same
// files in the same run (the limit); and the content collector's throughput on one large file.
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <random>

#include "bench/bench.h"
#include "measure/measurement.h"
#include "tests/measure/host_agent.h"

namespace mchain::bench {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kUsage =
    "usage: mchain-bench measure [--files N] [--big-mib M] [--repeat R] [--chunk-kib K] [--json]\n"
    "Writes N configuration-like files (the paper measures 294) and one M MiB file into a\n"
    "temporary directory, starts qemu-ga on a private unix socket (it runs on this host, so\n"
    "the 'guest' is this machine), and times, R times each:\n"
    "  bulk     the bulk collector (guest-exec of find/stat/sha256sum) over the N files\n"
    "  content  the content collector (guest-file-read, hashed here) over the N files\n"
    "  sha256sum  sha256sum over the same N files: the floor for reading and hashing them\n"
    "and the content collector and sha256sum over the big file. Medians are reported.\n"
    "  --files N    number of small files (default 294)\n"
    "  --big-mib M  size of the large file in MiB, 0 to skip (default 256)\n"
    "  --repeat R   runs of each measurement (default 5)\n"
    "  --chunk-kib K  guest-file-read size of the content collector (default: its own)\n"
    "  --json       print one JSON object instead of aligned lines\n";

struct Options {
  std::uint64_t files = 294;
  std::uint64_t big_mib = 256;
  std::uint64_t repeat = 5;
  std::uint64_t chunk_kib = 0;  // 0: the collector's default
  bool json = false;
};

Options parse_options(std::span<const std::string_view> args) {
  Options o;
  ArgCursor cursor(args);
  while (auto flag = cursor.next_flag()) {
    if (*flag == "--files") {
      o.files = cursor.uint_value(1, 1'000'000);
    } else if (*flag == "--big-mib") {
      o.big_mib = cursor.uint_value(0, 16384);
    } else if (*flag == "--repeat") {
      o.repeat = cursor.uint_value(1, 1000);
    } else if (*flag == "--chunk-kib") {
      o.chunk_kib = cursor.uint_value(1, 1024);
    } else if (*flag == "--json") {
      cursor.no_value();
      o.json = true;
    } else {
      throw UsageError("unknown flag " + std::string(*flag));
    }
  }
  return o;
}


// Configuration files are mostly small text: sizes between 100 B and 16 KiB, a few
// subdirectories, fixed seed so every run measures the same bytes.
std::vector<fs::path> write_config_tree(const fs::path& root, std::uint64_t count) {
  std::mt19937_64 rng(294);
  std::uniform_int_distribution<std::size_t> size(100, 16 * 1024);
  std::vector<fs::path> files;
  for (std::uint64_t i = 0; i < count; ++i) {
    fs::path dir = root / ("conf.d-" + std::to_string(i % 12));
    fs::create_directories(dir);
    fs::path file = dir / ("setting-" + std::to_string(i) + ".conf");
    std::string text;
    const std::size_t n = size(rng);
    while (text.size() < n) text += "key_" + std::to_string(rng() % 1000) + " = value\n";
    text.resize(n);
    std::ofstream(file, std::ios::binary) << text;
    files.push_back(file);
  }
  return files;
}

void write_big_file(const fs::path& file, std::uint64_t mib) {
  std::ofstream out(file, std::ios::binary);
  std::vector<std::uint64_t> block(1 << 17);  // 1 MiB
  std::mt19937_64 rng(256);
  for (std::uint64_t i = 0; i < mib; ++i) {
    for (auto& word : block) word = rng();
    out.write(reinterpret_cast<const char*>(block.data()),
              static_cast<std::streamsize>(block.size() * sizeof block[0]));
  }
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

// Runs sha256sum over `files` (output discarded) and returns the wall time.
double time_sha256sum(const std::vector<fs::path>& files) {
  std::vector<std::string> args = {"sha256sum", "--"};
  for (const auto& f : files) args.push_back(f.string());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto start = Clock::now();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::execvp("sha256sum", argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("sha256sum failed");
  return seconds_since(start);
}

measure::Policy policy_for(const std::string& text) {
  return need(measure::parse_policy(text, "bench.pol"), "benchmark policy");
}

// One measurement from a fresh connection, as an agent's scheduled run would be.
double time_measurement(const fs::path& socket, const measure::Policy& policy,
                        measure::CollectorChoice collector, std::size_t expect_files,
                        std::size_t chunk_bytes) {
  auto start = Clock::now();
  auto transport = measure::qga::connect_unix_socket(socket);
  if (!transport) throw std::runtime_error("connect: " + transport.error().message);
  measure::qga::ClientOptions client_options;
  client_options.command_timeout = std::chrono::seconds(60);
  measure::qga::Client client(std::move(*transport), client_options);
  measure::MeasureOptions options;
  options.collector = collector;
  options.content.chunk_bytes = chunk_bytes;
  measure::Measurement m = measure::measure_guest(client, policy, nullptr, options);
  double seconds = seconds_since(start);
  if (!m.snapshot) throw std::runtime_error("measurement failed: " + m.report.errors.front());
  if (m.snapshot->files.size() < expect_files) {
    throw std::runtime_error("measured " + std::to_string(m.snapshot->files.size()) +
                             " objects, expected at least " + std::to_string(expect_files));
  }
  for (const auto& [path, record] : m.snapshot->files) {
    if (!record.error.empty()) throw std::runtime_error(path + ": " + record.error);
  }
  return seconds;
}

int run(std::span<const std::string_view> args) {
  const Options o = parse_options(args);
  WorkDir scratch(std::nullopt, "mchain-bench-measure");
  const fs::path tree = scratch.path() / "etc";
  const std::vector<fs::path> files = write_config_tree(tree, o.files);
  fs::create_directories(scratch.path() / "agent");
  auto agent = testing::HostAgent::start(scratch.path() / "agent");
  if (!agent) throw std::runtime_error(testing::HostAgent::unavailable_reason());

  // bulk walks the tree; content, which cannot list directories, gets one rule per file.
  const measure::Policy bulk_policy =
      policy_for(tree.string() + " -> $(IgnoreNone) -a (rulename = config);\n");
  std::string per_file;
  for (const auto& f : files) per_file += f.string() + " -> +s+sha256;\n";
  const measure::Policy content_policy = policy_for(per_file);

  std::vector<double> bulk, content, sum;
  for (std::uint64_t i = 0; i < o.repeat; ++i) {
    bulk.push_back(time_measurement(agent->socket(), bulk_policy, measure::CollectorChoice::kBulk,
                                    files.size(), 0));
    content.push_back(time_measurement(agent->socket(), content_policy,
                                       measure::CollectorChoice::kContent, files.size(),
                                       o.chunk_kib * 1024));
    sum.push_back(time_sha256sum(files));
  }

  nlohmann::ordered_json report;
  report["files"] = files.size();
  std::uint64_t bytes = 0;
  for (const auto& f : files) bytes += fs::file_size(f);
  report["bytes"] = bytes;
  report["repeat"] = o.repeat;
  report["bulk_seconds"] = median(bulk);
  report["content_seconds"] = median(content);
  report["sha256sum_seconds"] = median(sum);
  report["bulk_goal_seconds"] = 1.0;
  report["content_goal_seconds"] = 3.0;

  if (o.big_mib > 0) {
    const fs::path big = scratch.path() / "big.bin";
    write_big_file(big, o.big_mib);
    const measure::Policy big_policy = policy_for(big.string() + " -> +s+sha256;\n");
    std::vector<double> big_content, big_sum;
    for (std::uint64_t i = 0; i < o.repeat; ++i) {
      big_content.push_back(time_measurement(
          agent->socket(), big_policy, measure::CollectorChoice::kContent, 1, o.chunk_kib * 1024));
      big_sum.push_back(time_sha256sum({big}));
    }
    report["big_file_mib"] = o.big_mib;
    report["big_content_seconds"] = median(big_content);
    report["big_sha256sum_seconds"] = median(big_sum);
    report["big_content_mib_per_s"] = static_cast<double>(o.big_mib) / median(big_content);
    report["big_ratio_to_sha256sum"] = median(big_content) / median(big_sum);
    report["big_ratio_goal"] = 3.0;
  }
  report["failures"] = 0;
  print_report(report, o.json);
  return 0;
}

}  // namespace

const Subcommand kMeasureCommand{
    "measure", "guest measurement through a real qemu-ga: bulk and content collectors vs sha256sum",
    kUsage, run};

}  // namespace mchain::bench
