#include "measure/qga/client.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <limits>
#include <string_view>
#include <thread>
#include <utility>

#include "measure/qga/base64.h"

namespace mchain::measure::qga {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kBootIdPath = "/proc/sys/kernel/random/boot_id";
// A boot id is a UUID and a newline; anything much longer is not one.
constexpr std::size_t kMaxBootIdFile = 4096;
// The reboot check after a failure must not add a full command timeout per step.
constexpr Milliseconds kRebootCheckTimeout{2000};
constexpr Milliseconds kMaxExecPollInterval{100};
// What a guest-file-read reply holds besides the base64 text.
constexpr std::size_t kFileReadReplyOverhead = 256;

const std::array<std::string, 3> kFileCommands = {"guest-file-open", "guest-file-read",
                                                  "guest-file-close"};

std::string duration_text(Milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

Error malformed(std::string message) { return Error{Errc::kMalformedReply, std::move(message)}; }

// Strict reply members: a missing member or one of the wrong type is a malformed reply,
// named so that a broken or hostile agent is easy to spot.
const Json* find_member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

Error bad_member(std::string_view context, std::string_view key, std::string_view expected) {
  return malformed(std::string(context) + ": member \"" + std::string(key) +
                   "\" is missing or not " + std::string(expected));
}

Result<std::string> string_member(const Json& object, std::string_view key,
                                  std::string_view context) {
  const Json* value = find_member(object, key);
  if (value == nullptr || !value->is_string()) {
    return std::unexpected(bad_member(context, key, "a string"));
  }
  return value->get<std::string>();
}

Result<bool> bool_member(const Json& object, std::string_view key, std::string_view context) {
  const Json* value = find_member(object, key);
  if (value == nullptr || !value->is_boolean()) {
    return std::unexpected(bad_member(context, key, "a boolean"));
  }
  return value->get<bool>();
}

// Integers within [min, max]; nlohmann keeps non-negative ones unsigned.
Result<std::int64_t> int_member(const Json& object, std::string_view key, std::string_view context,
                                std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                                std::int64_t max = std::numeric_limits<std::int64_t>::max()) {
  const Json* value = find_member(object, key);
  if (value == nullptr || !value->is_number_integer()) {
    return std::unexpected(bad_member(context, key, "an integer"));
  }
  std::int64_t n = 0;
  if (value->is_number_unsigned()) {
    const auto u = value->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::unexpected(bad_member(context, key, "an integer in range"));
    }
    n = static_cast<std::int64_t>(u);
  } else {
    n = value->get<std::int64_t>();
  }
  if (n < min || n > max) return std::unexpected(bad_member(context, key, "an integer in range"));
  return n;
}

template <class T, class F>
Result<std::optional<T>> optional_member(const Json& object, std::string_view key, F&& get) {
  if (find_member(object, key) == nullptr) return std::optional<T>();
  auto value = get();
  if (!value) return std::unexpected(value.error());
  return std::optional<T>(std::move(*value));
}

Result<Bytes> base64_member(const Json& object, std::string_view key, std::string_view context) {
  auto text = string_member(object, key, context);
  if (!text) return std::unexpected(text.error());
  auto bytes = decode_base64(*text);
  if (!bytes) return std::unexpected(bad_member(context, key, "valid base64"));
  return std::move(*bytes);
}

// The agent's error reply as one of ours. qemu-ga says "Command X has been disabled" or
// "The command X has not been found" with class CommandNotFound (CommandDisabled in old
// agents); "handle 'N' has not been found" for a file handle it does not know, and "Invalid
// parameter 'pid'" for an exec pid it does not know (or already reported as exited).
Error agent_error(const std::string& command, const Json& error) {
  const std::string context = "error reply to " + command;
  if (!error.is_object()) return malformed(context + " is not an object");
  auto klass = string_member(error, "class", context);
  if (!klass) return klass.error();
  auto desc = string_member(error, "desc", context);
  if (!desc) return desc.error();

  if (*klass == "CommandNotFound" || *klass == "CommandDisabled") {
    if (desc->find("disabled") != std::string::npos) {
      return {Errc::kCommandDisabled, "the guest agent has disabled " + command + ": " + *desc};
    }
    return {Errc::kCommandDisabled, "the guest agent does not know " + command + ": " + *desc};
  }
  if (desc->starts_with("handle '") && desc->ends_with("' has not been found")) {
    return {Errc::kHandleLost,
            command + ": " + *desc + " (the agent restarted, or the guest rebooted?)"};
  }
  if (command == "guest-exec-status" && desc->find("'pid'") != std::string::npos) {
    return {Errc::kHandleLost, command + ": " + *desc +
                                   " (the agent does not know the process: it restarted, or "
                                   "the guest rebooted?)"};
  }
  return {Errc::kCommandFailed, command + " failed in the guest: " + *desc};
}

bool could_be_reboot(Errc code) {
  return code == Errc::kTimeout || code == Errc::kHandleLost || code == Errc::kNotConnected;
}

}  // namespace

