// A domain's guest agent through libvirt's virDomainQemuAgentCommand: libvirt owns the
// channel, frames and syncs; we translate its errors into ours.
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

#include "chain/types.h"
#include "measure/qga/libvirt_glue.h"
#include "measure/qga/transport.h"

namespace mchain::measure::qga {

namespace {

// QEMU_AGENT_MAX_RESPONSE in libvirt's src/qemu/qemu_agent.c.
constexpr std::size_t kLibvirtMaxReply = 10u << 20;

// Error numbers of libvirt releases newer than the headers we may build with; the daemon
// on the other end of a remote connection can be newer than our library.
constexpr int kVirErrAgentCommandTimeout = 112;  // VIR_ERR_AGENT_COMMAND_TIMEOUT
constexpr int kVirErrAgentCommandFailed = 113;   // VIR_ERR_AGENT_COMMAND_FAILED

struct MallocFreer {
  void operator()(char* text) const noexcept { std::free(text); }
};
using LibvirtString = std::unique_ptr<char, MallocFreer>;

bool starts_with_command_text(std::string_view desc) {
  return desc.starts_with("Command ") || desc.starts_with("The command ");
}

// libvirt turns an agent's {"error": {"class", "desc"}} into VIR_ERR_INTERNAL_ERROR
// "unable to execute QEMU agent command '<name>': <desc>" (qemuAgentCheckError), losing the
// class. Rebuild the reply so that the Client sees the same thing from both transports; the
// class is recovered where it matters (unknown or disabled commands) from the agent's
// desc, or from libvirt's text for a class without desc.
std::optional<Json> agent_error_reply(const std::string& command, const std::string& message) {
  const std::string marker = "unable to execute QEMU agent command '" + command + "': ";
  const std::size_t at = message.find(marker);
  if (at == std::string::npos) return std::nullopt;
  const std::string desc = message.substr(at + marker.size());
  const bool unknown_or_disabled =
      (starts_with_command_text(desc) && (desc.find("has not been found") != std::string::npos ||
                                          desc.find("has been disabled") != std::string::npos)) ||
      desc == "The command has not been found" ||
      desc == "The command has been disabled for this instance";
  return Json{
      {"error",
       {{"class", unknown_or_disabled ? "CommandNotFound" : "GenericError"}, {"desc", desc}}}};
}

class LibvirtTransport final : public Transport {
 public:
  LibvirtTransport(std::string uri, std::string domain, std::string description,
                   Connection connection, Domain handle, std::string uuid)
      : uri_(std::move(uri)),
        domain_(std::move(domain)),
        description_(std::move(description)),
        connection_(std::move(connection)),
        handle_(std::move(handle)),
        uuid_(std::move(uuid)) {}

  Result<Json> round_trip(const Json& command, Milliseconds timeout) override;
  std::size_t max_reply_bytes() const override { return kLibvirtMaxReply; }
  std::string describe() const override { return description_; }

 private:
  // A remote connection dies with libvirtd; reopen it and find the domain again by UUID.
  Status reconnect_if_dead();
  Error translate(const std::string& command, const LibvirtError& error, int seconds) const;

