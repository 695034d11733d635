#include "agent/bindings.h"

#include "chain/package/records.h"

namespace mchain::agent {

bool runs_here(const std::optional<DomainState>& state) {
  if (!state) return false;
  switch (*state) {
    case DomainState::kRunning:
    case DomainState::kBlocked:
    case DomainState::kPaused:
    case DomainState::kPMSuspended: return true;
    default: return false;
  }
}

BindingAgent::BindingAgent(Options options, Store& view, NodeService& service)
    : options_(std::move(options)), keystore_(options_.keystore), view_(view), service_(service) {
  thread_ = std::thread([this] { run(); });
}

BindingAgent::~BindingAgent() { stop(); }

void BindingAgent::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BindingAgent::observe(const DomainInfo& domain, bool undefined, bool migrated_away) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    queue_.push_back({domain, undefined, migrated_away});
  }
  wake_.notify_all();
}

std::optional<BindingAgent::State> BindingAgent::state(const Uuid& vm) const {
  std::lock_guard lock(mutex_);
  auto it = states_.find(vm);
  if (it == states_.end()) return std::nullopt;
  return it->second;
}

void BindingAgent::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Observation o = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    reconcile(o);
    lock.lock();
  }
}

void BindingAgent::report(const Uuid& vm, const std::string& name, std::string problem) {
  std::lock_guard lock(mutex_);
  State& s = states_[vm];
  if (!problem.empty() && problem != s.problem) {
    options_.log->warning("binding " + name + " (" + vm.to_string() + "): " + problem);
  }
  s.problem = std::move(problem);
}

void BindingAgent::reconcile(const Observation& o) {
  const DomainInfo& d = o.domain;
  const TimeUs now = now_us();
  const std::optional<VmAt> chain = view_.vm_at(d.uuid, now);
  const bool here = !o.undefined && runs_here(d.state);

  std::optional<BindingEvent> event;
  if (o.undefined) {
    if (chain) event = BindingEvent::undefined;
  } else if (!chain) {
    event = here ? BindingEvent::started : BindingEvent::defined;
  } else if (here && chain->host != options_.node_id) {
    if (chain->host && !(options_.handed_over && options_.handed_over(d.uuid))) {
      // Another node hosts it on the chain: only the migration hand-off may move it here.
      return report(d.uuid, d.name,
                    "runs here, but the chain has it on " + *chain->host +
                        ": waiting for the migration hand-off");
    }
    event = chain->host ? BindingEvent::migrated : BindingEvent::started;
  } else if (!here && chain->host == options_.node_id) {
    if (o.migrated_away) {
      options_.log->info("binding " + d.name + " (" + d.uuid.to_string() +
                         "): migrated away; its destination binds it");
      return report(d.uuid, d.name, "");
    }
    event = BindingEvent::stopped;
  }
  // A new owner in the metadata of a VM this host signs for (it runs here, or it last ran
  // here and stopped): the transfer goes on the chain, signed by the new owner.
  const bool new_owner = chain && d.owner && d.owner->user != chain->owner;
  if (!event && new_owner && !o.undefined &&
      (chain->host == options_.node_id || (!chain->host && keystore_.has_vm_key(d.uuid)))) {
    event = BindingEvent::transferred;
  }
  if (!event) return report(d.uuid, d.name, "");  // libvirt and the chain agree

  // The owner: the chain's for a known VM, the metadata's for a new one or a transfer.
  std::string owner;
  if (chain && *event != BindingEvent::transferred) {
    owner = chain->owner;
  } else if (d.owner) {
    owner = d.owner->user;
  } else {
    return report(d.uuid, d.name,
                  d.owner_error.empty()
                      ? "names no owner in its metadata: not bound"
                      : "owner metadata unusable (" + d.owner_error + "): not bound");
  }
  auto user_key = keystore_.user_key(owner);
  if (!user_key) return report(d.uuid, d.name, user_key.error().message + ": not bound");
  Result<crypto::PrivateKey> vm_key = chain || keystore_.has_vm_key(d.uuid)
                                          ? keystore_.vm_key(d.uuid)
                                          : keystore_.create_vm_key(d.uuid);
  if (!vm_key) {
    return report(d.uuid, d.name,
                  vm_key.error().message + (chain ? " (it was bound on another host)" : ""));
  }
  const PolicyRef policy = chain && chain->policy ? chain->policy->ref : PolicyRef{};
  auto package = make_binding_package({d.uuid, owner, options_.node_id, now}, policy, *event,
                                      vm_key->public_key(),
                                      PackageSigners{&*vm_key, &*user_key, options_.node_key});
  if (!package) return report(d.uuid, d.name, "cannot sign a binding: " + package.error().message);
  const std::string id = to_hex(package->id());
  {
    std::lock_guard lock(mutex_);
    State& s = states_[d.uuid];
    s.binding = std::string(to_string(*event));
    s.package = id;
  }
  auto confirmed = service_.submit(*std::move(package));
  if (confirmed.wait_for(options_.confirm_timeout) != std::future_status::ready) {
    return report(d.uuid, d.name,
                  std::string(to_string(*event)) +
                      " binding not confirmed in time; retried at the next event");
  }
  auto result = confirmed.get();
  if (!result) {
    return report(d.uuid, d.name,
                  std::string(to_string(*event)) + " binding refused: " + result.error().message);
  }
  options_.log->info("binding " + d.name + " (" + d.uuid.to_string() +
                     "): " + std::string(to_string(*event)) + " on " + options_.node_id + " for " +
                     owner + ", confirmed in " + to_hex(*result).substr(0, 16));
  report(d.uuid, d.name, "");
  if ((*event == BindingEvent::started || *event == BindingEvent::migrated) && options_.on_bound) {
    options_.on_bound(d.uuid);
  }
  if (*event == BindingEvent::transferred && options_.on_transferred) {
    options_.on_transferred(d.uuid, owner);
  }
  // One binding at a time: a new owner seen along with a start goes on the chain next.
  if (*event != BindingEvent::transferred && *event != BindingEvent::undefined && new_owner) {
    observe(d);
  }
}

}  // namespace mchain::agent
