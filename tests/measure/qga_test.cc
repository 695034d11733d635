// The guest-agent client against real qemu-ga processes on private unix sockets (host_agent.h),
// against scripted fake agents for what a real agent never does (fake_agent.h), and against
// libvirt's test driver.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "measure/fake_agent.h"
#include "measure/host_agent.h"
#include "measure/qga/base64.h"
#include "measure/qga/client.h"
#include "measure/qga/transport.h"
#include "temp_dir.h"

namespace mchain::measure::qga {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using mchain::testing::FakeAgent;
using mchain::testing::HostAgent;
using mchain::testing::TempDir;
using Clock = std::chrono::steady_clock;

// Far above every timeout used here: only a hang fails it.
constexpr auto kGenerousBound = 10s;

template <class T>
void expect_error(const Result<T>& result, Errc code, std::string_view fragment = "") {
  ASSERT_FALSE(result.has_value()) << "expected " << errc_name(code);
  EXPECT_EQ(errc_name(result.error().code), errc_name(code)) << result.error().message;
  if (!fragment.empty()) {
    EXPECT_NE(result.error().message.find(fragment), std::string::npos)
        << "\"" << fragment << "\" not in: " << result.error().message;
  }
}

std::string text(const Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }

Bytes pseudo_random(std::size_t size, unsigned seed) {
  std::mt19937 rng(seed);
  Bytes out(size);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

void write_file(const fs::path& path, const Bytes& content) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(content.data()),
            static_cast<std::streamsize>(content.size()));
}

std::unique_ptr<Client> connect_client(const fs::path& socket, ClientOptions options = {},
                                       UnixSocketOptions socket_options = {}) {
  auto transport = connect_unix_socket(socket, socket_options);
  if (!transport) {
    ADD_FAILURE() << "connect: " << transport.error().message;
    return nullptr;
  }
  return std::make_unique<Client>(std::move(*transport), options);
}

std::size_t open_fds(pid_t pid) {
  const fs::path dir = "/proc/" + std::to_string(pid) + "/fd";
  return static_cast<std::size_t>(
      std::distance(fs::directory_iterator(dir), fs::directory_iterator{}));
}

// ---- base64 and error names ---------------------------------------------------------------

TEST(QgaBase64, RoundTripsEveryLength) {
  for (std::size_t size = 0; size < 64; ++size) {
    const Bytes data = pseudo_random(size, static_cast<unsigned>(size));
    const std::string encoded = encode_base64(data);
    EXPECT_EQ(encoded.size() % 4, 0u);
    const auto decoded = decode_base64(encoded);
    ASSERT_TRUE(decoded) << encoded;
    EXPECT_EQ(*decoded, data);
  }
  EXPECT_EQ(encode_base64(as_bytes("hello\n")), "aGVsbG8K");
}

TEST(QgaBase64, RejectsAnythingNotCanonical) {
  for (const char* bad : {"a", "abc", "ab=c", "a===", "====", "YQ=", "YR==", "YWI=YQ==", "Y Q==",
                          "YQ==\n", "YW*=", "YWJ=", "-_8="}) {
    EXPECT_FALSE(decode_base64(bad)) << bad;
  }
  EXPECT_EQ(decode_base64(""), Bytes{});
  EXPECT_EQ(decode_base64("YQ=="), (Bytes{'a'}));
  EXPECT_EQ(decode_base64("YWI="), (Bytes{'a', 'b'}));
}

TEST(QgaError, NamesEveryCode) {
  EXPECT_EQ(errc_name(Errc::kNotConnected), "not-connected");
  EXPECT_EQ(errc_name(Errc::kCommandDisabled), "command-disabled");
  EXPECT_EQ(errc_name(Errc::kCommandFailed), "command-failed");
  EXPECT_EQ(errc_name(Errc::kTimeout), "timeout");
  EXPECT_EQ(errc_name(Errc::kGuestRebooted), "guest-rebooted");
  EXPECT_EQ(errc_name(Errc::kHandleLost), "handle-lost");
  EXPECT_EQ(errc_name(Errc::kMalformedReply), "malformed-reply");
  EXPECT_EQ(errc_name(Errc::kOversizeReply), "oversize-reply");
  EXPECT_EQ(errc_name(Errc::kIo), "io");
  EXPECT_EQ(to_error(Error{Errc::kTimeout, "slow"}).message, "timeout: slow");
}

// ---- a real qemu-ga ---------------------------------------------------------------------

class RealAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HostAgent::binary()) GTEST_SKIP() << HostAgent::unavailable_reason();
    start();
  }

  void start(std::vector<std::string> blocked = {}) {
    agent_ = HostAgent::start(dir_.path(), std::move(blocked));
    ASSERT_TRUE(agent_) << HostAgent::unavailable_reason();
    client_ = connect_client(agent_->socket(), options_);
    ASSERT_TRUE(client_);
  }

  TempDir dir_{"qga"};
  ClientOptions options_;
  std::optional<HostAgent> agent_;
  std::unique_ptr<Client> client_;
};

TEST_F(RealAgent, SyncsAndPings) {
  EXPECT_TRUE(client_->ping()) << client_->ping().error().message;
  EXPECT_TRUE(client_->ping());
  EXPECT_NE(client_->transport().describe().find(agent_->socket().string()), std::string::npos);
}