// ---- GuestFile ----------------------------------------------------------------------------

GuestFile::GuestFile(GuestFile&& other) noexcept
    : client_(std::exchange(other.client_, nullptr)), handle_(std::exchange(other.handle_, -1)) {}

GuestFile& GuestFile::operator=(GuestFile&& other) noexcept {
  if (this != &other) {
    close_quietly();
    client_ = std::exchange(other.client_, nullptr);
    handle_ = std::exchange(other.handle_, -1);
  }
  return *this;
}

GuestFile::~GuestFile() { close_quietly(); }

void GuestFile::close_quietly() noexcept {
  // Best effort: a destructor has no one to report to, and must not throw (allocation
  // failures while building the command included).
  try {
    (void)close();
  } catch (...) {
  }
}

Result<GuestFile::Chunk> GuestFile::read(std::size_t count) {
  if (client_ == nullptr || handle_ < 0) {
    return fail(Errc::kCommandFailed, "read from a guest file that is closed");
  }
  auto chunk = client_->read_chunk(handle_, count, client_->options_.command_timeout);
  if (!chunk) return std::unexpected(client_->reboot_or(std::move(chunk.error())));
  return chunk;
}

Result<std::uint64_t> GuestFile::read_to_end(std::size_t count,
                                             const std::function<void(ByteView)>& sink) {
  if (client_ == nullptr || handle_ < 0) {
    return fail(Errc::kCommandFailed, "read from a guest file that is closed");
  }
  if (auto size_ok = client_->check_read_size(count); !size_ok) {
    return std::unexpected(size_ok.error());
  }
  const Json request = {{"execute", "guest-file-read"},
                        {"arguments", {{"handle", handle_}, {"count", count}}}};
  std::uint64_t total = 0;
  bool eof = false;
  std::optional<Error> failure;
  // Reads past the end come back empty with eof set and are dropped: the file is what the
  // agent returned up to its first eof.
  auto done = client_->transport_->pipeline(
      kReadAhead, [&]() -> std::optional<Json> { return request; },
      [&](Json reply) {
        auto value = client_->unwrap("guest-file-read", std::move(reply));
        auto chunk = value ? Client::parse_read(*value, count)
                           : Result<Chunk>(std::unexpected(value.error()));
        if (!chunk) {
          failure = std::move(chunk.error());
          return false;
        }
        if (chunk->data.empty() && !chunk->eof) {
          // qemu-ga sets eof whenever a read finds nothing; an agent that does not would
          // keep us reading forever.
          failure = malformed("guest-file-read returned nothing and no eof");
          return false;
        }
        total += chunk->data.size();
        sink(chunk->data);
        eof = chunk->eof;
        return !eof;
      },
      client_->options_.command_timeout);
  if (!done) return std::unexpected(client_->reboot_or(std::move(done.error())));
  if (failure) return std::unexpected(client_->reboot_or(std::move(*failure)));
  if (!eof) return fail(Errc::kMalformedReply, "guest-file-read ended without eof");
  return total;
}

Status GuestFile::close() {
  if (client_ == nullptr || handle_ < 0) return {};
  // Forget the handle first: whatever the outcome, a second close must not reach the agent,
  // which may by then have given the number to another file.
  const std::int64_t handle = std::exchange(handle_, -1);
  return client_->close_handle(handle, client_->options_.command_timeout);
}

// ---- Client -------------------------------------------------------------------------------

Client::Client(std::unique_ptr<Transport> transport, ClientOptions options)
    : transport_(std::move(transport)), options_(options) {}

Result<Json> Client::call(const std::string& command, Json arguments, Milliseconds timeout) {
  Json request = {{"execute", command}};
  if (!arguments.is_null()) request["arguments"] = std::move(arguments);
  auto reply = transport_->round_trip(request, timeout);
  if (!reply) return std::unexpected(reply.error());
  return unwrap(command, std::move(*reply));
}

