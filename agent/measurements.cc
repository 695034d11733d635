#include "agent/measurements.h"

#include <algorithm>

#include "agent/abe_files.h"
#include "agent/key_chain.h"
#include "agent/vm_policy.h"
#include "chain/file_io.h"
#include "chain/package/records.h"
#include "measure/measurement.h"
#include "measure/qga/transport.h"

namespace mchain::agent {

namespace {

using Json = nlohmann::json;
constexpr std::size_t kMaxBaselineBytes = 1u << 30;

TimeUs to_us(std::chrono::seconds s) { return static_cast<TimeUs>(s.count()) * 1'000'000; }

JobOutcome failed(std::string error) { return JobOutcome{false, std::move(error), nullptr}; }

Json report_summary(const measure::Report& r) {
  return {{"baseline_created", r.baseline_created},
          {"objects", r.objects_scanned},
          {"added", r.count(measure::ChangeKind::kAdded)},
          {"removed", r.count(measure::ChangeKind::kRemoved)},
          {"changed", r.count(measure::ChangeKind::kChanged)},
          {"errors", r.errors},
          {"collector", r.collector},
          {"exit", r.exit_code()}};
}

}  // namespace

std::string_view to_string(MeasurementAgent::Trigger trigger) {
  switch (trigger) {
    case MeasurementAgent::Trigger::agent_connected: return "agent-connected";
    case MeasurementAgent::Trigger::schedule: return "schedule";
    case MeasurementAgent::Trigger::demand: return "demand";
    case MeasurementAgent::Trigger::retry: return "retry";
  }
  return "?";
}

MeasurementAgent::MeasurementAgent(MeasurementAgentOptions options, Store& view,
                                   NodeService& service)
    : options_(std::move(options)), keystore_(options_.keystore), view_(view), service_(service) {
  // Baselines say what a guest looked like: readable by this user only.
  std::error_code ec;
  std::filesystem::create_directories(options_.baselines, ec);
  std::filesystem::permissions(options_.baselines, std::filesystem::perms::owner_all, ec);
  for (unsigned i = 0; i < std::max(1u, options_.workers); ++i) {
    workers_.emplace_back([this] { work(); });
  }
}

MeasurementAgent::~MeasurementAgent() { stop(); }

void MeasurementAgent::stop() {
  std::vector<Request> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& [uuid, vm] : vms_) {
      for (Request& r : vm.waiting) dropped.push_back(std::move(r));
      vm.waiting.clear();
    }
  }
  wake_.notify_all();
  for (Request& r : dropped) r.promise->set_value(failed("mchaind is stopping"));
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
}

void MeasurementAgent::track(const Uuid& vm, const std::string& name, bool running,
                             bool agent_connected) {
  bool connected_now = false;
  {
    std::lock_guard lock(mutex_);
    Vm& v = vms_[vm];
    connected_now = running && agent_connected && !v.agent;
    v.name = name;
    v.running = running;
    v.agent = running && agent_connected;
    if (!running) {
      v.awaiting_binding = false;
      v.failures = 0;
      v.next_scheduled = 0;
    } else if (v.next_scheduled == 0 && options_.interval.count() > 0) {
      v.next_scheduled = now_us() + to_us(options_.interval);
    }
    if (connected_now) v.failures = 0;  // a fresh agent: no back-off from the last one
  }
  if (connected_now) measure(vm, Trigger::agent_connected);
}

void MeasurementAgent::forget(const Uuid& vm) {
  std::vector<Request> dropped;
  {
    std::lock_guard lock(mutex_);
    auto it = vms_.find(vm);
    if (it == vms_.end()) return;
    for (Request& r : it->second.waiting) dropped.push_back(std::move(r));
    if (it->second.busy) {
      // The job under way finishes; its worker then finds the entry unused and drops it.
      it->second.waiting.clear();
      it->second.running = false;
      it->second.name.clear();
    } else {
      vms_.erase(it);
    }
  }
  for (Request& r : dropped) r.promise->set_value(failed("the domain is gone from this host"));
}

