// Bindings (SPEC §10): what libvirt says runs on this host, made into signed binding packages,
// so that every node validates a VM's packages against the same VM–user–node history.
//
// For each domain the monitor reports, on its own thread, the agent compares libvirt with the
// chain's view now and submits what closes the gap, one package at a time (each must be
// confirmed before the next can validate):
//   not on the chain, owner known      -> "defined" (or "started" if it runs): a new VM key
//                                         in the keystore, registered by this package
//   on the chain, stopped, runs here    -> "started"
//   on another node, runs here, handed over to this host (agent/handoff.h) -> "migrated"
//   hosted here on the chain, not running -> "stopped"
//   undefined in libvirt, on the chain  -> "undefined"
//   another owner in the metadata, signed for here -> "transferred" (by the new owner's key)
// Every binding is signed by the VM key, the owner's user key and this node's key; a VM whose
// owner this host holds no key for, or whose VM key is with another host (a migration not
// handed over yet), is reported, not retried in a loop: the next event or resync tries again.
// A VM that left by migration gets nothing from this host: its destination binds it.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "agent/keystore.h"
#include "agent/libvirt_monitor.h"
#include "agent/systemd.h"
#include "chain/node/service.h"
#include "chain/store/store.h"

namespace mchain::agent {

class BindingAgent {
 public:
  struct Options {
    std::string node_id;
    const crypto::Signer* node_key = nullptr;
    std::filesystem::path keystore;
    const Logger* log = nullptr;
    std::chrono::seconds confirm_timeout{60};
    // Called (on the agent's thread) once a binding that puts a VM on this node is confirmed.
    std::function<void(const Uuid& vm)> on_bound;
    // Whether this host received the VM by a migration hand-off not bound yet
    // (Handoff::awaits_binding); unset: never.
    std::function<bool(const Uuid& vm)> handed_over;
    // Called (on the agent's thread) once a transfer to `owner` is confirmed.
    std::function<void(const Uuid& vm, const std::string& owner)> on_transferred;
  };

  // The agent's account of one VM, for `mchainctl vms`.
  struct State {
    std::string binding;  // the last binding submitted ("started", ...), or ""
    std::string problem;  // why the chain does not match libvirt, or ""
    std::string package;  // the last binding package's id (hex)
  };

  BindingAgent(Options options, Store& view, NodeService& service);
  ~BindingAgent();  // stop()
  BindingAgent(const BindingAgent&) = delete;
  BindingAgent& operator=(const BindingAgent&) = delete;

  // A domain as the monitor reported it (never blocks: queued for the agent's thread).
  // migrated_away: it stopped here because it migrated; the destination binds it, this host
  // signs nothing more for it.
  void observe(const DomainInfo& domain, bool undefined = false, bool migrated_away = false);
  std::optional<State> state(const Uuid& vm) const;
  // Finishes the binding under way (its submission fails if the service stops) and joins.
  void stop();

 private:
  struct Observation {
    DomainInfo domain;
    bool undefined = false;
    bool migrated_away = false;
  };
  void run();
  void reconcile(const Observation& o);
  void report(const Uuid& vm, const std::string& name, std::string problem);

  Options options_;
  Keystore keystore_;
  Store& view_;
  NodeService& service_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Observation> queue_;
  std::map<Uuid, State> states_;
  bool stopping_ = false;
  std::thread thread_;
};

// Whether a domain in `state` has a QEMU process on this host (it runs, or is paused there).
bool runs_here(const std::optional<DomainState>& state);

}  // namespace mchain::agent
