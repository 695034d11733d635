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

#include "chain/package/records.h"

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

// Per-VM commands; DOMAIN is a name, UUID or libvirt id on the daemon's host.
// Measures DOMAIN now (baseline: and takes the result as its new baseline). Without wait,
// returns once the measurement is queued; with wait (always for a baseline), once its report
// is confirmed, showing progress on a terminal.
int daemon_measure(const DaemonCommandOptions& options, const std::string& domain, bool wait,
                   bool baseline, std::ostream& out, std::ostream& err);
// A report of DOMAIN from the chain, decrypted with the keys the daemon holds: the newest, or
// the one whose package id starts with `package`.
int daemon_report(const DaemonCommandOptions& options, const std::string& domain,
                  const std::string& package, std::ostream& out, std::ostream& err);
// Re-checks DOMAIN's whole history: every inclusion proof, and every report opens. Exit 1 if
// anything does not hold.
int daemon_verify(const DaemonCommandOptions& options, const std::string& domain, std::ostream& out,
                  std::ostream& err);
int daemon_policy_show(const DaemonCommandOptions& options, const std::string& domain,
                       std::ostream& out, std::ostream& err);
// Puts the next policy version on the chain (a new data key, and the key link to it). No
// scheme: the VM's current one. No attributes: the VM's current ones.
int daemon_policy_set(const DaemonCommandOptions& options, const std::string& domain,
                      const std::string& expression, const std::vector<std::string>& attributes,
                      std::optional<AbeScheme> scheme, std::ostream& out, std::ostream& err);

}  // namespace mchain::agent
