// mchainctl's commands that ask a running mchaind over its control socket (agent/control.h).
// Each returns the process exit status: 0 success, 1 the daemon refused or failed the request
// (the reason on `err`), 3 mchaind could not be reached.
#pragma once

#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mchain::agent {

inline constexpr std::string_view kDefaultControlSocket = "/run/mchain/mchaind.sock";
inline constexpr int kExitUnreachable = 3;

struct DaemonCommandOptions {
  std::filesystem::path socket{std::string(kDefaultControlSocket)};
  bool json = false;
  std::chrono::milliseconds timeout{10'000};
};

int daemon_status(const DaemonCommandOptions& options, std::ostream& out, std::ostream& err);
int daemon_peers(const DaemonCommandOptions& options, std::ostream& out, std::ostream& err);
int daemon_metrics(const DaemonCommandOptions& options, std::ostream& out, std::ostream& err);
// The domains libvirt has on this host, as mchaind follows them.
int daemon_vms(const DaemonCommandOptions& options, std::ostream& out, std::ostream& err);
// Registers a user: a key made in this host's keystore, and its register-user package,
// confirmed before this returns.
int daemon_user_add(const DaemonCommandOptions& options, const std::string& name, std::ostream& out,
                    std::ostream& err);
// chain tip / show / verify and history (`args` as for mchaind's "chain" command), answered by
// a running mchaind from its own store; nullopt if no mchaind answers on the socket (the
// caller then reads the store itself).
std::optional<int> daemon_chain(const DaemonCommandOptions& options,
                                const std::vector<std::string>& args, std::ostream& out,
                                std::ostream& err);
// The libvirt hook's latest calls as mchaind recorded them.
int daemon_hooks(const DaemonCommandOptions& options, std::ostream& out, std::ostream& err);
// Submits the package in `file` (its canonical encoding); with `wait`, returns once its
// semi-finished block is durable on this node.
int daemon_submit(const DaemonCommandOptions& options, const std::filesystem::path& file, bool wait,
                  std::ostream& out, std::ostream& err);

}  // namespace mchain::agent
