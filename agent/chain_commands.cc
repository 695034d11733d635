#include "agent/chain_commands.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "chain/block/merkle.h"
#include "chain/store/store.h"
#include "chain/store/verify.h"

namespace mchain::agent {

namespace {

using nlohmann::json;

// Read-only commands must never turn a mistyped path into a new, empty store.
Result<std::unique_ptr<Store>> open_existing(const std::filesystem::path& path) {
  StoreOptions options;
  options.create_if_missing = false;
  options.sync = false;  // nothing is written
  return Store::open(path, options);
}

// The store the command reads: the daemon's own (borrowed), or the one at options.store.
Result<std::shared_ptr<const Store>> use_store(const ChainCommandOptions& options) {
  if (options.open != nullptr)
    return std::shared_ptr<const Store>(options.open, [](const Store*) {});
  auto store = open_existing(options.store);
  if (!store) return std::unexpected(store.error());
  return std::shared_ptr<const Store>(*std::move(store));
}

// Cumulative work as a hex number without leading zeros ("0x3000").
std::string work_hex(const Work& work) {
  const std::string hex = to_hex(work.big_endian());
  const std::size_t first = hex.find_first_not_of('0');
  return "0x" + (first == std::string::npos ? std::string("0") : hex.substr(first));
}

std::string short_hex(const Hash256& hash) { return to_hex(hash).substr(0, 16); }

void print_fields(std::ostream& out, const json& j, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    const json& v = j.at(key);
    out << key << ": " << (v.is_string() ? v.get<std::string>() : v.dump()) << '\n';
  }
}

int report_error(std::ostream& err, const std::string& message) {
  err << "mchainctl: " << message << '\n';
  return 1;
}

json package_summary(const Package& p) {
  const PackageHeader& h = p.header();
  return {{"id", to_hex(p.id())},
          {"type", to_string(h.type)},
          {"vm", h.vm.is_nil() ? json(nullptr) : json(h.vm.to_string())},
          {"user", h.user},
          {"node", h.node},
          {"timestamp", format_time(h.timestamp)},
          {"timestamp_us", h.timestamp},
          {"policy_version", h.policy.version}};
}

}  // namespace

int chain_tip(const ChainCommandOptions& options, std::ostream& out, std::ostream& err) {
  auto store = use_store(options);
  if (!store) return report_error(err, store.error().message);
  const std::size_t queue = (*store)->mining_queue().size();
  const std::size_t confirmed = (*store)->confirmed().size();
  json j{{"store", options.store.string()},
         {"mining_queue", queue},
         {"confirmed", confirmed},
         {"tip", nullptr}};
  if (auto tip = (*store)->tip()) {
    auto block = (*store)->block(tip->hash);
    if (!block) return report_error(err, "tip " + to_hex(tip->hash) + ": " + block.error().message);
    j["tip"] = {{"height", tip->height},
                {"hash", to_hex(tip->hash)},
                {"work", work_hex(tip->work)},
                {"type", to_string(block->header.type)},
                {"diff", block->header.diff},
                {"timestamp", format_time(block->header.timestamp)},
                {"timestamp_us", block->header.timestamp},
                {"blocks", tip->height + 1}};
  }
  if (options.json) {
    out << j.dump(2) << '\n';
    return 0;
  }
  if (j["tip"].is_null()) {
    out << "no mature block yet\n";
  } else {
    print_fields(out, j["tip"], {"height", "hash", "work", "type", "diff", "timestamp"});
  }
  out << "mining queue: " << queue << " semi-finished block(s)\n"
      << "confirmed: " << confirmed << " semi-finished block(s)\n";
  return 0;
}