TEST_F(RealAgent, InfoListsEnabledCommands) {
  auto info = client_->info();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_FALSE(info->version.empty());
  for (const char* command : {"guest-ping", "guest-exec", "guest-exec-status", "guest-file-open",
                              "guest-file-read", "guest-file-close"}) {
    EXPECT_TRUE(info->allows(command)) << command;
  }
  EXPECT_FALSE(info->disabled.contains("guest-exec"));
}

TEST_F(RealAgent, UnknownCommandComesBackAsAReply) {
  auto reply = client_->transport().round_trip({{"execute", "guest-no-such-command"}}, 5s);
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ((*reply)["error"]["class"], "CommandNotFound");
}

TEST_F(RealAgent, ExecCapturesOutputAndExitCode) {
  auto result = client_->exec("/bin/sh", {"-c", "printf 'out put'; printf err >&2; exit 3"});
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_FALSE(result->signal);
  EXPECT_EQ(text(result->out), "out put");
  EXPECT_EQ(text(result->err), "err");
  EXPECT_FALSE(result->out_truncated);
  EXPECT_FALSE(result->err_truncated);
}

TEST_F(RealAgent, ExecWithoutOutput) {
  auto result = client_->exec("/bin/true", {});
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_TRUE(result->out.empty());
  EXPECT_TRUE(result->err.empty());
}

TEST_F(RealAgent, ExecPassesStdin) {
  const Bytes input = pseudo_random(5000, 7);
  auto result = client_->exec("/bin/cat", {}, input);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(result->out, input);
}

TEST_F(RealAgent, ExecReportsASignal) {
  auto result = client_->exec("/bin/sh", {"-c", "kill -9 $$"});
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_TRUE(result->signal);
  EXPECT_EQ(*result->signal, 9);
  EXPECT_EQ(result->exit_code, -1);
}

TEST_F(RealAgent, ExecOfAMissingProgramFails) {
  expect_error(client_->exec("/nonexistent/program", {}), Errc::kCommandFailed,
               "/nonexistent/program");
  EXPECT_TRUE(client_->ping());
}

TEST_F(RealAgent, ExecTimesOutWhileTheProcessRuns) {
  options_.exec_timeout = 300ms;
  client_ = connect_client(agent_->socket(), options_);
  ASSERT_TRUE(client_);
  const auto start = Clock::now();
  expect_error(client_->exec("/bin/sleep", {"2"}), Errc::kTimeout, "still running after 300 ms");
  EXPECT_LT(Clock::now() - start, kGenerousBound);
  EXPECT_TRUE(client_->ping());
}

TEST_F(RealAgent, ReadsAFileInChunks) {
  const Bytes content = pseudo_random(2500, 1);
  const fs::path path = dir_.path() / "data.bin";
  write_file(path, content);
  auto file = client_->open_file(path.string());
  ASSERT_TRUE(file) << file.error().message;
  Bytes read;
  int reads = 0;
  for (;;) {
    auto chunk = file->read(1000);
    ASSERT_TRUE(chunk) << chunk.error().message;
    EXPECT_LE(chunk->data.size(), 1000u);
    read.insert(read.end(), chunk->data.begin(), chunk->data.end());
    ++reads;
    if (chunk->eof) break;
    ASSERT_LT(reads, 10);
  }
  EXPECT_EQ(read, content);
  EXPECT_GE(reads, 3);
  EXPECT_TRUE(file->close());
}

TEST_F(RealAgent, ReadsAnEmptyFile) {
  const fs::path path = dir_.path() / "empty";
  write_file(path, {});
  auto file = client_->open_file(path.string());
  ASSERT_TRUE(file) << file.error().message;
  auto chunk = file->read(kMaxFileChunk);
  ASSERT_TRUE(chunk) << chunk.error().message;
  EXPECT_TRUE(chunk->data.empty());
  EXPECT_TRUE(chunk->eof);
}

TEST_F(RealAgent, RefusesReadsAboveTheChunkLimit) {
  const fs::path path = dir_.path() / "data.bin";
  write_file(path, pseudo_random(10, 2));
  auto file = client_->open_file(path.string());
  ASSERT_TRUE(file) << file.error().message;
  expect_error(file->read(kMaxFileChunk + 1), Errc::kCommandFailed, "refused");
  auto chunk = file->read(kMaxFileChunk);
  ASSERT_TRUE(chunk) << chunk.error().message;
  EXPECT_EQ(chunk->data.size(), 10u);
}

TEST_F(RealAgent, ReadingADirectoryFails) {
  auto file = client_->open_file(dir_.path().string());
  ASSERT_TRUE(file) << file.error().message;  // qemu-ga opens directories
  expect_error(file->read(4096), Errc::kCommandFailed, "Is a directory");
}

TEST_F(RealAgent, OpeningAMissingFileFails) {
  const std::string path = (dir_.path() / "missing").string();
  expect_error(client_->open_file(path), Errc::kCommandFailed, path);
  expect_error(client_->open_file(path), Errc::kCommandFailed, "No such file");
}

TEST_F(RealAgent, PathsThatAreNotUtf8AreRefused) {
  expect_error(client_->open_file("/tmp/\xff\xfe"), Errc::kCommandFailed, "cannot encode");
  EXPECT_TRUE(client_->ping());
}

