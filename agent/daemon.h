// mchaind's service: this host's cluster node (chain/node/runtime.h) and the control socket,
// under systemd's supervision (Type=notify with a watchdog). Runs without libvirt and
// without a TPM when the configuration says so, and says so in its log.
//
// Control commands (agent/control.h):
//   status                      the node, its chain, peers and what it runs without
//   peers                       every member of the genesis file: address, linked or not
//   chain-tip                   the main chain's tip and the layer-1 count
//   submit {package: hex, wait} validate and buffer a package; with wait, answer once its
//                               semi-finished block is durable
//   metrics                     Prometheus text exposition
//   hook {domain, operation, sub_operation, extra, xml}
//                               a libvirt hook call (mchainctl hook): recorded; with
//                               hook.enforce, a VM this node cannot bind is refused before it
//                               starts or arrives (no owner in its metadata, or this node out
//                               of the valid pool)
//   hooks                       the latest 256 hook calls
//   vms                         the domains libvirt has here: state, owner, guest agent
//
// Stopping (SIGTERM): systemd is told STOPPING=1, no new package is taken, and rounds in
// flight may finish (packages waiting in the buffers get confirmed) for up to
// drain_timeout; then the network closes and the store is closed cleanly.
#pragma once

#include <atomic>
#include <memory>

#include "agent/config.h"
#include "agent/systemd.h"
#include "chain/error.h"

namespace mchain::agent {

class Daemon {
 public:
  static Result<std::unique_ptr<Daemon>> start(DaemonConfig config, const Logger& log);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Serves until `stop` becomes true, then drains and stops. Returns the exit status.
  int run(const std::atomic<bool>& stop);

  struct State;

 private:
  explicit Daemon(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace mchain::agent
