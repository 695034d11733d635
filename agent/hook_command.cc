#include "agent/hook_command.h"

#include <istream>
#include <ostream>

#include "agent/control.h"
#include "agent/domain_metadata.h"

namespace mchain::agent {

int run_hook(const std::filesystem::path& socket, const std::vector<std::string>& args,
             std::istream& xml, std::ostream& err, std::chrono::milliseconds deadline) {
  const auto start = std::chrono::steady_clock::now();
  if (args.size() < 3 || args.size() > 4) {
    err << "mchain hook: expected DOMAIN OPERATION SUB-OPERATION [EXTRA], as libvirt passes them\n";
    return 2;
  }
  const std::string what = "'" + args[1] + " " + args[2] + "' of " + args[0];
  std::string text;
  char buffer[65536];
  while (xml.read(buffer, sizeof buffer) || xml.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(xml.gcount()));
    if (text.size() > kMaxDomainXmlBytes) {
      err << "mchain hook: domain XML above " << kMaxDomainXmlBytes << " bytes; " << what
          << " not recorded\n";
      return 0;
    }
  }
  const nlohmann::json request = {{"command", "hook"},
                                  {"domain", args[0]},
                                  {"operation", args[1]},
                                  {"sub_operation", args[2]},
                                  {"extra", args.size() == 4 ? args[3] : "-"},
                                  {"xml", text}};
  const auto left = deadline - std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - start);
  auto response = control_request(socket, request, std::max(left, std::chrono::milliseconds(1)));
  if (!response) {
    // libvirt must go on whether or not mchaind runs: the resync at its next start catches up.
    err << "mchain hook: " << response.error().message << "; " << what << " not recorded\n";
    return 0;
  }
  if (!response->value("ok", false)) {
    err << "mchain hook: mchaind: " << response->value("error", std::string("refused the call"))
        << "; " << what << " not recorded\n";
    return 0;
  }
  if (!response->value("allow", true)) {
    err << "mchain: " << what
        << " refused: " << response->value("reason", std::string("(no reason)")) << '\n';
    return 1;
  }
  return 0;
}

}  // namespace mchain::agent