int chain_show(const ChainCommandOptions& options, const std::string& which, std::ostream& out,
               std::ostream& err) {
  auto store = use_store(options);
  if (!store) return report_error(err, store.error().message);
  Hash256 hash{};
  if (auto height = parse_u64(which); height && which.size() < 64) {
    auto at = (*store)->main_chain_at(*height);
    if (!at) {
      auto tip = (*store)->tip();
      return report_error(err,
                          "no main-chain block at height " + which +
                              (tip ? " (the tip is at height " + std::to_string(tip->height) + ")"
                                   : " (the chain has no blocks yet)"));
    }
    hash = *at;
  } else if (auto bytes = from_hex(which); bytes && bytes->size() == 32) {
    std::copy(bytes->begin(), bytes->end(), hash.begin());
  } else {
    err << "mchainctl: chain show needs a height or a 64-digit block hash, not '" << which << "'\n";
    return 2;
  }
  auto block = (*store)->block(hash);
  if (!block) return report_error(err, block.error().message);
  const BlockHeader& h = block->header;
  const Candidate& c = block->body.candidate;
  json marks = json::array();
  for (const ValidMark& mark : block->body.marks) marks.push_back(mark.node);
  json packages = json::array();
  for (const Package& p : c.packages) packages.push_back(package_summary(p));
  json j{{"hash", to_hex(hash)},
         {"height", h.height},
         {"main_chain", (*store)->main_chain_at(h.height) == hash},
         {"type", to_string(h.type)},
         {"diff", h.diff},
         {"timestamp", format_time(h.timestamp)},
         {"timestamp_us", h.timestamp},
         {"previous", to_hex(h.previous)},
         {"merkle_root", to_hex(h.merkle_root)},
         {"semi_finished", to_hex(h.semi_finished)},
         {"nonce", std::to_string(h.nonce_hi) + ":" + std::to_string(h.nonce_lo)},
         {"leader", c.leader},
         {"round", c.round},
         {"candidate_timestamp", format_time(c.timestamp)},
         {"candidate_previous", to_hex(c.previous)},
         {"marks", marks},
         {"packages", packages}};
  if (options.json) {
    out << j.dump(2) << '\n';
    return 0;
  }
  print_fields(
      out, j,
      {"hash", "height", "main_chain", "type", "diff", "timestamp", "previous", "merkle_root",
       "semi_finished", "nonce", "leader", "round", "candidate_timestamp", "candidate_previous"});
  out << "marks:";
  for (const auto& node : marks) out << ' ' << node.get<std::string>();
  out << "\npackages: " << packages.size() << '\n';
  for (const auto& p : packages) {
    out << "  " << p["id"].get<std::string>().substr(0, 16) << "  " << p["type"].get<std::string>()
        << "  " << (p["vm"].is_null() ? std::string("-") : p["vm"].get<std::string>()) << "  "
        << (p["user"].get<std::string>().empty() ? "-" : p["user"].get<std::string>()) << "  "
        << p["node"].get<std::string>() << "  " << p["timestamp"].get<std::string>() << "  v"
        << p["policy_version"].get<std::uint64_t>() << '\n';
  }
  return 0;
}

int chain_verify(const ChainCommandOptions& options, std::ostream& out, std::ostream& err) {
  auto store = use_store(options);
  if (!store) return report_error(err, store.error().message);
  auto report = verify_chain(**store);
  if (!report) return report_error(err, report.error().message);
  json broken = nullptr;
  if (const auto& b = report->first_broken) {
    broken = {{"height", b->height ? json(*b->height) : json(nullptr)},
              {"hash", to_hex(b->hash)},
              {"reason", b->reason}};
  }
  json tip = nullptr;
  if (report->tip) tip = {{"height", report->tip->height}, {"hash", to_hex(report->tip->hash)}};
  if (options.json) {
    out << json{{"ok", report->ok()},
                {"tip", tip},
                {"blocks_checked", report->blocks_checked},
                {"packages_checked", report->packages_checked},
                {"semi_finished_checked", report->semi_finished_checked},
                {"first_broken", broken}}
               .dump(2)
        << '\n';
  } else if (report->ok()) {
    out << "ok: " << report->blocks_checked << " blocks, " << report->packages_checked
        << " packages verified";
    if (report->tip) {
      out << " up to height " << report->tip->height << ", tip " << to_hex(report->tip->hash);
    } else {
      out << ", no mature block yet";
    }
    out << '\n';
  } else {
    out << "broken at " << report->first_broken->describe() << '\n';
  }
  return report->ok() ? 0 : 1;
}