TEST_F(RealAgent, CloseIsIdempotent) {
  const fs::path path = dir_.path() / "data.bin";
  write_file(path, pseudo_random(10, 3));
  auto file = client_->open_file(path.string());
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_TRUE(file->close());
  EXPECT_TRUE(file->close());
  EXPECT_EQ(file->handle(), -1);
  expect_error(file->read(10), Errc::kCommandFailed, "closed");
}

TEST_F(RealAgent, ADroppedFileIsClosedOnTheAgent) {
  const fs::path path = dir_.path() / "data.bin";
  write_file(path, pseudo_random(10, 4));
  std::int64_t handle = -1;
  {
    auto file = client_->open_file(path.string());
    ASSERT_TRUE(file) << file.error().message;
    handle = file->handle();
    GuestFile moved = std::move(*file);  // the moved-from file must not close it
    EXPECT_EQ(moved.handle(), handle);
    auto chunk = moved.read(4);
    ASSERT_TRUE(chunk) << chunk.error().message;
  }
  auto reply = client_->transport().round_trip(
      {{"execute", "guest-file-read"}, {"arguments", {{"handle", handle}, {"count", 4}}}}, 5s);
  ASSERT_TRUE(reply) << reply.error().message;
  ASSERT_TRUE(reply->contains("error")) << reply->dump();
  EXPECT_NE((*reply)["error"]["desc"].get<std::string>().find("has not been found"),
            std::string::npos);
}

TEST_F(RealAgent, LeaksNoHandles) {
  const fs::path path = dir_.path() / "data.bin";
  write_file(path, pseudo_random(100, 5));
  ASSERT_TRUE(client_->ping());
  const std::size_t before = open_fds(agent_->pid());
  for (int i = 0; i < 100; ++i) {
    auto file = client_->open_file(path.string());
    ASSERT_TRUE(file) << file.error().message;
    if (i % 2 == 0) {
      ASSERT_TRUE(file->read(50));
      ASSERT_TRUE(file->close());
    }  // odd ones close in the destructor
  }
  EXPECT_TRUE(client_->exec("/bin/true", {}));
  EXPECT_TRUE(client_->begin_session());
  EXPECT_EQ(open_fds(agent_->pid()), before);
  auto file = client_->open_file(path.string());
  ASSERT_TRUE(file) << file.error().message;
}

TEST_F(RealAgent, SessionSeesTheSameBoot) {
  expect_error(client_->check_same_boot(), Errc::kCommandFailed, "begin_session");
  ASSERT_TRUE(client_->begin_session()) << client_->begin_session().error().message;
  auto same = client_->check_same_boot();
  EXPECT_TRUE(same) << same.error().message;
}

TEST_F(RealAgent, HandleIsLostWhenTheAgentRestarts) {
  const fs::path path = dir_.path() / "data.bin";
  const Bytes content = pseudo_random(3000, 6);
  write_file(path, content);
  ASSERT_TRUE(client_->begin_session());
  auto file = client_->open_file(path.string());
  ASSERT_TRUE(file) << file.error().message;
  ASSERT_TRUE(file->read(1000));

  agent_->kill_agent();
  agent_ = HostAgent::start(dir_.path());  // same socket path, as a restarted qemu-ga
  ASSERT_TRUE(agent_);

  // The old connection is dead: either that shows first, or the new agent does not know the
  // handle. Never data, and never a reboot (the boot id did not change).
  auto first = file->read(1000);
  ASSERT_FALSE(first);
  if (first.error().code == Errc::kNotConnected) {
    expect_error(file->read(1000), Errc::kHandleLost, "has not been found");
  } else {
    EXPECT_EQ(errc_name(first.error().code), errc_name(Errc::kHandleLost)) << first.error().message;
  }
  // The client reconnected and resynchronised; the session goes on.
  EXPECT_TRUE(client_->ping());
  EXPECT_TRUE(client_->check_same_boot());
  auto again = client_->open_file(path.string());
  ASSERT_TRUE(again) << again.error().message;
  auto chunk = again->read(kMaxFileChunk);
  ASSERT_TRUE(chunk) << chunk.error().message;
  EXPECT_EQ(chunk->data, content);
}

TEST_F(RealAgent, NotConnectedWhileTheAgentIsDown) {
  ASSERT_TRUE(client_->ping());
  agent_->kill_agent();
  expect_error(client_->ping(), Errc::kNotConnected);
  expect_error(client_->ping(), Errc::kNotConnected, agent_->socket().string());
  agent_ = HostAgent::start(dir_.path());
  ASSERT_TRUE(agent_);
  EXPECT_TRUE(client_->ping());
}

class BlockedExecAgent : public RealAgent {
 protected:
  void SetUp() override {
    if (!HostAgent::binary()) GTEST_SKIP() << HostAgent::unavailable_reason();
    start({"guest-exec", "guest-exec-status"});
  }
};

TEST_F(BlockedExecAgent, InfoListsDisabledCommands) {
  auto info = client_->info();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_TRUE(info->disabled.contains("guest-exec"));
  EXPECT_TRUE(info->disabled.contains("guest-exec-status"));
  EXPECT_FALSE(info->allows("guest-exec"));
  EXPECT_TRUE(info->allows("guest-file-open"));
}

