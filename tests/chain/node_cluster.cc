#include "chain/node_cluster.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <thread>

#include "chain/crypto/keyfile.h"
#include "chain/file_io.h"
#include "chain/package/records.h"
#include "chain/test_util.h"

namespace mchain::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kPoll = 20ms;

// The number after `label` in `line` ("confirmed " in "…, confirmed 12, pending 0").
std::optional<std::size_t> number_after(std::string_view line, std::string_view label) {
  const auto at = line.find(label);
  if (at == std::string_view::npos) return std::nullopt;
  const char* begin = line.data() + at + label.size();
  std::size_t value = 0;
  auto [end, ec] = std::from_chars(begin, line.data() + line.size(), value);
  if (ec != std::errc{} || end == begin) return std::nullopt;
  return value;
}

std::string heartbeat_text(const std::optional<Heartbeat>& h) {
  if (!h) return "no heartbeat";
  return "peers " + std::to_string(h->peers) + ", confirmed " + std::to_string(h->confirmed) +
         ", pending " + std::to_string(h->pending);
}

}  // namespace

std::uint16_t free_port() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return 0;
  socklen_t size = sizeof address;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.sin_port);
}

// ---- NodeProcess

NodeProcess::NodeProcess(const fs::path& cluster_dir, std::string id)
    : cluster_dir_(cluster_dir), dir_(cluster_dir / id), id_(std::move(id)) {}

NodeProcess::~NodeProcess() { kill(SIGKILL); }

bool NodeProcess::start() {
  if (running()) {
    ADD_FAILURE() << id_ << " is already running";
    return false;
  }
  std::error_code ec;
  fs::create_directories(dir_, ec);
  const fs::path log_path = dir_ / "node.log";
  // Both opened here, so that the child only makes async-signal-safe calls after fork().
  Fd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log) {
    ADD_FAILURE() << "cannot open " << log_path;
    return false;
  }
  Fd ns;
  if (!netns.empty()) {
    ns.reset(::open(netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) {
      ADD_FAILURE() << "cannot open network namespace " << netns;
      return false;
    }
  }
  run_offset_ = fs::file_size(log_path, ec);
  if (ec) run_offset_ = 0;

  std::vector<std::string> args = {MCHAIN_TEST_NODE,
                                   "--genesis",
                                   (cluster_dir_ / "genesis.json").string(),
                                   "--id",
                                   id_,
                                   "--key",
                                   (cluster_dir_ / (id_ + ".key")).string(),
                                   "--store",
                                   store_dir().string(),
                                   "--spool",
                                   spool_dir().string()};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed";
    return false;
  }
  if (pid == 0) {
    // A node must not outlive a test process that dies without its destructors.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(log.get(), STDOUT_FILENO);
    ::dup2(log.get(), STDERR_FILENO);
    if (ns && ::setns(ns.get(), CLONE_NEWNET) != 0) {
      static constexpr char kMessage[] = "node_cluster: setns failed\n";
      (void)!::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
      ::_exit(126);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  return true;
}

void NodeProcess::reap(int status) {
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  pid_ = -1;
}

bool NodeProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) reap(status);
  return pid_ > 0;
}

int NodeProcess::stop(std::chrono::seconds within) {
  if (!running()) return exit_code_;
  ::kill(pid_, SIGTERM);
  for (auto deadline = Clock::now() + within; Clock::now() < deadline;
       std::this_thread::sleep_for(10ms)) {
    if (!running()) return exit_code_;
  }
  ADD_FAILURE() << id_ << " did not stop within " << within.count() << " s of SIGTERM; log:\n"
                << log_tail();
  kill(SIGKILL);
  return exit_code_;
}

void NodeProcess::kill(int signal) {
  if (!running()) return;
  ::kill(pid_, signal);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reap(status);
}

void NodeProcess::signal(int signal) {
  if (running()) ::kill(pid_, signal);
}