  std::string uri_;  // as given, for reopening ("" = libvirt's default)
  std::string domain_;
  std::string description_;
  Connection connection_;
  Domain handle_;
  std::string uuid_;
};

Result<Domain> lookup_domain(virConnectPtr connection, const std::string& domain,
                             const std::string& where) {
  if (Domain found{virDomainLookupByName(connection, domain.c_str())}) return found;
  LibvirtError error = take_last_libvirt_error();
  if (Uuid::parse(domain)) {
    if (Domain found{virDomainLookupByUUIDString(connection, domain.c_str())}) return found;
    error = take_last_libvirt_error();
  }
  if (error.code == VIR_ERR_NO_DOMAIN) {
    return fail(Errc::kNotConnected, "libvirt domain '" + domain + "' not found on " + where);
  }
  return fail(Errc::kNotConnected,
              "cannot look up libvirt domain '" + domain + "' on " + where + ": " + error.message);
}

Result<Connection> open_connection(const std::string& uri) {
  Connection connection{virConnectOpen(uri.empty() ? nullptr : uri.c_str())};
  if (!connection) {
    return fail(Errc::kNotConnected, "cannot connect to libvirt at " +
                                         (uri.empty() ? std::string("the default URI") : uri) +
                                         ": " + take_last_libvirt_error().message);
  }
  virConnSetErrorFunc(connection.get(), nullptr, ignore_libvirt_error);
  return connection;
}

Status LibvirtTransport::reconnect_if_dead() {
  if (virConnectIsAlive(connection_.get()) != 0) return {};  // 1 alive, -1 cannot tell
  take_last_libvirt_error();
  auto connection = open_connection(uri_);
  if (!connection) return std::unexpected(connection.error());
  auto handle = lookup_domain(connection->get(), uuid_, description_);
  if (!handle) return std::unexpected(handle.error());
  // The domain goes first: it holds a reference to its connection.
  handle_ = std::move(*handle);
  connection_ = std::move(*connection);
  return {};
}

Error LibvirtTransport::translate(const std::string& command, const LibvirtError& error,
                                  int seconds) const {
  const std::string context = command + " on " + description_ + ": " + error.message;
  switch (error.code) {
    case VIR_ERR_AGENT_UNRESPONSIVE:
      // libvirt says "Guest agent not available for now" when a command (or its own
      // guest-sync) timed out, and uses the same code for an agent that is not connected.
      if (error.message.find("not available for now") != std::string::npos) {
        return {Errc::kTimeout, "no reply to " + command + " within " + std::to_string(seconds) +
                                    " s through " + description_ + ": " + error.message};
      }
      return {Errc::kNotConnected, context};
    case kVirErrAgentCommandTimeout:
    case VIR_ERR_OPERATION_TIMEOUT:  // e.g. another job holds the domain
      return {Errc::kTimeout, context};
    case VIR_ERR_AGENT_UNSYNCED: return {Errc::kMalformedReply, context};
    case VIR_ERR_NO_DOMAIN:             // the domain went away
    case VIR_ERR_OPERATION_INVALID:     // "domain is not running"
    case VIR_ERR_ARGUMENT_UNSUPPORTED:  // "QEMU guest agent is not configured"
    case VIR_ERR_NO_SUPPORT:            // a driver without agent commands (test, lxc)
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
    case VIR_ERR_RPC: return {Errc::kNotConnected, context};
    default: break;
  }
  // libvirt's read buffer overflowed: "No complete agent response found in 10485760 bytes".
  if (error.message.find("No complete agent response found") != std::string::npos) {
    return {Errc::kOversizeReply, context};
  }
  if (error.message.find("Missing agent reply object") != std::string::npos ||
      error.message.find("disappeared") != std::string::npos) {
    return {Errc::kNotConnected, context};
  }
  if (error.code == VIR_ERR_INTERNAL_ERROR || error.code == kVirErrAgentCommandFailed) {
    return {Errc::kMalformedReply, context};
  }
  return {Errc::kIo, context};
}

Result<Json> LibvirtTransport::round_trip(const Json& command, Milliseconds timeout) {
  std::string name = "<unnamed command>";
  if (command.is_object()) {
    if (auto it = command.find("execute"); it != command.end() && it->is_string()) {
      name = it->get<std::string>();
    }
  }
  std::string text;
  try {
    text = command.dump();
  } catch (const Json::exception& e) {
    // Strings that are not UTF-8 (odd guest paths) cannot travel as JSON.
    return fail(Errc::kCommandFailed, "cannot encode " + name + ": " + e.what());
  }
  if (auto alive = reconnect_if_dead(); !alive) return std::unexpected(alive.error());

  // libvirt counts whole seconds, and 0 means "do not wait".
  const auto ms = std::max<long long>(timeout.count(), 1);
  const int seconds = static_cast<int>(std::min<long long>((ms + 999) / 1000, 24 * 3600));
  LibvirtString result{virDomainQemuAgentCommand(handle_.get(), text.c_str(), seconds, 0)};
  if (!result) {
    const LibvirtError error = take_last_libvirt_error();
    if (error.code == VIR_ERR_INTERNAL_ERROR || error.code == kVirErrAgentCommandFailed) {
      if (auto reply = agent_error_reply(name, error.message)) return *reply;
    }
    // The daemon went away under us (restart, crash): whatever libvirt called the failure
    // ("Cannot write data: Broken pipe"), the agent is out of reach; the next call reconnects.
    if (virConnectIsAlive(connection_.get()) == 0) {
      return fail(Errc::kNotConnected, "lost the connection to libvirt during " + name + " on " +
                                           description_ + ": " + error.message);
    }
    return std::unexpected(translate(name, error, seconds));
  }
  const std::string_view reply_text(result.get());
  if (reply_text.size() > kLibvirtMaxReply) {
    return fail(Errc::kOversizeReply, "reply to " + name + " through " + description_ +
                                          " exceeds " + std::to_string(kLibvirtMaxReply) +
                                          " bytes");
  }
  Json reply = Json::parse(reply_text, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object()) {
    return fail(Errc::kMalformedReply,
                "reply to " + name + " through " + description_ + " is not a JSON object");
  }
  return reply;
}

}  // namespace

Result<std::unique_ptr<Transport>> connect_libvirt(const std::string& uri,
                                                   const std::string& domain) {
  initialize_libvirt();
  auto connection = open_connection(uri);
  if (!connection) return std::unexpected(connection.error());

  std::string where = uri;
  if (LibvirtString actual{virConnectGetURI(connection->get())}) where = actual.get();
  take_last_libvirt_error();

  auto handle = lookup_domain(connection->get(), domain, where);
  if (!handle) return std::unexpected(handle.error());

  std::array<char, VIR_UUID_STRING_BUFLEN> uuid{};
  if (virDomainGetUUIDString(handle->get(), uuid.data()) != 0) {
    return fail(Errc::kIo, "cannot read the UUID of libvirt domain '" + domain + "' on " + where +
                               ": " + take_last_libvirt_error().message);
  }
  std::string description = "libvirt domain " + domain + " (" + where + ")";
  return std::make_unique<LibvirtTransport>(uri, domain, std::move(description),
                                            std::move(*connection), std::move(*handle),
                                            std::string(uuid.data()));
}

}  // namespace mchain::measure::qga