TEST_F(BlockedExecAgent, ExecIsRefusedNamingCommandAndVersion) {
  auto info = client_->info();
  ASSERT_TRUE(info) << info.error().message;
  auto result = client_->exec("/bin/true", {});
  expect_error(result, Errc::kCommandDisabled, "guest-exec");
  expect_error(result, Errc::kCommandDisabled, info->version);
  // Straight to the agent, the refusal is a reply, not a transport error.
  auto reply = client_->transport().round_trip(
      {{"execute", "guest-exec"}, {"arguments", {{"path", "/bin/true"}}}}, 5s);
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_NE((*reply)["error"]["desc"].get<std::string>().find("disabled"), std::string::npos);
  // Files still work.
  EXPECT_TRUE(client_->begin_session());
}

// ---- fake agents ------------------------------------------------------------------------

// A fake guest that offers `commands` and answers sync and guest-ping correctly; `extra`
// decides everything else (and may override ping).
FakeAgent::Handler fake_guest(std::vector<std::string> commands, FakeAgent::Handler extra) {
  return [commands = std::move(commands), extra = std::move(extra)](
             const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
    if (FakeAgent::is_sync(request)) return FakeAgent::sync_reply(request);
    if (FakeAgent::is(request, "guest-info")) {
      FakeAgent::Json list = FakeAgent::Json::array();
      for (const auto& name : commands) list.push_back({{"name", name}, {"enabled", true}});
      return FakeAgent::ok_reply({{"version", "fake-1.0"}, {"supported_commands", list}});
    }
    if (auto reply = extra(request)) return reply;
    if (FakeAgent::is(request, "guest-ping")) return FakeAgent::ok_reply(FakeAgent::Json::object());
    return std::nullopt;
  };
}

const std::vector<std::string> kAllCommands = {
    "guest-ping",      "guest-info",      "guest-exec",      "guest-exec-status",
    "guest-file-open", "guest-file-read", "guest-file-close"};

class FakeAgentTest : public ::testing::Test {
 protected:
  void serve(FakeAgent::Handler handler) {
    fake_ = std::make_unique<FakeAgent>(dir_.path() / "fake.sock", std::move(handler));
    ASSERT_TRUE(fake_->ok());
  }
  std::unique_ptr<Client> client(ClientOptions options = {},
                                 UnixSocketOptions socket_options = {}) {
    return connect_client(fake_->socket(), options, socket_options);
  }

  TempDir dir_{"qga-fake"};
  std::unique_ptr<FakeAgent> fake_;
};

TEST_F(FakeAgentTest, GarbageIsAMalformedReply) {
  std::atomic<int> pings{0};
  serve(fake_guest(kAllCommands,
                   [&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
                     if (FakeAgent::is(request, "guest-ping") && pings++ == 0) {
                       return FakeAgent::Reply{"this is not JSON\n"};
                     }
                     return std::nullopt;
                   }));
  auto c = client();
  ASSERT_TRUE(c);
  expect_error(c->ping(), Errc::kMalformedReply, "not JSON");
  EXPECT_TRUE(c->ping());  // resynchronised
}

TEST_F(FakeAgentTest, NonObjectIsAMalformedReply) {
  serve(fake_guest(kAllCommands,
                   [&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
                     if (FakeAgent::is(request, "guest-ping")) return FakeAgent::Reply{"[1, 2]\n"};
                     return std::nullopt;
                   }));
  auto c = client();
  ASSERT_TRUE(c);
  expect_error(c->ping(), Errc::kMalformedReply, "not a JSON object");
}

TEST_F(FakeAgentTest, ReplyWithoutReturnOrErrorIsMalformed) {
  serve(fake_guest(kAllCommands,
                   [&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
                     if (FakeAgent::is(request, "guest-ping"))
                       return FakeAgent::Reply{"{\"result\": 1}\n"};
                     return std::nullopt;
                   }));
  auto c = client();
  ASSERT_TRUE(c);
  expect_error(c->ping(), Errc::kMalformedReply, "neither");
}

TEST_F(FakeAgentTest, WrongMemberTypesAreMalformed) {
  serve([](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
    if (FakeAgent::is_sync(request)) return FakeAgent::sync_reply(request);
    if (FakeAgent::is(request, "guest-info")) {
      return FakeAgent::ok_reply(
          {{"version", 7}, {"supported_commands", FakeAgent::Json::array()}});
    }
    return std::nullopt;
  });
  auto c = client();
  ASSERT_TRUE(c);
  expect_error(c->info(), Errc::kMalformedReply, "\"version\"");
}

TEST_F(FakeAgentTest, OversizeReplyThenResync) {
  std::atomic<int> pings{0};
  serve(fake_guest(kAllCommands,
                   [&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
                     if (FakeAgent::is(request, "guest-ping") && pings++ == 0) {
                       return FakeAgent::ok_reply(std::string(1 << 20, 'x'));
                     }
                     return std::nullopt;
                   }));
  auto c = client({}, UnixSocketOptions{.max_reply_bytes = 4096});
  ASSERT_TRUE(c);
  expect_error(c->ping(), Errc::kOversizeReply, "4096");
  auto next = c->ping();
  EXPECT_TRUE(next) << next.error().message;
  EXPECT_EQ(fake_->connections(), 1);
}

