// mchaind: the host agent. This release carries the identity, package and validation core;
// the service loop (libvirt monitor, peers, control socket) arrives in the agent issue.
#include "agent/version.h"

#include <iostream>
#include <string_view>

namespace {

constexpr std::string_view kHelp = R"(usage: mchaind [--version] [--help] [--config PATH]

The mchain host agent: follows libvirt, measures guests through qemu-guest-agent and keeps
the replicated measurement chain. Default configuration: /etc/mchain/mchaind.json.
)";

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--version") {
      std::cout << "mchaind " << mchain::agent::version() << '\n';
      return 0;
    }
    if (arg == "--help") {
      std::cout << kHelp;
      return 0;
    }
    if (arg == "--config" && i + 1 < argc) {
      ++i;
      continue;
    }
    std::cerr << "mchaind: unknown argument '" << arg << "'\n" << kHelp;
    return 2;
  }
  std::cerr << "mchaind " << mchain::agent::version()
            << ": the service loop is not part of this release yet; use 'mchainctl demo'.\n";
  return 1;
}