void MeasurementAgent::bound(const Uuid& vm) {
  bool retry = false;
  {
    std::lock_guard lock(mutex_);
    auto it = vms_.find(vm);
    if (it == vms_.end()) return;
    retry = std::exchange(it->second.awaiting_binding, false) && it->second.running;
  }
  if (retry) measure(vm, Trigger::agent_connected);
}

std::shared_future<JobOutcome> MeasurementAgent::measure(const Uuid& vm, Trigger trigger) {
  return enqueue(vm, request_for(Job::measure, trigger));
}

std::shared_future<JobOutcome> MeasurementAgent::rebaseline(const Uuid& vm) {
  return enqueue(vm, request_for(Job::baseline, Trigger::demand));
}

std::shared_future<JobOutcome> MeasurementAgent::set_policy(const Uuid& vm, AbeScheme scheme,
                                                            std::vector<std::string> attributes,
                                                            std::string expression) {
  Request request = request_for(Job::set_policy, Trigger::demand);
  request.scheme = scheme;
  request.attributes = std::move(attributes);
  request.expression = std::move(expression);
  return enqueue(vm, std::move(request));
}

MeasurementAgent::Request MeasurementAgent::request_for(Job job, Trigger trigger) {
  Request r;
  r.job = job;
  r.trigger = trigger;
  r.promise = std::make_shared<std::promise<JobOutcome>>();
  r.future = r.promise->get_future().share();
  return r;
}

std::shared_future<JobOutcome> MeasurementAgent::enqueue(const Uuid& vm, Request request) {
  std::unique_lock lock(mutex_);
  if (stopping_) {
    std::promise<JobOutcome> p;
    p.set_value(failed("mchaind is stopping"));
    return p.get_future().share();
  }
  Vm& v = vms_[vm];
  // A measurement already waiting (not started) answers this request too.
  if (request.job == Job::measure) {
    for (const Request& r : v.waiting) {
      if (r.job == Job::measure) return r.future;
    }
  }
  auto future = request.future;
  v.waiting.push_back(std::move(request));
  lock.unlock();
  wake_.notify_one();
  return future;
}

TimeUs MeasurementAgent::backoff(unsigned failures) const {
  const TimeUs cap = options_.interval.count() > 0 ? to_us(options_.interval) : 3'600'000'000;
  TimeUs wait = to_us(options_.retry);
  for (unsigned i = 1; i < failures && wait < cap; ++i) wait *= 2;
  return std::min(wait, cap);
}

TimeUs MeasurementAgent::next_due() const {
  TimeUs due = UINT64_MAX;
  for (const auto& [uuid, v] : vms_) {
    if (!v.running || v.busy) continue;
    if (v.next_scheduled != 0) due = std::min(due, v.next_scheduled);
    if (v.failures > 0 && v.agent) due = std::min(due, v.retry_at);
  }
  return due;
}

bool MeasurementAgent::take(Uuid& vm, Request& request, TimeUs now) {
  // What the clock made due joins the VM's queue like any other request.
  for (auto& [uuid, v] : vms_) {
    if (!v.running || v.busy) continue;
    const bool has_measure = std::any_of(v.waiting.begin(), v.waiting.end(),
                                         [](const Request& r) { return r.job == Job::measure; });
    Trigger trigger = Trigger::schedule;
    bool due = false;
    if (v.failures > 0 && v.agent && now >= v.retry_at) {
      due = true;
      trigger = Trigger::retry;
    } else if (v.next_scheduled != 0 && now >= v.next_scheduled) {
      due = true;
    }
    if (!due) continue;
    if (v.next_scheduled != 0 && now >= v.next_scheduled) {
      v.next_scheduled = now + to_us(options_.interval);
    }
    if (v.failures > 0) v.retry_at = now + backoff(v.failures);
    if (!has_measure) {
      v.waiting.push_back(request_for(Job::measure, trigger));
    }
  }
  for (auto& [uuid, v] : vms_) {
    if (v.busy || v.waiting.empty()) continue;
    vm = uuid;
    request = std::move(v.waiting.front());
    v.waiting.pop_front();
    v.busy = true;
    v.phase = "starting";
    return true;
  }
  return false;
}