std::string NodeProcess::read_log(std::uintmax_t from) const {
  std::ifstream in(dir_ / "node.log", std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(from));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string NodeProcess::log() const { return read_log(0); }
std::string NodeProcess::run_log() const { return read_log(run_offset_); }

std::string NodeProcess::log_tail(std::size_t bytes) const {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(dir_ / "node.log", ec);
  return read_log(ec || size < bytes ? 0 : size - bytes);
}

bool NodeProcess::wait_log(const std::string& text, std::chrono::milliseconds within) {
  for (auto deadline = Clock::now() + within; Clock::now() < deadline;
       std::this_thread::sleep_for(kPoll)) {
    if (run_log().find(text) != std::string::npos) return true;
  }
  return false;
}

std::optional<Heartbeat> NodeProcess::heartbeat() const {
  // Heartbeats come every 200 ms: the last few KiB of the run hold the latest.
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(dir_ / "node.log", ec);
  if (ec) return std::nullopt;
  const std::uintmax_t from = size > run_offset_ + 16384 ? size - 16384 : run_offset_;
  const std::string text = read_log(from);
  // Only complete lines: the node may be writing the last one.
  const auto end = text.rfind('\n');
  if (end == std::string::npos) return std::nullopt;
  std::string_view lines(text.data(), end);
  for (;;) {
    const auto start = lines.rfind('\n');
    const std::string_view line = start == std::string_view::npos ? lines : lines.substr(start + 1);
    if (line.starts_with("net: peers ")) {
      auto peers = number_after(line, "peers ");
      auto confirmed = number_after(line, "confirmed ");
      auto pending = number_after(line, "pending ");
      if (peers && confirmed && pending) {
        Heartbeat h{*peers, *confirmed, *pending};
        h.height = number_after(line, "height ").value_or(0);
        h.pool = number_after(line, "pool ").value_or(0);
        h.suspended = line.find("(suspended)") != std::string_view::npos;
        h.accusations = number_after(line, "accusations ").value_or(0);
        h.bad_marks = number_after(line, "bad marks ").value_or(0);
        h.bad_blocks = number_after(line, "bad blocks ").value_or(0);
        h.offences = number_after(line, "offences ").value_or(0);
        return h;
      }
    }
    if (start == std::string_view::npos) return std::nullopt;
    lines = lines.substr(0, start);
  }
}

bool NodeProcess::wait_heartbeat(const std::function<bool(const Heartbeat&)>& condition,
                                 std::chrono::milliseconds within) {
  for (auto deadline = Clock::now() + within; Clock::now() < deadline;
       std::this_thread::sleep_for(kPoll)) {
    if (auto h = heartbeat(); h && condition(*h)) return true;
  }
  return false;
}

bool NodeProcess::wait_peers(std::size_t peers, std::chrono::milliseconds within) {
  for (auto deadline = Clock::now() + within; Clock::now() < deadline;
       std::this_thread::sleep_for(kPoll)) {
    if (auto h = heartbeat(); h && h->peers == peers) return true;
  }
  return false;
}

bool NodeProcess::hand(const std::string& name, const Package& package) {
  const Bytes bytes = package.encode();
  auto written = write_file_atomically(spool_dir() / "inbox" / (name + ".pkg"),
                                       std::string(bytes.begin(), bytes.end()), 0644, "package");
  if (!written) ADD_FAILURE() << id_ << ": " << written.error().message;
  return written.has_value();
}

std::optional<std::string> NodeProcess::confirmed(const std::string& name,
                                                  std::chrono::milliseconds within) {
  const fs::path ok = spool_dir() / "done" / (name + ".ok");
  const fs::path err = spool_dir() / "done" / (name + ".err");
  for (auto deadline = Clock::now() + within; Clock::now() < deadline;
       std::this_thread::sleep_for(kPoll)) {
    if (fs::exists(err)) {
      auto text = read_small_file(err, 4096, "err");
      ADD_FAILURE() << id_ << " refused " << name << ": " << (text ? *text : "?");
      return std::nullopt;
    }
    if (auto text = read_small_file(ok, 4096, "ok")) return *text;
  }
  ADD_FAILURE() << id_ << " did not confirm " << name << "; log:\n" << log_tail();
  return std::nullopt;
}

Result<std::unique_ptr<Store>> NodeProcess::open_store() const {
  StoreOptions existing;
  existing.create_if_missing = false;
  return Store::open(store_dir(), existing);
}

// ---- TestCluster

TestCluster::TestCluster(const fs::path& dir, ClusterOptions options) {
  std::string nodes_json;
  for (std::size_t i = 0; i < options.nodes; ++i) {
    // Both node key algorithms in one cluster.
    keys_.push_back(
        make_key(i % 2 == 1 ? crypto::SigAlg::ed25519 : crypto::SigAlg::ecdsa_p256_sha256));
    if (auto written = crypto::write_private_key_file(dir / (id(i) + ".key"), keys_.back());
        !written) {
      ADD_FAILURE() << written.error().message;
      return;
    }
    const std::string host = i < options.hosts.size() ? options.hosts[i] : "127.0.0.1";
    const std::uint16_t port = i < options.ports.size() ? options.ports[i] : free_port();
    if (port == 0) {
      ADD_FAILURE() << "no free port for " << id(i);
      return;
    }
    nodes_json += std::string(i > 0 ? "," : "") + R"({"id": ")" + id(i) + R"(", "address": ")" +
                  host + ":" + std::to_string(port) + R"(", "key": ")" +
                  key_text(keys_.back().public_key()) + R"("})";
  }
  auto genesis =
      parse_genesis(R"({"chain": ")" + options.chain + R"(", "time": ")" +
                    format_time(now_us() - 1'000'000) + R"(", "difficulty": )" +
                    std::to_string(options.difficulty) + R"(, "nodes": [)" + nodes_json + "]}");
  if (!genesis) {
    ADD_FAILURE() << genesis.error().message;
    return;
  }
  genesis_ = *std::move(genesis);
  if (auto written =
          write_file_atomically(dir / "genesis.json", genesis_.to_json(), 0644, "genesis");
      !written) {
    ADD_FAILURE() << written.error().message;
    return;
  }
  for (std::size_t i = 0; i < options.nodes; ++i) {
    nodes_.push_back(std::make_unique<NodeProcess>(dir, id(i)));
    if (i < options.netns.size()) nodes_.back()->netns = options.netns[i];
  }
  ok_ = true;
}

