#include "bench/process_cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "bench/bench.h"
#include "chain/crypto/keyfile.h"
#include "chain/file_io.h"
#include "chain/node/genesis.h"

namespace mchain::bench {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A loopback port nobody listens on now; the node binds it moments later.
std::uint16_t free_port() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), size) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    throw std::runtime_error("cannot find a free port on 127.0.0.1");
  }
  return ntohs(address.sin_port);
}

std::string read_from(const fs::path& file, std::uintmax_t from) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(from));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::uintmax_t size_or_zero(const fs::path& file) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(file, ec);
  return ec ? 0 : size;
}

std::string exit_text(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  return "was killed by signal " + std::to_string(WTERMSIG(status));
}

}  // namespace

ProcessCluster::ProcessCluster(const fs::path& dir, std::size_t nodes, fs::path node_binary,
                               int difficulty)
    : dir_(dir), binary_(std::move(node_binary)) {
  if (::access(binary_.c_str(), X_OK) != 0) {
    throw std::runtime_error("node binary " + binary_.string() +
                             " is not executable (build mchain_test_node or pass --node-binary)");
  }
  nlohmann::ordered_json members = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < nodes; ++i) {
    keys_.push_back(need(crypto::PrivateKey::generate(crypto::SigAlg::ecdsa_p256_sha256),
                         "generating a node key"));
    need(crypto::write_private_key_file(dir / (id(i) + ".key"), keys_.back()),
         "writing a node key");
    members.push_back({{"id", id(i)},
                       {"address", "127.0.0.1:" + std::to_string(free_port())},
                       {"key", key_text(keys_.back().public_key())}});
    nodes_.push_back(Node{dir / id(i)});
    fs::create_directories(nodes_.back().dir / "spool" / "inbox");
  }
  const nlohmann::ordered_json genesis = {{"chain", "mchain-bench"},
                                          {"time", format_time(now_us() - 1'000'000)},
                                          {"difficulty", difficulty},
                                          {"nodes", members}};
  // Through the parser, so that the file is in its canonical form.
  const Genesis parsed = need(parse_genesis(genesis.dump()), "the benchmark's genesis file");
  need(write_file_atomically(dir / "genesis.json", parsed.to_json(), 0644, "genesis"),
       "writing the genesis file");
}

ProcessCluster::~ProcessCluster() { stop(5s); }

std::vector<std::string> ProcessCluster::argv(std::size_t i,
                                              const std::vector<std::string>& extra) const {
  const fs::path& d = nodes_[i].dir;
  std::vector<std::string> args = {binary_.string(),
                                   "--genesis",
                                   (dir_ / "genesis.json").string(),
                                   "--id",
                                   id(i),
                                   "--key",
                                   (dir_ / (id(i) + ".key")).string(),
                                   "--store",
                                   (d / "chain").string(),
                                   "--spool",
                                   (d / "spool").string(),
                                   "--trace",
                                   (d / "trace").string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

void ProcessCluster::start(const std::vector<std::string>& extra, std::chrono::seconds within) {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    if (n.pid > 0) throw std::logic_error(id(i) + " is already running");
    // Everything the child needs is made before fork(): it may only make async-signal-safe
    // calls afterwards.
    std::vector<std::string> args = argv(i, extra);
    std::vector<char*> raw;
    for (std::string& a : args) raw.push_back(a.data());
    raw.push_back(nullptr);
    const fs::path log_path = n.dir / "node.log";
    Fd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!log) throw std::runtime_error("cannot open " + log_path.string());
    n.log_from = size_or_zero(log_path);
    n.trace_from = size_or_zero(n.dir / "trace");
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      // Nodes die with the benchmark, even when it is killed before its destructors run.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(log.get(), STDOUT_FILENO);
      ::dup2(log.get(), STDERR_FILENO);
      ::execv(raw[0], raw.data());
      ::_exit(127);
    }
    n.pid = pid;
  }
  const auto deadline = std::chrono::steady_clock::now() + within;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    for (;;) {
      throw_if_exited(i);
      if (peers(i) == nodes_.size() - 1) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        throw std::runtime_error(id(i) + " did not link to all its peers within " +
                                 std::to_string(within.count()) + " s; its output:\n" +
                                 log_tail(i));
      }
      std::this_thread::sleep_for(20ms);
    }
  }
}