int vm_history(const ChainCommandOptions& options, const Uuid& vm, TimeUs from, TimeUs to,
               std::ostream& out, std::ostream& err) {
  auto store = use_store(options);
  if (!store) return report_error(err, store.error().message);
  std::map<Hash256, SemiFinishedBlock> semis;  // a block usually holds several of the VM's
  json entries = json::array();
  for (const PackageLocation& at : (*store)->vm_packages(vm, from, to)) {
    auto cached = semis.find(at.semi_finished);
    if (cached == semis.end()) {
      auto semi = (*store)->semi_finished(at.semi_finished);
      if (!semi) return report_error(err, semi.error().message);
      cached = semis.emplace(at.semi_finished, *std::move(semi)).first;
    }
    const Candidate& c = cached->second.candidate;
    const std::string name = "package " + to_hex(at.package_id);
    if (at.index >= c.packages.size() || c.packages[at.index].id() != at.package_id) {
      return report_error(err, name + ": not at its indexed place in semi-finished block " +
                                   short_hex(at.semi_finished) +
                                   " (corrupt store; run mchainctl chain verify)");
    }
    const Package& p = c.packages[at.index];
    std::vector<Hash256> ids;
    ids.reserve(c.packages.size());
    for (const Package& q : c.packages) ids.push_back(q.id());
    auto proof = merkle_proof(ids, at.index);
    if (!proof) return report_error(err, name + ": " + proof.error().message);
    // Check what we hand out: the proof against the candidate's root and, once mined, against
    // the mature header's (what a light client holds), with the block's package count.
    const Hash256 root = c.merkle_root();
    if (proof->tree_size != ids.size() || !verify_merkle_proof(p.id(), *proof, root)) {
      return report_error(err, name + ": its Merkle proof does not verify");
    }
    json block = nullptr;
    if (auto mined = (*store)->mined_in(at.semi_finished)) {
      auto b = (*store)->block(*mined);
      if (!b) return report_error(err, name + ": " + b.error().message);
      if (!verify_merkle_proof(p.id(), *proof, b->header.merkle_root)) {
        return report_error(
            err, name + ": its Merkle proof does not verify against block " + to_hex(*mined));
      }
      block = {{"hash", to_hex(*mined)}, {"height", b->header.height}};
    }
    json path = json::array();
    for (const Hash256& h : proof->path) path.push_back(to_hex(h));
    const PackageHeader& h = p.header();
    json report = nullptr;
    if (h.type == PackageType::data && options.describe_data) report = options.describe_data(p);
    entries.push_back({{"id", to_hex(p.id())},
                       {"report", report},
                       {"type", to_string(h.type)},
                       {"timestamp", format_time(h.timestamp)},
                       {"timestamp_us", h.timestamp},
                       {"user", h.user},
                       {"node", h.node},
                       {"policy_version", h.policy.version},
                       {"policy_hash", to_hex(h.policy.hash)},
                       {"package", to_hex(p.encode())},
                       {"semi_finished", to_hex(at.semi_finished)},
                       {"index", at.index},
                       {"merkle_root", to_hex(root)},
                       {"block", block},
                       {"proof",
                        {{"encoded", to_hex(proof->encode())},
                         {"index", proof->index},
                         {"tree_size", proof->tree_size},
                         {"path", path},
                         {"verified", true}}}});
  }
  if (options.json) {
    out << json{{"vm", vm.to_string()},
                {"from_us", from},
                {"to_us", to == UINT64_MAX ? json(nullptr) : json(to)},
                {"count", entries.size()},
                {"packages", entries}}
               .dump(2)
        << '\n';
    return 0;
  }
  if (entries.empty()) {
    out << "no confirmed packages of VM " << vm.to_string() << " in that time range\n";
    return 0;
  }
  for (const auto& e : entries) {
    out << e["timestamp"].get<std::string>() << "  " << e["type"].get<std::string>() << "  "
        << e["id"].get<std::string>().substr(0, 16) << "  " << e["node"].get<std::string>() << "  v"
        << e["policy_version"].get<std::uint64_t>() << "  ";
    if (e["block"].is_null()) {
      out << "queued (not mined yet)";
    } else {
      out << "block " << e["block"]["height"].get<std::uint64_t>() << " "
          << e["block"]["hash"].get<std::string>().substr(0, 16);
    }
    out << "  proof ok (" << e["proof"]["index"].get<std::uint64_t>() + 1 << " of "
        << e["proof"]["tree_size"].get<std::uint64_t>() << ")\n";
    if (const json& r = e["report"]; r.is_object()) {
      out << "    report: ";
      if (r.contains("error")) {
        out << r["error"].get<std::string>();
      } else if (r["baseline_created"].get<bool>()) {
        out << "baseline recorded, " << r["objects"] << " objects";
      } else {
        out << r["objects"] << " objects: " << r["added"] << " added, " << r["removed"]
            << " removed, " << r["changed"] << " changed";
      }
      if (r.value("errors", 0) > 0) out << ", " << r["errors"] << " errors";
      out << '\n';
    }
  }
  return 0;
}

}  // namespace mchain::agent