bool TestCluster::start_all() {
  bool ok = true;
  for (auto& n : nodes_) {
    if (!n->running()) ok = n->start() && ok;
  }
  return ok;
}

bool TestCluster::start_with_world(const World& w) {
  return start_all() && wait_linked(std::chrono::seconds(30)) && setup_world(w);
}

bool TestCluster::wait_linked(std::chrono::milliseconds within) {
  const auto deadline = Clock::now() + within;
  for (;;) {
    std::size_t running = 0;
    for (auto& n : nodes_) running += n->running() ? 1 : 0;
    bool linked = running > 0;
    for (auto& n : nodes_) {
      if (!n->running()) continue;
      auto h = n->heartbeat();
      linked = linked && h && h->peers == running - 1;
    }
    if (linked) return true;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kPoll);
  }
  std::string report;
  for (auto& n : nodes_) {
    report +=
        n->id() + (n->running() ? ": " + heartbeat_text(n->heartbeat()) : ": not running") + "\n";
  }
  ADD_FAILURE() << "the nodes did not link:\n" << report;
  return false;
}

bool TestCluster::wait_confirmed_everywhere(std::size_t count, std::chrono::milliseconds within) {
  const auto deadline = Clock::now() + within;
  for (;;) {
    bool all = true;
    for (auto& n : nodes_) {
      if (!n->running()) continue;
      auto h = n->heartbeat();
      all = all && h && h->confirmed >= count;
    }
    if (all) return true;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kPoll);
  }
  std::string report;
  for (auto& n : nodes_) {
    if (!n->running()) continue;
    auto h = n->heartbeat();
    report += n->id() + ": " + heartbeat_text(h) + "\n";
    if (!h || h->confirmed < count) report += n->log_tail(4096) + "\n";
  }
  ADD_FAILURE() << count << " blocks not confirmed everywhere:\n" << report;
  return false;
}

bool TestCluster::stop_all() {
  bool ok = true;
  for (auto& n : nodes_) {
    if (!n->running()) continue;
    if (const int code = n->stop(); code != 0) {
      ADD_FAILURE() << n->id() << " exited with " << code << "; log:\n" << n->log_tail();
      ok = false;
    }
  }
  return ok;
}

