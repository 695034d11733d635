// Measurement triggers (SPEC §10): the agent measures a VM when its guest agent connects
// after a start or a migration, on a per-VM schedule, and on demand, and puts each report on
// the chain as a data package, encrypted with the VM's data key and signed by the VM, its
// owner and this node.
//
// Every operation that changes a VM's evidence — a measurement, a new baseline, a policy
// revision — runs one at a time per VM, in the order asked, on a small pool of workers;
// different VMs proceed in parallel. A request made while the VM's measurement is under way
// gets a new measurement after it (files may have changed since that one started); requests
// that find one already waiting share it.
//
// A VM whose guest agent does not answer is reported (log, `mchainctl vms`) and tried again
// after a back-off that doubles up to the schedule's interval, or at its agent's next
// connection; never in a tight loop. A failed run leaves the baseline as it was and puts
// nothing on the chain.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "abe/cpabe/cpabe.h"
#include "abe/kpabe/kpabe.h"
#include "agent/keystore.h"
#include "agent/systemd.h"
#include "chain/node/service.h"
#include "chain/package/records.h"
#include "chain/store/store.h"

namespace mchain::agent {

struct MeasurementAgentOptions {
  std::string node_id;
  const crypto::Signer* node_key = nullptr;
  std::filesystem::path keystore;       // see agent/keystore.h
  std::filesystem::path baselines;      // one snapshot per VM: <uuid>.snapshot
  std::string libvirt_uri;              // the guest agents are reached through libvirt
  std::filesystem::path policy_file;    // the Tripwire-style measurement policy, read every run
  std::chrono::seconds interval{3600};  // scheduled measurements; 0: none
  std::chrono::seconds retry{30};       // first retry of an agent that did not answer
  std::chrono::milliseconds command_timeout{10'000};  // one QGA command
  std::chrono::seconds confirm_timeout{60};           // a package's confirmation
  unsigned workers = 2;
  // The cluster ABE authority: each policy version's data key is sealed under it in the policy
  // record (agent/key_chain.h); nullptr: not sealed, only this host's keystore holds it.
  const abe::kp::MasterPublicKey* abe_authority = nullptr;
  // The versioned CP-ABE authority's public key file, read at each sealing so that a re-key
  // (`mchainctl abe rekey`) applies without a restart; empty: no CP-ABE policies.
  std::filesystem::path cp_public_key;
  const Logger* log = nullptr;
};

// The outcome of one job, as `mchainctl measure|baseline|policy set` print it.
struct JobOutcome {
  bool ok = false;
  std::string error;
  nlohmann::json result;  // what was done: the report's summary, the policy, the package
};

class MeasurementAgent {
 public:
  enum class Trigger { agent_connected, schedule, demand, retry };

  MeasurementAgent(MeasurementAgentOptions options, Store& view, NodeService& service);
  ~MeasurementAgent();  // stop()
  MeasurementAgent(const MeasurementAgent&) = delete;
  MeasurementAgent& operator=(const MeasurementAgent&) = delete;

  // What libvirt says of a domain on this host (the monitor's thread). A guest agent that
  // comes up on a running VM triggers a measurement.
  void track(const Uuid& vm, const std::string& name, bool running, bool agent_connected);
  void forget(const Uuid& vm);
  // The VM's binding to this node is confirmed: a measurement that waited for it may run.
  void bound(const Uuid& vm);

  std::shared_future<JobOutcome> measure(const Uuid& vm, Trigger trigger = Trigger::demand);
  // Measures and records the result as the new baseline (the report says so).
  std::shared_future<JobOutcome> rebaseline(const Uuid& vm);
  // Puts policy version N+1 on the chain with a new data key, then the key link N -> N+1.
  // Under the versioned CP-ABE the expression is stored in its canonical form.
  std::shared_future<JobOutcome> set_policy(const Uuid& vm, AbeScheme scheme,
                                            std::vector<std::string> attributes,
                                            std::string expression);

  // The CP-ABE public key as the next sealing will read it; an error without one.
  Result<abe::cpabe::PublicKey> cp_authority() const;

  // For `mchainctl vms` and progress: what the agent is doing with a VM and how it went.
  nlohmann::json status(const Uuid& vm) const;

  // Lets the jobs under way finish (their submissions fail once the service stops), fails
  // the waiting ones with "stopping", and joins the workers.
  void stop();

 private:
  enum class Job { measure, baseline, set_policy };
  struct Request {
    Job job = Job::measure;
    Trigger trigger = Trigger::demand;
    AbeScheme scheme = AbeScheme::kp_abe_gpsw;
    std::vector<std::string> attributes;
    std::string expression;
    std::shared_ptr<std::promise<JobOutcome>> promise;
    std::shared_future<JobOutcome> future;
  };
  struct Vm {
    std::string name;
    bool running = false;
    bool agent = false;
    bool busy = false;
    std::string phase;  // of the job under way: "connecting", "collecting", "confirming"
    std::deque<Request> waiting;
    bool awaiting_binding = false;  // a triggered measurement found it not bound here yet
    TimeUs next_scheduled = 0;
    unsigned failures = 0;  // consecutive runs whose agent did not answer
    TimeUs retry_at = 0;
    TimeUs last_run = 0;
    nlohmann::json last;  // the last outcome
  };

  static Request request_for(Job job, Trigger trigger);
  std::shared_future<JobOutcome> enqueue(const Uuid& vm, Request request);
  void work();
  // Picks a VM with a job to run now, or queues what the clock made due; false if none.
  bool take(Uuid& vm, Request& request, TimeUs now);
  TimeUs next_due() const;
  JobOutcome run(const Uuid& vm, const std::string& name, const Request& request);
  JobOutcome run_measure(const Uuid& vm, bool rebaseline);
  JobOutcome run_set_policy(const Uuid& vm, const Request& request);
  void set_phase(const Uuid& vm, std::string phase);
  Result<Hash256> submit_and_wait(Package package);
  // Seals `key` into record.sealed_key under the authority of the record's scheme: KP-ABE when
  // there is one (else the key stays on this host), CP-ABE always (an error without one).
  Status seal_for_verifiers(PolicyRecord& record, const crypto::AeadKey& key) const;
  TimeUs backoff(unsigned failures) const;

  MeasurementAgentOptions options_;
  Keystore keystore_;
  Store& view_;
  NodeService& service_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<Uuid, Vm> vms_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

std::string_view to_string(MeasurementAgent::Trigger trigger);

}  // namespace mchain::agent