Result<Json> Client::unwrap(const std::string& command, Json reply) {
  if (!reply.is_object())
    return std::unexpected(malformed("reply to " + command + " is not an object"));
  if (const Json* error = find_member(reply, "error")) {
    return std::unexpected(agent_error(command, *error));
  }
  const auto it = reply.find("return");
  if (it == reply.end()) {
    return std::unexpected(
        malformed("reply to " + command + " has neither \"return\" nor \"error\""));
  }
  return std::move(*it);
}

Result<Json> Client::call(const std::string& command, Json arguments) {
  return call(command, std::move(arguments), options_.command_timeout);
}

Result<AgentInfo> Client::info() {
  if (info_) return *info_;
  auto reply = call("guest-info", nullptr);
  if (!reply) return std::unexpected(reply.error());
  const std::string context = "reply to guest-info";
  AgentInfo info;
  auto version = string_member(*reply, "version", context);
  if (!version) return std::unexpected(version.error());
  info.version = std::move(*version);
  const Json* commands = find_member(*reply, "supported_commands");
  if (commands == nullptr || !commands->is_array()) {
    return std::unexpected(bad_member(context, "supported_commands", "an array"));
  }
  for (const Json& entry : *commands) {
    const std::string entry_context = context + ", supported_commands[]";
    auto name = string_member(entry, "name", entry_context);
    if (!name) return std::unexpected(name.error());
    auto enabled = bool_member(entry, "enabled", entry_context);
    if (!enabled) return std::unexpected(enabled.error());
    (*enabled ? info.enabled : info.disabled).insert(std::move(*name));
  }
  info_ = std::move(info);
  return *info_;
}

Status Client::ping() {
  auto reply = call("guest-ping", nullptr);
  if (!reply) return std::unexpected(reply.error());
  return {};
}

Status Client::require(const std::string& command) {
  auto agent = info();
  if (!agent) return std::unexpected(agent.error());
  if (agent->allows(command)) return {};
  if (agent->disabled.contains(command)) {
    return fail(Errc::kCommandDisabled,
                "the guest agent (qemu-ga " + agent->version + ") has disabled " + command);
  }
  return fail(Errc::kCommandDisabled,
              "the guest agent (qemu-ga " + agent->version + ") does not offer " + command);
}

Error Client::reboot_or(Error error) {
  if (!boot_id_ || checking_boot_ || !could_be_reboot(error.code)) return error;
  auto same = compare_boot(std::min(options_.command_timeout, kRebootCheckTimeout));
  if (!same && same.error().code == Errc::kGuestRebooted) {
    Error rebooted = std::move(same.error());
    rebooted.message += " (noticed after: " + error.message + ")";
    return rebooted;
  }
  return error;  // the same boot, or the check failed too: the first error says more
}

Result<std::int64_t> Client::open_handle(const std::string& path, Milliseconds timeout) {
  auto reply = call("guest-file-open", {{"path", path}, {"mode", "r"}}, timeout);
  if (!reply) return std::unexpected(reply.error());
  if (!reply->is_number_integer()) {
    return std::unexpected(malformed("reply to guest-file-open of " + path + " is not a handle"));
  }
  const Json wrapped = {{"handle", *reply}};
  return int_member(wrapped, "handle", "reply to guest-file-open", 0);
}

Result<GuestFile::Chunk> Client::read_chunk(std::int64_t handle, std::size_t count,
                                            Milliseconds timeout) {
  if (auto size_ok = check_read_size(count); !size_ok) return std::unexpected(size_ok.error());
  auto reply = call("guest-file-read", {{"handle", handle}, {"count", count}}, timeout);
  if (!reply) return std::unexpected(reply.error());
  return parse_read(*reply, count);
}

std::size_t Client::max_read_chunk() const {
  const std::size_t reply = transport_->max_reply_bytes();
  const std::size_t by_reply =
      reply > kFileReadReplyOverhead ? (reply - kFileReadReplyOverhead) / 4 * 3 : 0;
  return std::min(kMaxFileChunk, by_reply);
}

Status Client::check_read_size(std::size_t count) const {
  if (count > kMaxFileChunk) {
    // Refused rather than shortened, so that a caller never mistakes a short read for the
    // agent's doing.
    return fail(Errc::kCommandFailed, "guest-file-read of " + std::to_string(count) +
                                          " bytes refused: at most " +
                                          std::to_string(kMaxFileChunk) + " per read");
  }
  const std::size_t encoded = (count + 2) / 3 * 4 + kFileReadReplyOverhead;
  if (encoded > transport_->max_reply_bytes()) {
    return fail(Errc::kCommandFailed, "guest-file-read of " + std::to_string(count) +
                                          " bytes refused: its reply would " + "exceed the " +
                                          std::to_string(transport_->max_reply_bytes()) +
                                          "-byte cap of " + transport_->describe());
  }
  return {};
}