bool TestCluster::hand(std::size_t i, const std::string& name, Package package,
                       std::chrono::milliseconds within) {
  if (!node(i).hand(name, package)) return false;
  handed_.emplace_back(name, std::move(package));
  return node(i).confirmed(name, within).has_value();
}

PackageSigners TestCluster::signers(const World& w) const { return {&w.vm_key, &w.alice, &key(0)}; }

Package TestCluster::report(const World& w, const std::string& text) const {
  return must(make_data_package({w.vm, "alice", id(0), now_us()}, w.policy1.ref(), w.data_key,
                                as_bytes(text), signers(w)));
}

std::vector<std::pair<std::string, Package>> TestCluster::world_packages(const World& w) const {
  return {{"user", must(make_membership_package({Uuid{}, "alice", id(0), now_us()},
                                                MembershipRecord{MembershipAction::register_user,
                                                                 "alice", w.alice.public_key()},
                                                {nullptr, &w.alice, &key(0)}))},
          {"binding",
           must(make_binding_package({w.vm, "alice", id(0), now_us()}, PolicyRef{},
                                     BindingEvent::started, w.vm_key.public_key(), signers(w)))},
          {"policy",
           must(make_policy_package({w.vm, "alice", id(0), now_us()}, w.policy1, signers(w)))}};
}

bool TestCluster::setup_world(const World& w, std::chrono::milliseconds within) {
  const std::size_t n = size();
  auto packages = world_packages(w);
  for (std::size_t i = 0; i < packages.size(); ++i) {
    auto& [name, package] = packages[i];
    if (!hand(i % n, name, std::move(package), within) ||
        !wait_confirmed_everywhere(i + 1, within)) {
      return false;
    }
  }
  return true;
}

std::size_t TestCluster::stop_and_expect_one_chain(std::vector<std::size_t> nodes) {
  if (nodes.empty()) {
    for (std::size_t i = 0; i < size(); ++i) nodes.push_back(i);
  }
  std::size_t furthest = 0;
  for (std::size_t i : nodes) {
    if (auto h = node(i).running() ? node(i).heartbeat() : std::nullopt) {
      furthest = std::max(furthest, h->confirmed);
    }
  }
  for (std::size_t i : nodes) {
    if (!node(i).running()) continue;
    EXPECT_TRUE(node(i).wait_heartbeat([&](const Heartbeat& h) { return h.confirmed >= furthest; },
                                       std::chrono::seconds(30)))
        << id(i) << " stays behind " << furthest << " blocks:\n"
        << node(i).log_tail();
  }
  if (!stop_all()) return 0;
  auto stores = stored_confirmed();
  const std::vector<Hash256>& first = stores[nodes.front()];
  for (std::size_t i : nodes) {
    EXPECT_EQ(stores[i], first) << id(i) << " and " << id(nodes.front()) << " differ";
    EXPECT_EQ(missing_packages(i), std::vector<std::string>{}) << id(i);
  }
  return ::testing::Test::HasFailure() ? 0 : first.size();
}

std::map<std::size_t, std::vector<Hash256>> TestCluster::stored_confirmed() {
  std::map<std::size_t, std::vector<Hash256>> out;
  for (std::size_t i = 0; i < size(); ++i) {
    if (node(i).running()) continue;
    auto store = node(i).open_store();
    if (!store) {
      ADD_FAILURE() << id(i) << ": " << store.error().message;
      continue;
    }
    out[i] = (*store)->confirmed();
  }
  return out;
}

std::vector<std::string> TestCluster::missing_packages(std::size_t i) {
  if (node(i).running()) {
    ADD_FAILURE() << id(i) << " is running: its store is busy";
    return {};
  }
  auto store = node(i).open_store();
  if (!store) {
    ADD_FAILURE() << id(i) << ": " << store.error().message;
    return {};
  }
  std::vector<std::string> missing;
  for (const auto& [name, package] : handed_) {
    if (!(*store)->find_package(package.id())) missing.push_back(name);
  }
  return missing;
}

}  // namespace mchain::testing
