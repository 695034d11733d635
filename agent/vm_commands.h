// mchaind's per-VM control commands (mchainctl measure, baseline, report, verify, policy): a
// domain named virsh-like (name, UUID or libvirt id) is resolved against what libvirt has on
// this host, or, by UUID, against the chain; the work is the measurement agent's or a read of
// the daemon's open store, answered off the control thread. Reports are opened with the data
// keys this host holds (agent/vm_policy.h).
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "agent/keystore.h"
#include "agent/measurements.h"
#include "agent/tasks.h"
#include "chain/store/store.h"

namespace mchain::agent {

struct NamedVm {
  Uuid uuid;
  std::string name;  // libvirt's name, or the UUID for a VM only the chain knows
};

class VmCommands {
 public:
  // Finds a domain by name, UUID or id among libvirt's on this host; nullopt if none.
  using Lookup = std::function<std::optional<NamedVm>(const std::string& domain)>;
  using Reply = std::function<void(nlohmann::json)>;

  VmCommands(const Store& store, std::filesystem::path keystore,
             std::filesystem::path measure_policy, MeasurementAgent* measurements, Lookup lookup);

  // A domain as mchainctl names it; a UUID libvirt does not know here is accepted if the
  // chain knows the VM (its history outlives its stay on this host).
  Result<NamedVm> resolve(const std::string& domain) const;

  // Each answers through `reply` exactly once; those that wait do so on their own thread.
  void measure(const nlohmann::json& request, const Reply& reply);      // {domain, wait, baseline}
  void progress(const nlohmann::json& request, const Reply& reply);     // {domain}
  void report(const nlohmann::json& request, const Reply& reply);       // {domain, package?, json}
  void verify(const nlohmann::json& request, const Reply& reply);       // {domain, json}
  void policy_show(const nlohmann::json& request, const Reply& reply);  // {domain}
  void policy_set(const nlohmann::json& request,
                  const Reply& reply);  // {domain, expression, attributes}
  // {domain}: the VM's confirmed policy, key-link and data packages, encoded, in time order:
  // what a verifier decrypts on its own side with its ABE key (agent/key_chain.h).
  void records(const nlohmann::json& request, const Reply& reply);

  // A data package's report as history shows it: its summary, or why it does not open here.
  nlohmann::json describe_data(const Package& package) const;

  // Joins the threads still answering (after the measurement agent stopped).
  void stop();

 private:
  Result<NamedVm> resolve_request(const nlohmann::json& request) const;

  const Store& store_;
  Keystore keystore_;
  std::filesystem::path measure_policy_;
  MeasurementAgent* measurements_;  // null without libvirt: nothing can be measured
  Lookup lookup_;
  Tasks tasks_;
};

}  // namespace mchain::agent