void MeasurementAgent::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (stopping_) return;
    Uuid vm;
    Request request;
    if (!take(vm, request, now_us())) {
      const TimeUs due = next_due();
      if (due == UINT64_MAX) {
        wake_.wait(lock);
      } else {
        const TimeUs now = now_us();
        wake_.wait_for(lock, std::chrono::microseconds(due > now ? due - now : 0) +
                                 std::chrono::milliseconds(1));
      }
      continue;
    }
    const std::string name = vms_[vm].name;
    lock.unlock();
    JobOutcome outcome = run(vm, name, request);
    lock.lock();
    Vm& v = vms_[vm];
    v.busy = false;
    v.phase.clear();
    v.last_run = now_us();
    v.last = {{"ok", outcome.ok},
              {"time", format_time(v.last_run)},
              {"trigger", std::string(to_string(request.trigger))}};
    if (outcome.ok) {
      v.last["result"] = outcome.result;
    } else {
      v.last["error"] = outcome.error;
    }
    if (!v.running && v.waiting.empty() && v.name.empty()) vms_.erase(vm);
    lock.unlock();
    request.promise->set_value(std::move(outcome));
    wake_.notify_all();  // the VM may have more waiting, for any worker
    lock.lock();
  }
}

void MeasurementAgent::set_phase(const Uuid& vm, std::string phase) {
  std::lock_guard lock(mutex_);
  vms_[vm].phase = std::move(phase);
}

Json MeasurementAgent::status(const Uuid& vm) const {
  std::lock_guard lock(mutex_);
  auto it = vms_.find(vm);
  if (it == vms_.end()) return nullptr;
  const Vm& v = it->second;
  Json out = {{"busy", v.busy},
              {"phase", v.phase},
              {"waiting", v.waiting.size()},
              {"awaiting_binding", v.awaiting_binding},
              {"failures", v.failures},
              {"last", v.last}};
  out["next_scheduled"] = v.next_scheduled ? Json(format_time(v.next_scheduled)) : Json(nullptr);
  out["retry_at"] = v.failures ? Json(format_time(v.retry_at)) : Json(nullptr);
  return out;
}

Result<abe::cpabe::PublicKey> MeasurementAgent::cp_authority() const {
  if (options_.cp_public_key.empty()) {
    return fail("mchaind has no abe.cp_public_key: it cannot seal CP-ABE policies");
  }
  return read_cp_public_key(options_.cp_public_key);
}

Status MeasurementAgent::seal_for_verifiers(PolicyRecord& record,
                                            const crypto::AeadKey& key) const {
  Result<Bytes> sealed;
  if (record.scheme == AbeScheme::cp_abe_versioned) {
    auto authority = cp_authority();
    if (!authority) return std::unexpected(authority.error());
    // Canonical (universe order): verifiers read which literal they miss from it (key_chain.h).
    auto policy = abe::cpabe::parse_policy(*authority, record.expression);
    if (!policy) return fail("CP-ABE policy: " + policy.error().message);
    record.expression = abe::cpabe::to_string(*authority, *policy);
    sealed = seal_data_key(*authority, record, key);
  } else {
    if (options_.abe_authority == nullptr) return {};
    sealed = seal_data_key(*options_.abe_authority, record, key);
  }
  if (!sealed) return fail("cannot seal the data key for verifiers: " + sealed.error().message);
  record.sealed_key = *std::move(sealed);
  return {};
}

Result<Hash256> MeasurementAgent::submit_and_wait(Package package) {
  auto confirmed = service_.submit(std::move(package));
  if (confirmed.wait_for(options_.confirm_timeout) != std::future_status::ready) {
    return fail("not confirmed within " + std::to_string(options_.confirm_timeout.count()) + " s");
  }
  return confirmed.get();
}

JobOutcome MeasurementAgent::run(const Uuid& vm, const std::string& name, const Request& request) {
  JobOutcome outcome = request.job == Job::set_policy
                           ? run_set_policy(vm, request)
                           : run_measure(vm, request.job == Job::baseline);
  const std::string what = request.job == Job::set_policy ? "policy revision"
                           : request.job == Job::baseline ? "new baseline"
                                                          : "measurement";
  if (outcome.ok) {
    options_.log->info("measure: " + name + " (" + vm.to_string() + "): " + what + " (" +
                       std::string(to_string(request.trigger)) +
                       ") confirmed: " + outcome.result.dump());
  } else {
    options_.log->warning("measure: " + name + " (" + vm.to_string() + "): " + what + " (" +
                          std::string(to_string(request.trigger)) + ") failed: " + outcome.error);
  }
  return outcome;
}