void ProcessCluster::stop(std::chrono::seconds grace) {
  for (Node& n : nodes_) {
    if (n.pid > 0) ::kill(n.pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (Node& n : nodes_) {
    if (n.pid <= 0) continue;
    int status = 0;
    while (::waitpid(n.pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(n.pid, SIGKILL);
        while (::waitpid(n.pid, &status, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    n.pid = -1;
  }
}

void ProcessCluster::throw_if_exited(std::size_t i) {
  Node& n = nodes_[i];
  int status = 0;
  if (n.pid <= 0 || ::waitpid(n.pid, &status, WNOHANG) != n.pid) return;
  n.pid = -1;
  throw std::runtime_error(id(i) + " " + exit_text(status) + "; its output:\n" + log_tail(i));
}

std::optional<std::size_t> ProcessCluster::peers(std::size_t i) const {
  // Heartbeats come every 200 ms: the newest one is near the end of the output.
  const Node& n = nodes_[i];
  const fs::path log_path = n.dir / "node.log";
  const std::uintmax_t size = size_or_zero(log_path);
  const std::string text =
      read_from(log_path, std::max(n.log_from, size - std::min<std::uintmax_t>(size, 8192)));
  constexpr std::string_view kHeartbeat = "net: peers ";
  // Complete lines only: the node may be writing the last one.
  std::istringstream lines(text.substr(0, text.rfind('\n') + 1));
  std::optional<std::size_t> latest;
  for (std::string line; std::getline(lines, line);) {
    std::size_t count = 0;
    std::istringstream fields(line.substr(std::min(line.size(), kHeartbeat.size())));
    if (line.starts_with(kHeartbeat) && fields >> count) latest = count;
  }
  return latest;
}

std::string ProcessCluster::log_tail(std::size_t i) const {
  const fs::path log_path = nodes_[i].dir / "node.log";
  const std::uintmax_t size = size_or_zero(log_path);
  return read_from(log_path,
                   std::max(nodes_[i].log_from, size - std::min<std::uintmax_t>(size, 4096)));
}

void ProcessCluster::hand(std::size_t i, const std::string& name, const Package& package) {
  // No fsync: the inbox needs an atomic appearance, not durability.
  const fs::path inbox = nodes_.at(i).dir / "spool" / "inbox";
  const fs::path aside = inbox / (name + ".tmp");
  const Bytes bytes = package.encode();
  {
    std::ofstream out(aside, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) throw std::runtime_error("cannot write " + aside.string());
  }
  fs::rename(aside, inbox / (name + ".pkg"));
}

std::optional<std::string> ProcessCluster::refusal(std::size_t i, const std::string& name) const {
  const fs::path err = nodes_.at(i).dir / "spool" / "done" / (name + ".err");
  if (!fs::exists(err)) return std::nullopt;
  return read_from(err, 0);
}

std::uint64_t ProcessCluster::cpu_ticks() const {
  std::uint64_t ticks = 0;
  for (const Node& n : nodes_) {
    if (n.pid <= 0) continue;
    // Fields 14 and 15 of /proc/PID/stat; the command name (field 2) may hold spaces, so
    // count from the ')' that ends it.
    const std::string stat = read_from("/proc/" + std::to_string(n.pid) + "/stat", 0);
    std::istringstream fields(stat.substr(std::min(stat.size(), stat.rfind(')') + 1)));
    std::string skip;
    for (int field = 3; field < 14; ++field) fields >> skip;
    std::uint64_t user = 0, system = 0;
    if (fields >> user >> system) ticks += user + system;
  }
  return ticks;
}

std::size_t ProcessCluster::inbox_size(std::size_t i) const {
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator(nodes_.at(i).dir / "spool" / "inbox")) {
    count += entry.path().extension() == ".pkg" ? 1 : 0;
  }
  return count;
}

void ProcessCluster::remove_taken(std::size_t i) {
  for (const auto& entry : fs::directory_iterator(nodes_.at(i).dir / "spool" / "inbox")) {
    if (entry.path().extension() == ".taken") fs::remove(entry.path());
  }
}

std::vector<TraceEvent> ProcessCluster::poll() {
  std::vector<TraceEvent> events;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    throw_if_exited(i);
    Node& n = nodes_[i];
    const std::string text = read_from(n.dir / "trace", n.trace_from);
    std::size_t begin = 0;
    for (std::size_t end; (end = text.find('\n', begin)) != std::string::npos; begin = end + 1) {
      std::istringstream line(text.substr(begin, end - begin));
      std::string what;
      TraceEvent e;
      e.node = i;
      line >> what >> e.candidate >> e.at;
      e.confirmed = what == "confirmed";
      if (e.confirmed) line >> e.packages;
      if (!line || (!e.confirmed && what != "proposed")) {
        throw std::runtime_error(
            id(i) + " wrote an unexpected trace line: " + text.substr(begin, end - begin));
      }
      events.push_back(std::move(e));
    }
    n.trace_from += begin;  // a partial last line is read again next time
  }
  return events;
}

}  // namespace mchain::bench
