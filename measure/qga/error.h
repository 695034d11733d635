// Errors of the guest-agent client: one code per way an agent can fail us, so that callers
// (collectors, the agent's scheduler) can react differently, and a message for people.
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "chain/error.h"

namespace mchain::measure::qga {

enum class Errc {
  kNotConnected,     // no agent at the other end: socket missing/refused, no answer to sync,
                     // libvirt says the agent is not connected
  kCommandDisabled,  // the guest's agent does not offer or has disabled the command
  kCommandFailed,    // the agent ran the command and returned an error (e.g. no such file)
  kTimeout,          // no reply within the command's timeout
  kGuestRebooted,    // the guest's boot id changed while we were working
  kHandleLost,       // the agent no longer knows a file handle or exec pid (agent restarted)
  kMalformedReply,   // not JSON, not an object, wrong member types, bad base64, wrong sync id
  kOversizeReply,    // a reply larger than the transport's cap
  kIo,               // local I/O failure on the transport
};

std::string_view errc_name(Errc code);  // "not-connected", "command-disabled", …

struct Error {
  Errc code;
  std::string message;
};

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(Errc code, std::string message) {
  return std::unexpected(Error{code, std::move(message)});
}

// For callers outside measure/: "<code>: <message>".
inline mchain::Error to_error(const Error& e) {
  return mchain::Error{std::string(errc_name(e.code)) + ": " + e.message};
}

}  // namespace mchain::measure::qga
