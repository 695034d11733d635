#include "measure/qga/error.h"

namespace mchain::measure::qga {

std::string_view errc_name(Errc code) {
  switch (code) {
    case Errc::kNotConnected: return "not-connected";
    case Errc::kCommandDisabled: return "command-disabled";
    case Errc::kCommandFailed: return "command-failed";
    case Errc::kTimeout: return "timeout";
    case Errc::kGuestRebooted: return "guest-rebooted";
    case Errc::kHandleLost: return "handle-lost";
    case Errc::kMalformedReply: return "malformed-reply";
    case Errc::kOversizeReply: return "oversize-reply";
    case Errc::kIo: return "io";
  }
  return "unknown";
}

}  // namespace mchain::measure::qga
