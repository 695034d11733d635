#include "agent/vm_commands.h"

#include <set>
#include <sstream>

#include "abe/cpabe/cpabe.h"
#include "agent/chain_commands.h"
#include "agent/vm_policy.h"
#include "chain/store/verify.h"
#include "measure/policy/policy.h"
#include "measure/report/report.h"

namespace mchain::agent {

namespace {

using Json = nlohmann::json;

Json error(std::string message) { return {{"ok", false}, {"error", std::move(message)}}; }

// Answers a waiting request from the job's outcome.
Json answer(const NamedVm& vm, const JobOutcome& outcome) {
  if (!outcome.ok) return error(vm.name + ": " + outcome.error);
  return {{"ok", true}, {"vm", vm.uuid.to_string()}, {"name", vm.name}, {"result", outcome.result}};
}

}  // namespace

VmCommands::VmCommands(const Store& store, std::filesystem::path keystore,
                       std::filesystem::path measure_policy, MeasurementAgent* measurements,
                       Lookup lookup)
    : store_(store),
      keystore_(std::move(keystore)),
      measure_policy_(std::move(measure_policy)),
      measurements_(measurements),
      lookup_(std::move(lookup)) {}

void VmCommands::stop() { tasks_.join_all(); }

Result<NamedVm> VmCommands::resolve(const std::string& domain) const {
  if (domain.empty()) return fail("no domain given");
  if (auto found = lookup_(domain)) return *found;
  if (auto uuid = Uuid::parse(domain)) {
    if (store_.vm_at(*uuid, now_us()) || !store_.vm_packages(*uuid, 0, UINT64_MAX).empty()) {
      return NamedVm{*uuid, uuid->to_string()};
    }
  }
  return fail("no domain '" + domain +
              "' here (by name, UUID or id), and no VM of that UUID on the chain");
}

Result<NamedVm> VmCommands::resolve_request(const Json& request) const {
  auto it = request.find("domain");
  if (it == request.end() || !it->is_string())
    return fail("expected \"domain\": a name, UUID or id");
  return resolve(it->get<std::string>());
}

void VmCommands::measure(const Json& request, const Reply& reply) {
  if (!measurements_) return reply(error("mchaind runs without libvirt: no guest to measure"));
  auto vm = resolve_request(request);
  if (!vm) return reply(error(vm.error().message));
  const bool baseline = request.value("baseline", false);
  auto future = baseline ? measurements_->rebaseline(vm->uuid) : measurements_->measure(vm->uuid);
  if (!request.value("wait", false) && !baseline) {
    return reply(
        {{"ok", true}, {"vm", vm->uuid.to_string()}, {"name", vm->name}, {"queued", true}});
  }
  tasks_.spawn([reply, vm = *vm, future] { reply(answer(vm, future.get())); });
}

void VmCommands::progress(const Json& request, const Reply& reply) {
  auto vm = resolve_request(request);
  if (!vm) return reply(error(vm.error().message));
  reply({{"ok", true},
         {"vm", vm->uuid.to_string()},
         {"measurement", measurements_ ? measurements_->status(vm->uuid) : Json(nullptr)}});
}

Json VmCommands::describe_data(const Package& package) const {
  const PackageHeader& h = package.header();
  auto key = find_data_key(store_, keystore_, h.vm, h.policy.version);
  if (!key) return {{"error", key.error().message}};
  auto plain = open_data_package(package, *key);
  if (!plain) return {{"error", "does not open: " + plain.error().message}};
  auto report = measure::decode_report(*plain);
  if (!report) return {{"error", "not a report: " + report.error().message}};
  return {{"baseline_created", report->baseline_created},
          {"objects", report->objects_scanned},
          {"added", report->count(measure::ChangeKind::kAdded)},
          {"removed", report->count(measure::ChangeKind::kRemoved)},
          {"changed", report->count(measure::ChangeKind::kChanged)},
          {"errors", report->errors.size()},
          {"exit", report->exit_code()}};
}

void VmCommands::report(const Json& request, const Reply& reply) {
  auto vm = resolve_request(request);
  if (!vm) return reply(error(vm.error().message));
  const std::string wanted = request.value("package", "");
  if (!wanted.empty() &&
      (wanted.size() < 8 || !from_hex(wanted.size() % 2 ? wanted + "0" : wanted))) {
    return reply(error("a package is named by its id, or at least its first 8 hex digits"));
  }
  const bool json = request.value("json", false);
  tasks_.spawn([this, reply, vm = *vm, wanted, json] {
    std::optional<PackageLocation> chosen;
    for (const PackageLocation& at : store_.vm_packages(vm.uuid, 0, UINT64_MAX)) {
      if (!wanted.empty() && !to_hex(at.package_id).starts_with(wanted)) continue;
      chosen = at;  // in time order: the last match is the newest
    }
    const std::string which = wanted.empty() ? "no measurement report" : "no package " + wanted;
    if (!chosen) return reply(error(which + " of " + vm.name + " on the chain"));
    auto semi = store_.semi_finished(chosen->semi_finished);
    if (!semi) return reply(error(semi.error().message));
    const Package& p = semi->candidate.packages.at(chosen->index);
    if (p.header().type != PackageType::data) {
      return reply(error("package " + to_hex(p.id()) + " is a " +
                         std::string(to_string(p.header().type)) + " package, not a report"));
    }
    auto key = find_data_key(store_, keystore_, vm.uuid, p.header().policy.version);
    if (!key) return reply(error(key.error().message));
    auto plain = open_data_package(p, *key);
    if (!plain) return reply(error("the report does not open: " + plain.error().message));
    auto report = measure::decode_report(*plain);
    if (!report) return reply(error("the package holds no report: " + report.error().message));
    Json out = {{"ok", true},
                {"vm", vm.uuid.to_string()},
                {"name", vm.name},
                {"package", to_hex(p.id())},
                {"semi_finished", to_hex(chosen->semi_finished)},
                {"node", p.header().node},
                {"time", format_time(p.header().timestamp)},
                {"policy_version", p.header().policy.version},
                {"exit", report->exit_code()}};
    if (auto mined = store_.mined_in(chosen->semi_finished)) out["block"] = to_hex(*mined);
    if (json) {
      out["report"] = measure::report_to_json(*report);
      return reply(out);
    }
    auto policy = measure::load_policy(measure_policy_);
    if (!policy) return reply(error("measurement policy: " + policy.error().message));
    std::ostringstream text;
    text << "Report " << to_hex(p.id()) << " of " << vm.name << " (" << vm.uuid.to_string()
         << ")\n  measured on " << p.header().node << " at " << format_time(p.header().timestamp)
         << ", sealed under policy v" << p.header().policy.version << "\n  confirmed in "
         << to_hex(chosen->semi_finished)
         << (out.contains("block") ? ", mined in " + out["block"].get<std::string>()
                                   : std::string(", not mined yet"))
         << "\n\n"
         << measure::report_to_text(*report, *policy, measure::ReportLevel::kDetail);
    out["text"] = text.str();
    reply(out);
  });
}

void VmCommands::verify(const Json& request, const Reply& reply) {
  auto vm = resolve_request(request);
  if (!vm) return reply(error(vm.error().message));
  const bool json = request.value("json", false);
  tasks_.spawn([this, reply, vm = *vm, json] {
    ChainCommandOptions o;
    o.open = &store_;
    o.json = true;
    o.describe_data = [this](const Package& p) { return describe_data(p); };
    std::ostringstream history, err;
    int exit = vm_history(o, vm.uuid, 0, UINT64_MAX, history, err);
    if (exit != 0) {
      return reply({{"ok", true}, {"exit", 1}, {"out", ""}, {"err", err.str()}});
    }
    const Json h = Json::parse(history.str());
    std::size_t reports = 0, unopened = 0, mined = 0;
    std::vector<std::string> problems;
    std::set<std::string> blocks;
    for (const Json& e : h["packages"]) {
      blocks.insert(e["semi_finished"].get<std::string>());
      if (!e["block"].is_null()) ++mined;
      if (e["type"] != "data") continue;
      ++reports;
      if (e["report"].contains("error")) {
        ++unopened;
        problems.push_back("report " + e["id"].get<std::string>().substr(0, 16) + ": " +
                           e["report"]["error"].get<std::string>());
      }
    }
    // Each block that holds the VM's packages, once: its leader's signature, its marks and
    // every package's signatures, with the keys in force at the time.
    for (const std::string& hex : blocks) {
      Hash256 hash{};
      const Bytes bytes = *from_hex(hex);
      std::copy_n(bytes.begin(), hash.size(), hash.begin());
      auto semi = store_.semi_finished(hash);
      const Status ok = semi ? verify_semi_finished_signatures(*semi, store_)
                             : Status(std::unexpected(semi.error()));
      if (!ok) problems.push_back("block " + hex.substr(0, 16) + ": " + ok.error().message);
    }
    const std::size_t count = h["packages"].size();
    Json result = {{"vm", vm.uuid.to_string()},
                   {"name", vm.name},
                   {"packages", count},
                   {"proofs_verified", count},
                   {"blocks_signatures_checked", blocks.size()},
                   {"mined", mined},
                   {"reports", reports},
                   {"reports_open", reports - unopened},
                   {"problems", problems},
                   {"verified", problems.empty()}};
    std::ostringstream text;
    if (json) {
      text << result.dump(2) << '\n';
    } else {
      text << vm.name << " (" << vm.uuid.to_string() << "): " << count
           << " packages on the chain, every Merkle proof verified; " << mined
           << " in mature blocks\n"
           << "signatures (leader, marks, packages) checked in the " << blocks.size()
           << " blocks that hold them\n"
           << reports << " measurement reports, " << reports - unopened
           << " open with the keys held here\n";
      for (const std::string& p : problems) text << "  " << p << '\n';
      text << (problems.empty() ? "verified\n" : "NOT verified\n");
    }
    reply({{"ok", true}, {"exit", problems.empty() ? 0 : 1}, {"out", text.str()}, {"err", ""}});
  });
}

namespace {

// What the next sealing would use: the CP-ABE system version mchaind's public key is at.
Json abe_status(const MeasurementAgent* measurements) {
  Json out = {{"cp_system_version", nullptr}};
  if (measurements == nullptr) return out;
  if (auto pk = measurements->cp_authority()) {
    out["cp_system_version"] = pk->version;
  } else {
    out["cp_error"] = pk.error().message;
  }
  return out;
}

}  // namespace

void VmCommands::policy_show(const Json& request, const Reply& reply) {
  auto vm = resolve_request(request);
  if (!vm) return reply(error(vm.error().message));
  auto at = store_.vm_at(vm->uuid, now_us());
  if (!at) return reply(error(vm->name + " is not on the chain (not bound yet, or undefined)"));
  if (!at->policy) {
    return reply({{"ok", true},
                  {"vm", vm->uuid.to_string()},
                  {"name", vm->name},
                  {"owner", at->owner},
                  {"policy", nullptr},
                  {"abe", abe_status(measurements_)}});
  }
  auto record = policy_record(store_, vm->uuid, at->policy->ref.version);
  if (!record) return reply(error(record.error().message));
  Json policy = {{"version", record->version},
                 {"scheme", std::string(to_string(record->scheme))},
                 {"attributes", record->attributes},
                 {"expression", record->expression},
                 {"hash", to_hex(record->hash())},
                 {"sealed_for_verifiers", !record->sealed_key.empty()},
                 {"since", format_time(at->policy->since)}};
  if (record->scheme == AbeScheme::cp_abe_versioned) {
    if (auto ct = abe::cpabe::Ciphertext::from_bytes(record->sealed_key)) {
      policy["sealed_system_version"] = ct->version();
    }
  }
  reply({{"ok", true},
         {"vm", vm->uuid.to_string()},
         {"name", vm->name},
         {"owner", at->owner},
         {"policy", std::move(policy)},
         {"abe", abe_status(measurements_)}});
}

void VmCommands::records(const Json& request, const Reply& reply) {
  auto vm = resolve_request(request);
  if (!vm) return reply(error(vm.error().message));
  tasks_.spawn([this, reply, vm = *vm] {
    Json out = {{"ok", true}, {"vm", vm.uuid.to_string()}, {"name", vm.name}};
    const std::pair<const char*, PackageType> kinds[] = {{"policies", PackageType::policy},
                                                         {"links", PackageType::key_link},
                                                         {"data", PackageType::data}};
    for (const auto& [field, type] : kinds) {
      Json list = Json::array();
      for (const Package& p : vm_packages_of_type(store_, vm.uuid, type)) {
        list.push_back(to_hex(p.encode()));
      }
      out[field] = std::move(list);
    }
    reply(std::move(out));
  });
}

void VmCommands::policy_set(const Json& request, const Reply& reply) {
  auto vm = resolve_request(request);
  if (!vm) return reply(error(vm.error().message));
  const auto expression = request.find("expression");
  const auto attributes = request.find("attributes");
  if (expression == request.end() || !expression->is_string() || expression->empty()) {
    return reply(error("policy set: expected \"expression\": who may read the VM's reports"));
  }
  std::optional<AbeScheme> scheme;
  if (const auto name = request.find("scheme"); name != request.end()) {
    if (name->is_string()) scheme = abe_scheme_from_string(name->get<std::string>());
    if (!scheme) {
      return reply(error("policy set: \"scheme\" is kp-abe-gpsw or cp-abe-versioned"));
    }
  }
  std::vector<std::string> attrs;
  if (attributes != request.end()) {
    if (!attributes->is_array()) return reply(error("policy set: \"attributes\" is a list"));
    for (const Json& a : *attributes) {
      if (!a.is_string() || a.empty()) return reply(error("policy set: empty attribute"));
      attrs.push_back(a.get<std::string>());
    }
  }
  // The attribute set and the scheme stay the VM's own unless given; a VM not measured yet has
  // no policy, and the default one's attributes.
  if (attrs.empty() || !scheme) {
    if (auto at = store_.vm_at(vm->uuid, now_us()); at && at->policy) {
      if (auto record = policy_record(store_, vm->uuid, at->policy->ref.version)) {
        if (attrs.empty()) attrs = record->attributes;
        if (!scheme) scheme = record->scheme;
      }
    } else if (at && attrs.empty()) {
      attrs = default_policy(vm->uuid, at->owner).attributes;
    }
  }
  if (attrs.empty()) return reply(error("policy set: give the VM's attributes (--attribute)"));
  if (!measurements_) return reply(error("mchaind runs without libvirt: it hosts no VM"));
  auto future = measurements_->set_policy(vm->uuid, scheme.value_or(AbeScheme::kp_abe_gpsw),
                                          std::move(attrs), expression->get<std::string>());
  tasks_.spawn([reply, vm = *vm, future] { reply(answer(vm, future.get())); });
}

}  // namespace mchain::agent