TEST_F(FakeAgentTest, NoReplyTimesOutWithoutHanging) {
  std::atomic<int> pings{0};
  serve(fake_guest(kAllCommands,
                   [&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
                     if (FakeAgent::is(request, "guest-ping") && pings++ == 0)
                       return FakeAgent::Reply{};  // nothing
                     return std::nullopt;
                   }));
  auto c = client(ClientOptions{.command_timeout = 300ms});
  ASSERT_TRUE(c);
  const auto start = Clock::now();
  expect_error(c->ping(), Errc::kTimeout, "guest-ping");
  EXPECT_LT(Clock::now() - start, kGenerousBound);
  EXPECT_TRUE(c->ping());
}

TEST_F(FakeAgentTest, LateReplyIsNotTakenForTheNextOne) {
  serve(fake_guest(
      kAllCommands, [&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
        if (FakeAgent::is(request, "test-first")) {
          // Comes after the client gave up, while it resynchronises.
          return FakeAgent::Reply{FakeAgent::line({{"return", "first"}}), false, 600ms};
        }
        if (FakeAgent::is(request, "test-second")) return FakeAgent::ok_reply("second");
        return std::nullopt;
      }));
  auto transport = connect_unix_socket(fake_->socket());
  ASSERT_TRUE(transport) << transport.error().message;
  expect_error((*transport)->round_trip({{"execute", "test-first"}}, 200ms), Errc::kTimeout);
  auto reply = (*transport)->round_trip({{"execute", "test-second"}}, 5s);
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ((*reply)["return"], "second");
}

TEST_F(FakeAgentTest, StaleReplyBeforeTheSentinelIsSkipped) {
  std::atomic<int> syncs{0};
  serve([&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
    if (FakeAgent::is_sync(request)) {
      // The second sync finds the reply to the timed-out command still in the stream.
      auto reply = FakeAgent::sync_reply(request);
      if (++syncs == 2) reply.bytes = FakeAgent::line({{"return", "first"}}) + reply.bytes;
      return reply;
    }
    if (FakeAgent::is(request, "test-second")) return FakeAgent::ok_reply("second");
    return std::nullopt;
  });
  auto transport = connect_unix_socket(fake_->socket());
  ASSERT_TRUE(transport) << transport.error().message;
  expect_error((*transport)->round_trip({{"execute", "test-first"}}, 200ms), Errc::kTimeout);
  auto reply = (*transport)->round_trip({{"execute", "test-second"}}, 5s);
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ((*reply)["return"], "second");
  EXPECT_EQ(syncs.load(), 2);
}

TEST_F(FakeAgentTest, WrongSyncIdThenTheRightOne) {
  serve([&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
    if (FakeAgent::is_sync(request)) {
      // A reply to some earlier sync, and garbage, before ours.
      return FakeAgent::Reply{"junk\n\xff" + FakeAgent::line({{"return", 12345}}) + "\xff[1]\n" +
                              FakeAgent::sync_reply(request).bytes};
    }
    if (FakeAgent::is(request, "guest-ping")) return FakeAgent::ok_reply(FakeAgent::Json::object());
    return std::nullopt;
  });
  auto c = client();
  ASSERT_TRUE(c);
  auto pinged = c->ping();
  EXPECT_TRUE(pinged) << pinged.error().message;
}

TEST_F(FakeAgentTest, OnlyWrongSyncIdsMeanNotConnected) {
  serve([&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
    if (FakeAgent::is_sync(request))
      return FakeAgent::Reply{"\xff" + FakeAgent::line({{"return", 1}})};
    return std::nullopt;
  });
  auto c = client({}, UnixSocketOptions{.sync_timeout = 300ms});
  ASSERT_TRUE(c);
  expect_error(c->ping(), Errc::kNotConnected, "not answering");
}

TEST_F(FakeAgentTest, AcceptingButSilentAgentIsNotConnected) {
  serve([](const FakeAgent::Json&) -> std::optional<FakeAgent::Reply> { return std::nullopt; });
  auto c = client({}, UnixSocketOptions{.sync_timeout = 300ms});
  ASSERT_TRUE(c);
  const auto start = Clock::now();
  expect_error(c->ping(), Errc::kNotConnected, "(is qemu-ga running in the guest?)");
  expect_error(c->ping(), Errc::kNotConnected, fake_->socket().string());
  EXPECT_LT(Clock::now() - start, kGenerousBound);
}

TEST_F(FakeAgentTest, EofInTheMiddleOfAReply) {
  std::atomic<int> pings{0};
  serve(fake_guest(kAllCommands,
                   [&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
                     if (FakeAgent::is(request, "guest-ping") && pings++ == 0) {
                       return FakeAgent::Reply{"{\"return\": {", true};
                     }
                     return std::nullopt;
                   }));
  auto c = client();
  ASSERT_TRUE(c);
  expect_error(c->ping(), Errc::kNotConnected, "closed");
  auto again = c->ping();  // reconnects
  EXPECT_TRUE(again) << again.error().message;
  EXPECT_EQ(fake_->connections(), 2);
}

