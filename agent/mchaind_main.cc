// mchaind: the host agent (agent/daemon.h). Exit status: 0 stopped cleanly, 1 could not
// start (the log says why), 2 bad arguments or configuration.
#include <csignal>
#include <iostream>
#include <string_view>

#include "agent/config.h"
#include "agent/daemon.h"
#include "agent/version.h"

namespace {

constexpr std::string_view kHelp =
    R"(usage: mchaind [--config PATH] [--check-config] [--version] [--help]

The mchain host agent: keeps this host's node of the replicated measurement chain, follows
libvirt and measures guests through qemu-guest-agent. Runs in the foreground (systemd
Type=notify); SIGTERM lets rounds in flight finish, then stops.

  --config PATH    configuration file (default: /etc/mchain/mchaind.json)
  --check-config   check the configuration, print what it says, and exit
)";

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int) { g_stop = true; }

}  // namespace

int main(int argc, char** argv) {
  using namespace mchain::agent;
  std::filesystem::path config_path{std::string(kDefaultConfigPath)};
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--version") {
      std::cout << "mchaind " << version() << '\n';
      return 0;
    }
    if (arg == "--help") {
      std::cout << kHelp;
      return 0;
    }
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
      continue;
    }
    if (arg == "--check-config") {
      check_only = true;
      continue;
    }
    std::cerr << "mchaind: unknown argument '" << arg << "'\n" << kHelp;
    return 2;
  }

  const Logger log;
  auto config = load_config(config_path);
  if (!config) {
    log.error("configuration: " + config.error().message);
    return 2;
  }
  if (check_only) {
    std::cout << config_path.string() << ": node " << config->node_id << ", state "
              << config->state_dir.string() << ", control " << config->control_socket.string()
              << ", libvirt " << config->libvirt_uri.value_or("none") << ", TPM "
              << (config->tpm_device ? config->tpm_device->string() : "none") << "\n";
    return 0;
  }

  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  // A peer or client that goes away must not kill the daemon with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);

  auto daemon = Daemon::start(*std::move(config), log);
  if (!daemon) {
    log.error("cannot start: " + daemon.error().message);
    return 1;
  }
  return (*daemon)->run(g_stop);
}