Result<GuestFile::Chunk> Client::parse_read(const Json& reply, std::size_t count) {
  const std::string context = "reply to guest-file-read";
  if (!reply.is_object()) return std::unexpected(malformed(context + " is not an object"));
  auto size = int_member(reply, "count", context, 0);
  if (!size) return std::unexpected(size.error());
  auto data = base64_member(reply, "buf-b64", context);
  if (!data) return std::unexpected(data.error());
  auto eof = bool_member(reply, "eof", context);
  if (!eof) return std::unexpected(eof.error());
  if (data->size() != static_cast<std::uint64_t>(*size)) {
    return std::unexpected(malformed(context + " says count " + std::to_string(*size) +
                                     " but buf-b64 holds " + std::to_string(data->size()) +
                                     " bytes"));
  }
  if (data->size() > count) {
    return std::unexpected(malformed(context + " holds " + std::to_string(data->size()) +
                                     " bytes, more than the " + std::to_string(count) +
                                     " asked for"));
  }
  return GuestFile::Chunk{std::move(*data), *eof};
}

Status Client::close_handle(std::int64_t handle, Milliseconds timeout) {
  auto reply = call("guest-file-close", {{"handle", handle}}, timeout);
  if (!reply) return std::unexpected(reply.error());
  return {};
}

Result<GuestFile> Client::open_file(const std::string& path) {
  for (const std::string& command : kFileCommands) {
    if (auto allowed = require(command); !allowed) return std::unexpected(allowed.error());
  }
  auto handle = open_handle(path, options_.command_timeout);
  if (!handle) return std::unexpected(reboot_or(std::move(handle.error())));
  return GuestFile(this, *handle);
}

Result<std::string> Client::read_boot_id(Milliseconds timeout) {
  auto agent = info();
  if (!agent) return std::unexpected(agent.error());
  bool files = std::all_of(kFileCommands.begin(), kFileCommands.end(),
                           [&](const std::string& c) { return agent->allows(c); });
  if (files) return read_boot_id_by_file(timeout);
  // A guest that blocks the file commands but allows guest-exec (unusual, but allowed).
  if (agent->allows("guest-exec") && agent->allows("guest-exec-status")) {
    auto run = exec("/bin/sh", {"-c", "cat " + std::string(kBootIdPath)});
    if (!run) return std::unexpected(run.error());
    if (run->exit_code != 0) {
      return fail(Errc::kCommandFailed, "reading the boot id in the guest failed: " +
                                            std::string(run->err.begin(), run->err.end()));
    }
    return parse_boot_id(std::string(run->out.begin(), run->out.end()));
  }
  return fail(Errc::kCommandDisabled,
              "the guest agent (qemu-ga " + agent->version +
                  ") allows neither the guest-file commands nor guest-exec, so the guest's boot "
                  "id cannot be read");
}

Result<std::string> Client::read_boot_id_by_file(Milliseconds timeout) {
  const std::string path(kBootIdPath);
  auto handle = open_handle(path, timeout);
  if (!handle) return std::unexpected(handle.error());
  std::string text;
  Status read_all;
  for (;;) {
    auto chunk = read_chunk(*handle, kMaxBootIdFile, timeout);
    if (!chunk) {
      read_all = std::unexpected(chunk.error());
      break;
    }
    text.append(chunk->data.begin(), chunk->data.end());
    if (text.size() > kMaxBootIdFile) {
      read_all = std::unexpected(malformed(path + " in the guest is not a boot id (too long)"));
      break;
    }
    if (chunk->eof) break;
  }
  // Closed on every path: a guest has a limited number of handles. A close failure does not
  // change what was read.
  (void)close_handle(*handle, timeout);
  if (!read_all) return std::unexpected(read_all.error());
  return parse_boot_id(std::move(text));
}

Result<std::string> Client::parse_boot_id(std::string text) {
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!Uuid::parse(text)) {
    return std::unexpected(malformed(std::string(kBootIdPath) +
                                     " in the guest is not a boot id: \"" + text.substr(0, 64) +
                                     "\""));
  }
  return text;
}

