// Kills a process writing to the store with SIGKILL at random moments, 50 times, and checks
// after each kill that the reopened store keeps every invariant (store_invariants.h): one
// synced WriteBatch per change means a crash leaves all of a change or none of it.
//
// The seed is printed; MCHAIN_CRASH_SEED=<seed> replays a run's kill times.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

#include "chain/store/store.h"
#include "store_invariants.h"

extern char** environ;

namespace mchain {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The child process, killed and reaped on every way out of the test.
class Child {
 public:
  explicit Child(const fs::path& directory) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    const std::string path = STORE_CRASH_CHILD;
    const std::string dir = directory.string();
    char* argv[] = {const_cast<char*>(path.c_str()), const_cast<char*>(dir.c_str()), nullptr};
    if (posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv, environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = fds[0];
  }
  ~Child() {
    kill_and_reap();
    if (out_ >= 0) ::close(out_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0 && out_ >= 0; }

  // Waits for the child's first progress byte ('r': the store is open and set up).
  bool wait_ready(std::chrono::milliseconds timeout) {
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    char c = 0;
    return ::read(out_, &c, 1) == 1 && c == 'r';
  }

  // SIGKILLs the child (if still running) and returns its wait status.
  int kill_and_reap() {
    if (pid_ <= 0) return status_;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status_;
  }

  // Progress bytes written so far (rounds completed), without blocking.
  std::size_t drain() {
    std::size_t n = 0;
    char buffer[4096];
    pollfd p{out_, POLLIN, 0};
    while (::poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
      const ssize_t got = ::read(out_, buffer, sizeof buffer);
      if (got <= 0) break;
      n += static_cast<std::size_t>(got);
    }
    return n;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int status_ = 0;
};

std::uint64_t seed_from_environment() {
  if (const char* text = std::getenv("MCHAIN_CRASH_SEED")) return std::strtoull(text, nullptr, 10);
  return std::random_device{}();
}

TEST(StoreCrash, SigkillNeverBreaksTheInvariants) {
  const std::uint64_t seed = seed_from_environment();
  std::printf("store crash test seed: %llu (MCHAIN_CRASH_SEED to replay)\n",
              static_cast<unsigned long long>(seed));
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> delay_ms(5, 150);

  std::string pattern = (fs::path(::testing::TempDir()) / "store_crash.XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path dir = pattern;
  struct Cleanup {
    fs::path dir;
    ~Cleanup() { fs::remove_all(dir); }
  } cleanup{dir};

  const auto start = std::chrono::steady_clock::now();
  std::size_t rounds = 0;
  testing::StoreCensus census;
  for (int run = 0; run < 50; ++run) {
    SCOPED_TRACE("run " + std::to_string(run) + ", seed " + std::to_string(seed));
    {
      Child child(dir);
      ASSERT_TRUE(child.started());
      ASSERT_TRUE(child.wait_ready(20s)) << "the child did not open the store";
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
      rounds += child.drain();
      const int status = child.kill_and_reap();
      ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
          << "the child ended by itself (status " << status << "); see its stderr above";
    }
    auto store = Store::open(dir);
    ASSERT_TRUE(store) << store.error().message;
    census = testing::check_store_invariants(**store);
    if (::testing::Test::HasFailure()) break;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "store crash test: %.1f s, %zu rounds reported, %zu blocks (height %llu), "
      "%zu confirmed, %zu queued\n",
      seconds, rounds, census.blocks, static_cast<unsigned long long>(census.height),
      census.confirmed, census.queued);
  // The runs must have written something worth checking: the setup and some rounds.
  EXPECT_GT(census.confirmed, 10u);
  EXPECT_GT(census.blocks, 10u);
}

}  // namespace
}  // namespace mchain