// read_to_end keeps several reads in flight. Whatever layout the agent writes its replies in
// (qemu-ga's own, reordered keys, an escaped '/'), the bytes come out the same, the reads
// past the end are drained, and the stream stays in step for the next command.
TEST_F(FakeAgentTest, ReadToEndPipelinesReadsInAnyReplyLayout) {
  // '?' (0x3f) repeated encodes to base64 with '/' in it.
  const std::string content = std::string(3000, '?') + "tail";
  std::atomic<int> reads{0};
  std::atomic<std::size_t> offset{0};
  serve(fake_guest(
      kAllCommands, [&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
        if (FakeAgent::is(request, "guest-file-open")) return FakeAgent::ok_reply(5);
        if (FakeAgent::is(request, "guest-file-close"))
          return FakeAgent::ok_reply(FakeAgent::Json::object());
        if (!FakeAgent::is(request, "guest-file-read")) return std::nullopt;
        const int n = reads++;
        const std::size_t count = request["arguments"]["count"];
        const std::size_t at = offset.load();
        const std::string piece = content.substr(std::min(at, content.size()), count);
        offset = at + piece.size();
        const bool eof = offset.load() >= content.size();
        std::string b64 = encode_base64(as_bytes(piece));
        std::string line;
        switch (n % 3) {
          case 0:
            line = "{\"return\": {\"count\": " + std::to_string(piece.size()) +
                   ", \"buf-b64\": \"" + b64 + "\", \"eof\": " + (eof ? "true" : "false") + "}}\n";
            break;
          case 1:
            line = "{\"return\":{\"eof\":" + std::string(eof ? "true" : "false") +
                   ",\"buf-b64\":\"" + b64 + "\",\"count\":" + std::to_string(piece.size()) +
                   "}}\n";
            break;
          default: {
            std::string escaped;
            for (char ch : b64) escaped += ch == '/' ? std::string("\\/") : std::string(1, ch);
            line = "{\"return\": {\"count\": " + std::to_string(piece.size()) +
                   ", \"buf-b64\": \"" + escaped + "\", \"eof\": " + (eof ? "true" : "false") +
                   "}}\n";
          }
        }
        return FakeAgent::Reply{line};
      }));
  auto c = client();
  ASSERT_TRUE(c);
  auto file = c->open_file("/f");
  ASSERT_TRUE(file) << file.error().message;
  std::string got;
  auto total =
      file->read_to_end(700, [&](ByteView piece) { got.append(piece.begin(), piece.end()); });
  ASSERT_TRUE(total) << total.error().message;
  EXPECT_EQ(*total, content.size());
  EXPECT_EQ(got, content);
  EXPECT_GT(reads.load(), 5);  // 3004 bytes in reads of 700, plus the reads past the end
  EXPECT_TRUE(file->close());
  EXPECT_TRUE(c->ping());
}

TEST_F(FakeAgentTest, ReadToEndStopsAtAnErrorAndKeepsTheStreamInStep) {
  std::atomic<int> reads{0};
  serve(fake_guest(
      kAllCommands, [&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
        if (FakeAgent::is(request, "guest-file-open")) return FakeAgent::ok_reply(5);
        if (FakeAgent::is(request, "guest-file-close"))
          return FakeAgent::ok_reply(FakeAgent::Json::object());
        if (!FakeAgent::is(request, "guest-file-read")) return std::nullopt;
        if (reads++ == 1)
          return FakeAgent::error_reply("GenericError", "handle '5' has not been found");
        return FakeAgent::ok_reply({{"count", 3}, {"buf-b64", "YWJj"}, {"eof", false}});
      }));
  auto c = client();
  ASSERT_TRUE(c);
  auto file = c->open_file("/f");
  ASSERT_TRUE(file);
  std::string got;
  auto total =
      file->read_to_end(3, [&](ByteView piece) { got.append(piece.begin(), piece.end()); });
  expect_error(total, Errc::kHandleLost, "not been found");
  EXPECT_EQ(got, "abc");  // what came before the error, and nothing after it
  EXPECT_TRUE(c->ping());
}

TEST_F(FakeAgentTest, ReadToEndRefusesEmptyReadsWithoutEof) {
  serve(fake_guest(kAllCommands,
                   [](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
                     if (FakeAgent::is(request, "guest-file-open")) return FakeAgent::ok_reply(5);
                     if (FakeAgent::is(request, "guest-file-close"))
                       return FakeAgent::ok_reply(FakeAgent::Json::object());
                     if (FakeAgent::is(request, "guest-file-read")) {
                       return FakeAgent::ok_reply({{"count", 0}, {"buf-b64", ""}, {"eof", false}});
                     }
                     return std::nullopt;
                   }));
  auto c = client();
  ASSERT_TRUE(c);
  auto file = c->open_file("/dev/endless");
  ASSERT_TRUE(file);
  auto total = file->read_to_end(1024, [](ByteView) {});
  expect_error(total, Errc::kMalformedReply, "no eof");
  EXPECT_TRUE(c->ping());
}

TEST_F(FakeAgentTest, BadBase64InExecOutput) {
  serve(fake_guest(kAllCommands,
                   [](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
                     if (FakeAgent::is(request, "guest-exec"))
                       return FakeAgent::ok_reply({{"pid", 7}});
                     if (FakeAgent::is(request, "guest-exec-status")) {
                       return FakeAgent::ok_reply(
                           {{"exited", true}, {"exitcode", 0}, {"out-data", "not base64!"}});
                     }
                     return std::nullopt;
                   }));
  auto c = client();
  ASSERT_TRUE(c);
  expect_error(c->exec("/bin/true", {}), Errc::kMalformedReply, "out-data");
}

