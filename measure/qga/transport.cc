#include "measure/qga/transport.h"

namespace mchain::measure::qga {

Status Transport::pipeline(std::size_t /*depth*/, const std::function<std::optional<Json>()>& next,
                           const std::function<bool(Json)>& on_reply, Milliseconds timeout) {
  while (auto command = next()) {
    auto reply = round_trip(*command, timeout);
    if (!reply) return std::unexpected(reply.error());
    if (!on_reply(std::move(*reply))) break;
  }
  return {};
}

}  // namespace mchain::measure::qga