JobOutcome MeasurementAgent::run_measure(const Uuid& vm, bool rebaseline) {
  const TimeUs started = now_us();
  auto chain = view_.vm_at(vm, started);
  if (!chain || chain->host != options_.node_id) {
    std::lock_guard lock(mutex_);
    vms_[vm].awaiting_binding = true;
    return failed(!chain ? "not on the chain yet: its binding is not confirmed"
                         : "the chain has it on " + chain->host.value_or("no host") + ", not on " +
                               options_.node_id + ": its binding is not confirmed");
  }
  auto vm_key = keystore_.vm_key(vm);
  if (!vm_key) return failed(vm_key.error().message);
  auto user_key = keystore_.user_key(chain->owner);
  if (!user_key) return failed(user_key.error().message);
  const PackageSigners signers{&*vm_key, &*user_key, options_.node_key};
  const PackageOrigin origin{vm, chain->owner, options_.node_id, 0};

  auto policy = measure::load_policy(options_.policy_file);
  if (!policy) return failed("measurement policy: " + policy.error().message);
  const std::filesystem::path baseline_file = options_.baselines / (vm.to_string() + ".snapshot");
  std::optional<measure::Snapshot> baseline;
  if (!rebaseline && std::filesystem::exists(baseline_file)) {
    auto bytes = read_small_file(baseline_file, kMaxBaselineBytes, "baseline");
    if (!bytes) return failed(bytes.error().message);
    auto decoded = measure::decode_snapshot(as_bytes(*bytes));
    if (!decoded) {
      return failed("baseline " + baseline_file.string() + ": " + decoded.error().message);
    }
    baseline = std::move(*decoded);
  }

  set_phase(vm, "connecting");
  measure::Measurement m;
  auto transport = measure::qga::connect_libvirt(options_.libvirt_uri, vm.to_string());
  if (!transport) {
    m.report = measure::failed_run(*policy, vm.to_string(), "", started,
                                   std::string(measure::qga::errc_name(transport.error().code)) +
                                       ": " + transport.error().message);
  } else {
    set_phase(vm, "collecting");
    measure::qga::ClientOptions client_options;
    client_options.command_timeout = options_.command_timeout;
    measure::qga::Client client(std::move(*transport), client_options);
    measure::MeasureOptions measure_options;
    measure_options.vm = vm.to_string();
    m = measure::measure_guest(client, *policy, baseline ? &*baseline : nullptr, measure_options);
  }
  if (!m.snapshot) {
    std::lock_guard lock(mutex_);
    Vm& v = vms_[vm];
    ++v.failures;
    v.retry_at = now_us() + backoff(v.failures);
    const std::string why = m.report.errors.empty() ? "no snapshot" : m.report.errors.front();
    return failed("the guest agent did not complete the run (" + why + "); attempt " +
                  std::to_string(v.failures) + ", next at " + format_time(v.retry_at) +
                  " or when its agent connects again");
  }
  {
    std::lock_guard lock(mutex_);
    vms_[vm].failures = 0;
  }

  // A VM measured for the first time gets its default access policy and data key, once
  // there is a report to seal.
  if (!chain->policy) {
    set_phase(vm, "policy");
    PolicyRecord access = default_policy(vm, chain->owner);
    const crypto::AeadKey key = crypto::random_aead_key();
    if (auto sealed = seal_for_verifiers(access, key); !sealed)
      return failed(sealed.error().message);
    if (auto stored = keystore_.put_data_key(vm, access.version, key); !stored) {
      return failed(stored.error().message);
    }
    PackageOrigin o = origin;
    o.timestamp = now_us();
    auto package = make_policy_package(o, access, signers);
    if (!package) return failed("cannot sign its policy: " + package.error().message);
    if (auto confirmed = submit_and_wait(*std::move(package)); !confirmed) {
      return failed("its first policy: " + confirmed.error().message);
    }
    chain = view_.vm_at(vm, now_us());
    if (!chain || !chain->policy)
      return failed("its first policy is not in force after confirmation");
  }
  const PolicyRef policy_ref = chain->policy->ref;
  auto data_key = keystore_.data_key(vm, policy_ref.version);
  if (!data_key) return failed(data_key.error().message);

  set_phase(vm, "confirming");
  PackageOrigin o = origin;
  o.timestamp = now_us();
  const Bytes report = measure::encode_report(m.report);
  auto package = make_data_package(o, policy_ref, *data_key, report, signers);
  if (!package) return failed("cannot seal the report: " + package.error().message);
  const Hash256 id = package->id();
  auto confirmed = submit_and_wait(*std::move(package));
  if (!confirmed) return failed("its data package: " + confirmed.error().message);

  // The baseline moves only once the report that records it is on the chain.
  if (!baseline) {
    auto written = write_file_atomically(
        baseline_file, as_chars(measure::encode_snapshot(*m.snapshot)), 0600, "baseline");
    if (!written) return failed(written.error().message);
  }
  Json result = report_summary(m.report);
  result["package"] = to_hex(id);
  result["semi_finished"] = to_hex(*confirmed);
  result["policy_version"] = policy_ref.version;
  return JobOutcome{true, "", std::move(result)};
}