TEST_F(FakeAgentTest, ExecPollsUntilExitAndReportsTruncation) {
  std::atomic<int> polls{0};
  serve(fake_guest(
      kAllCommands, [&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
        if (FakeAgent::is(request, "guest-exec")) {
          EXPECT_EQ(request["arguments"]["capture-output"], true);
          EXPECT_EQ(request["arguments"]["input-data"], "aW4=");
          return FakeAgent::ok_reply({{"pid", 7}});
        }
        if (FakeAgent::is(request, "guest-exec-status")) {
          EXPECT_EQ(request["arguments"]["pid"], 7);
          if (++polls < 4) return FakeAgent::ok_reply({{"exited", false}});
          return FakeAgent::ok_reply(
              {{"exited", true}, {"exitcode", 0}, {"out-data", "b3V0"}, {"out-truncated", true}});
        }
        return std::nullopt;
      }));
  auto c = client();
  ASSERT_TRUE(c);
  auto result = c->exec("/bin/x", {"a"}, as_bytes("in"));
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(text(result->out), "out");
  EXPECT_TRUE(result->out_truncated);
  EXPECT_FALSE(result->err_truncated);
  EXPECT_EQ(polls.load(), 4);
}

TEST_F(FakeAgentTest, ExitedWithoutCodeOrSignalIsMalformed) {
  serve(fake_guest(kAllCommands,
                   [](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
                     if (FakeAgent::is(request, "guest-exec"))
                       return FakeAgent::ok_reply({{"pid", 7}});
                     if (FakeAgent::is(request, "guest-exec-status"))
                       return FakeAgent::ok_reply({{"exited", true}});
                     return std::nullopt;
                   }));
  auto c = client();
  ASSERT_TRUE(c);
  expect_error(c->exec("/bin/true", {}), Errc::kMalformedReply, "exitcode");
}

TEST_F(FakeAgentTest, UnknownExecPidIsAHandleLost) {
  serve(fake_guest(kAllCommands,
                   [](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
                     if (FakeAgent::is(request, "guest-exec"))
                       return FakeAgent::ok_reply({{"pid", 7}});
                     if (FakeAgent::is(request, "guest-exec-status")) {
                       return FakeAgent::error_reply("GenericError", "Invalid parameter 'pid'");
                     }
                     return std::nullopt;
                   }));
  auto c = client();
  ASSERT_TRUE(c);
  expect_error(c->exec("/bin/true", {}), Errc::kHandleLost, "'pid'");
}

TEST_F(FakeAgentTest, CommandDisabledOrUnknownByTheAgent) {
  std::atomic<int> execs{0};
  serve(fake_guest(kAllCommands,
                   [&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
                     if (FakeAgent::is(request, "guest-exec")) {
                       // guest-info said yes, the command itself says no (configuration changed meanwhile).
                       if (execs++ == 0) {
                         return FakeAgent::error_reply("CommandNotFound",
                                                       "Command guest-exec has been disabled");
                       }
                       return FakeAgent::error_reply("CommandNotFound",
                                                     "The command guest-exec has not been found");
                     }
                     return std::nullopt;
                   }));
  auto c = client();
  ASSERT_TRUE(c);
  expect_error(c->exec("/bin/true", {}), Errc::kCommandDisabled, "disabled guest-exec");
  expect_error(c->exec("/bin/true", {}), Errc::kCommandDisabled, "does not know guest-exec");
}

TEST_F(FakeAgentTest, CommandsMissingFromInfoAreRefusedEarly) {
  std::atomic<int> opens{0};
  serve(fake_guest({"guest-ping", "guest-info"},
                   [&](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
                     if (FakeAgent::is(request, "guest-file-open")) ++opens;
                     return std::nullopt;
                   }));
  auto c = client();
  ASSERT_TRUE(c);
  expect_error(c->open_file("/etc/hostname"), Errc::kCommandDisabled, "fake-1.0");
  expect_error(c->begin_session(), Errc::kCommandDisabled, "allows neither the guest-file");
  EXPECT_EQ(opens.load(), 0);
}

TEST_F(FakeAgentTest, FileReadCountMustMatchItsData) {
  serve(fake_guest(
      kAllCommands, [](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
        if (FakeAgent::is(request, "guest-file-open")) return FakeAgent::ok_reply(1000);
        if (FakeAgent::is(request, "guest-file-read")) {
          return FakeAgent::ok_reply({{"count", 5}, {"buf-b64", "YQ=="}, {"eof", true}});
        }
        if (FakeAgent::is(request, "guest-file-close"))
          return FakeAgent::ok_reply(FakeAgent::Json::object());
        return std::nullopt;
      }));
  auto c = client();
  ASSERT_TRUE(c);
  auto file = c->open_file("/x");
  ASSERT_TRUE(file) << file.error().message;
  expect_error(file->read(100), Errc::kMalformedReply, "count 5");
}