Status Client::compare_boot(Milliseconds timeout) {
  if (!boot_id_) {
    return fail(Errc::kCommandFailed, "no session: begin_session() reads the boot id first");
  }
  // The check itself may fail the way the command did; it must not check again.
  checking_boot_ = true;
  auto now = read_boot_id(timeout);
  checking_boot_ = false;
  if (!now) return std::unexpected(now.error());
  if (*now != *boot_id_) {
    return fail(Errc::kGuestRebooted, "the guest rebooted: boot id was " + *boot_id_ + ", now " +
                                          *now + " (" + transport_->describe() + ")");
  }
  return {};
}

Status Client::begin_session() {
  boot_id_.reset();
  auto id = read_boot_id(options_.command_timeout);
  if (!id) return std::unexpected(id.error());
  boot_id_ = std::move(*id);
  return {};
}

Status Client::check_same_boot() { return compare_boot(options_.command_timeout); }

Result<ExecResult> Client::exec(const std::string& path, const std::vector<std::string>& args,
                                ByteView stdin_data) {
  for (const char* command : {"guest-exec", "guest-exec-status"}) {
    if (auto allowed = require(command); !allowed) return std::unexpected(allowed.error());
  }
  Json arguments = {{"path", path}, {"arg", args}, {"capture-output", true}};
  if (!stdin_data.empty()) arguments["input-data"] = encode_base64(stdin_data);
  auto started = call("guest-exec", std::move(arguments));
  if (!started) return std::unexpected(reboot_or(std::move(started.error())));
  auto pid = int_member(*started, "pid", "reply to guest-exec");
  if (!pid) return std::unexpected(pid.error());

  const std::string context = "reply to guest-exec-status";
  const auto deadline = Clock::now() + options_.exec_timeout;
  Milliseconds interval = std::max(options_.exec_poll_interval, Milliseconds(1));
  for (;;) {
    std::this_thread::sleep_for(
        std::min<Clock::duration>(interval, std::max(deadline - Clock::now(), Clock::duration{})));
    auto status = call("guest-exec-status", {{"pid", *pid}});
    if (!status) return std::unexpected(reboot_or(std::move(status.error())));
    auto exited = bool_member(*status, "exited", context);
    if (!exited) return std::unexpected(exited.error());
    if (*exited) {
      ExecResult result;
      auto code = optional_member<std::int64_t>(*status, "exitcode", [&] {
        return int_member(*status, "exitcode", context, std::numeric_limits<int>::min(),
                          std::numeric_limits<int>::max());
      });
      if (!code) return std::unexpected(code.error());
      auto signal = optional_member<std::int64_t>(*status, "signal", [&] {
        return int_member(*status, "signal", context, 0, std::numeric_limits<int>::max());
      });
      if (!signal) return std::unexpected(signal.error());
      if (!*code && !*signal) {
        return std::unexpected(
            malformed(context + ": an exited process without exitcode or signal"));
      }
      if (*signal) {
        result.signal = static_cast<int>(**signal);
        result.exit_code = -1;
      } else {
        result.exit_code = static_cast<int>(**code);
      }
      // Output members appear only when there was output.
      auto out = optional_member<Bytes>(
          *status, "out-data", [&] { return base64_member(*status, "out-data", context); });
      if (!out) return std::unexpected(out.error());
      auto err = optional_member<Bytes>(
          *status, "err-data", [&] { return base64_member(*status, "err-data", context); });
      if (!err) return std::unexpected(err.error());
      auto out_truncated = optional_member<bool>(
          *status, "out-truncated", [&] { return bool_member(*status, "out-truncated", context); });
      if (!out_truncated) return std::unexpected(out_truncated.error());
      auto err_truncated = optional_member<bool>(
          *status, "err-truncated", [&] { return bool_member(*status, "err-truncated", context); });
      if (!err_truncated) return std::unexpected(err_truncated.error());
      result.out = std::move(*out).value_or(Bytes{});
      result.err = std::move(*err).value_or(Bytes{});
      result.out_truncated = out_truncated->value_or(false);
      result.err_truncated = err_truncated->value_or(false);
      return result;
    }
    if (Clock::now() >= deadline) {
      // QGA has no way to kill it; the caller decides what a stuck guest process means.
      return fail(Errc::kTimeout, "guest process " + std::to_string(*pid) + " (" + path +
                                      ") still running after " +
                                      duration_text(options_.exec_timeout));
    }
    interval = std::min(interval * 2, kMaxExecPollInterval);
  }
}

}  // namespace mchain::measure::qga