JobOutcome MeasurementAgent::run_set_policy(const Uuid& vm, const Request& request) {
  const TimeUs now = now_us();
  auto chain = view_.vm_at(vm, now);
  if (!chain) return failed("not on the chain");
  if (chain->host && chain->host != options_.node_id) {
    return failed("it runs on " + *chain->host + ": revise its policy there");
  }
  auto vm_key = keystore_.vm_key(vm);
  if (!vm_key) return failed(vm_key.error().message);
  auto user_key = keystore_.user_key(chain->owner);
  if (!user_key) return failed(user_key.error().message);
  const PackageSigners signers{&*vm_key, &*user_key, options_.node_key};

  const std::uint64_t old_version = chain->policy ? chain->policy->ref.version : 0;
  std::optional<crypto::AeadKey> old_key;
  if (old_version > 0) {
    auto held = find_data_key(view_, keystore_, vm, old_version);
    if (!held) return failed(held.error().message);
    old_key = *held;
  }
  PolicyRecord policy{vm, old_version + 1, request.scheme, request.attributes, request.expression};
  const crypto::AeadKey new_key = crypto::random_aead_key();
  if (auto sealed = seal_for_verifiers(policy, new_key); !sealed)
    return failed(sealed.error().message);
  if (auto stored = keystore_.put_data_key(vm, policy.version, new_key); !stored) {
    return failed(stored.error().message);
  }
  set_phase(vm, "confirming");
  auto package =
      make_policy_package({vm, chain->owner, options_.node_id, now_us()}, policy, signers);
  if (!package) return failed("cannot sign the policy: " + package.error().message);
  const Hash256 policy_id = package->id();
  auto confirmed = submit_and_wait(*std::move(package));
  if (!confirmed)
    return failed("policy v" + std::to_string(policy.version) + ": " + confirmed.error().message);
  Json result = {{"policy_version", policy.version},
                 {"scheme", std::string(to_string(policy.scheme))},
                 {"expression", policy.expression},
                 {"policy_hash", to_hex(policy.hash())},
                 {"package", to_hex(policy_id)}};
  if (policy.scheme == AbeScheme::cp_abe_versioned) {
    if (auto ct = abe::cpabe::Ciphertext::from_bytes(policy.sealed_key)) {
      result["cp_system_version"] = ct->version();
    }
  }
  if (old_key) {
    auto link = make_key_link_package({vm, chain->owner, options_.node_id, now_us()}, policy.ref(),
                                      old_version, *old_key, new_key, signers);
    if (!link) return failed("cannot make the key link: " + link.error().message);
    result["key_link"] = to_hex(link->id());
    if (auto linked = submit_and_wait(*std::move(link)); !linked) {
      return failed("policy v" + std::to_string(policy.version) +
                    " is in force, but its key link was not confirmed (" + linked.error().message +
                    "): reports under older versions cannot be reached from the new key");
    }
  }
  return JobOutcome{true, "", std::move(result)};
}

}  // namespace mchain::agent