// A guest whose boot id can change under the client: handles of the data file die with the
// boot, as they would in a rebooted guest.
class RebootingGuest : public FakeAgentTest {
 protected:
  static constexpr const char* kBootIds[] = {"5f72d50a-6807-4c54-8270-8db63074b00d",
                                             "0c3b5f7e-1111-4222-8333-944455556666"};
  void SetUp() override {
    serve(fake_guest(
        kAllCommands, [this](const FakeAgent::Json& request) -> std::optional<FakeAgent::Reply> {
          if (FakeAgent::is(request, "guest-file-open")) {
            if (request["arguments"]["path"] == "/proc/sys/kernel/random/boot_id") {
              return FakeAgent::ok_reply(5000 + next_handle_++);
            }
            return FakeAgent::ok_reply(1000);
          }
          if (FakeAgent::is(request, "guest-file-read")) {
            const std::int64_t handle = request["arguments"]["handle"];
            if (handle >= 5000) {
              const std::string id = std::string(kBootIds[boot_.load()]) + "\n";
              return FakeAgent::ok_reply(
                  {{"count", id.size()}, {"buf-b64", encode_base64(as_bytes(id))}, {"eof", true}});
            }
            if (boot_.load() == 0) {
              return FakeAgent::ok_reply({{"count", 2}, {"buf-b64", "aGk="}, {"eof", false}});
            }
            return FakeAgent::error_reply("GenericError", "handle '1000' has not been found");
          }
          if (FakeAgent::is(request, "guest-file-close"))
            return FakeAgent::ok_reply(FakeAgent::Json::object());
          return std::nullopt;
        }));
  }
  std::atomic<int> boot_{0};
  std::atomic<int> next_handle_{0};
};

TEST_F(RebootingGuest, LostHandleAfterARebootIsGuestRebooted) {
  auto c = client();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->begin_session());
  auto file = c->open_file("/etc/passwd");
  ASSERT_TRUE(file) << file.error().message;
  auto chunk = file->read(2);
  ASSERT_TRUE(chunk) << chunk.error().message;
  EXPECT_EQ(text(chunk->data), "hi");

  boot_ = 1;
  auto after = file->read(2);
  expect_error(after, Errc::kGuestRebooted, kBootIds[0]);
  expect_error(after, Errc::kGuestRebooted, kBootIds[1]);
  expect_error(c->check_same_boot(), Errc::kGuestRebooted);
}

TEST_F(RebootingGuest, LostHandleInTheSameBootStaysHandleLost) {
  auto c = client();
  ASSERT_TRUE(c);
  boot_ = 1;  // handles of the data file fail, but the boot does not change
  ASSERT_TRUE(c->begin_session());
  auto file = c->open_file("/etc/passwd");
  ASSERT_TRUE(file) << file.error().message;
  expect_error(file->read(2), Errc::kHandleLost, "has not been found");
  EXPECT_TRUE(c->check_same_boot());
}

// ---- connecting -------------------------------------------------------------------------

TEST(QgaConnect, MissingSocketIsNotConnected) {
  TempDir dir("qga-connect");
  const fs::path socket = dir.path() / "nothing.sock";
  auto transport = connect_unix_socket(socket);
  expect_error(transport, Errc::kNotConnected, socket.string());
}

TEST(QgaConnect, SocketNobodyListensOnIsNotConnected) {
  TempDir dir("qga-connect");
  const fs::path socket = dir.path() / "stale.sock";
  {
    // Bound, never listened on, closed: the file stays, as after an agent's crash.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, socket.c_str(), sizeof address.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
    ::close(fd);
  }
  ASSERT_TRUE(fs::exists(socket));
  auto transport = connect_unix_socket(socket);
  expect_error(transport, Errc::kNotConnected, socket.string());
  expect_error(transport, Errc::kNotConnected, "refused");
}

TEST(QgaConnect, OverlongSocketPathIsRefused) {
  auto transport = connect_unix_socket("/tmp/" + std::string(200, 'x'));
  expect_error(transport, Errc::kIo, "longer than");
}

// ---- libvirt ------------------------------------------------------------------------------

TEST(QgaLibvirt, MissingDomainIsAClearError) {
  auto transport = connect_libvirt("test:///default", "no-such-domain");
  expect_error(transport, Errc::kNotConnected, "no-such-domain");
  expect_error(transport, Errc::kNotConnected, "not found");
  expect_error(connect_libvirt("test:///default", "00000000-0000-4000-8000-000000000000"),
               Errc::kNotConnected, "not found");
}

TEST(QgaLibvirt, UnreachableUriIsNotConnected) {
  expect_error(connect_libvirt("bogus-driver:///nowhere", "test"), Errc::kNotConnected,
               "bogus-driver:///nowhere");
}

TEST(QgaLibvirt, TestDriverHasNoAgent) {
  auto transport = connect_libvirt("test:///default", "test");
  ASSERT_TRUE(transport) << transport.error().message;
  EXPECT_EQ((*transport)->max_reply_bytes(), 10u << 20);
  EXPECT_NE((*transport)->describe().find("libvirt domain test (test:///default)"),
            std::string::npos)
      << (*transport)->describe();
  const auto start = Clock::now();
  auto reply = (*transport)->round_trip({{"execute", "guest-ping"}}, 1s);
  expect_error(reply, Errc::kNotConnected, "guest-ping");
  EXPECT_LT(Clock::now() - start, kGenerousBound);
  Client client(std::move(*transport));
  expect_error(client.ping(), Errc::kNotConnected, "libvirt domain test");
}

}  // namespace
}  // namespace mchain::measure::qga
