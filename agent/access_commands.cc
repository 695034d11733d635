#include "agent/access_commands.h"

#include <algorithm>
#include <map>
#include <system_error>
#include <vector>

#include "abe/kpabe/kpabe.h"
#include "agent/control.h"
#include "agent/key_chain.h"
#include "chain/file_io.h"
#include "chain/package/records.h"
#include "measure/report/report.h"

namespace mchain::agent {

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::size_t kMaxKeyFile = 4 << 20;  // a verifier key of 1024 leaves is ~150 KiB

template <class T>
Result<T> read_encoded(const fs::path& path, std::string_view what, Result<T> (*decode)(ByteView)) {
  auto text = read_small_file(path, kMaxKeyFile, what);
  if (!text) return std::unexpected(text.error());
  auto value = decode(as_bytes(*text));
  if (!value) return fail(path.string() + ": " + value.error().message);
  return value;
}

// A verifier key file of either scheme (agent/key_chain.h).
Result<VerifierKey> read_verifier_key(const fs::path& path) {
  auto text = read_small_file(path, kMaxKeyFile, "verifier key");
  if (!text) return std::unexpected(text.error());
  const ByteView bytes = as_bytes(*text);
  auto kp = abe::kp::UserKey::decode(bytes);
  if (kp) return VerifierKey{*std::move(kp)};
  if (auto cp = abe::cpabe::UserKey::from_bytes(bytes)) return VerifierKey{*std::move(cp)};
  return fail(path.string() + ": not a verifier key (" + kp.error().message + ")");
}

// A control request whose refusal is an error (the daemon's message).
Result<Json> ask(const DaemonCommandOptions& o, const Json& request) {
  auto response = control_request(o.socket, request, o.timeout);
  if (!response) return std::unexpected(response.error());
  if (!response->value("ok", false)) {
    return fail("mchaind: " + response->value("error", std::string("request refused")));
  }
  return response;
}

template <class Record>
std::vector<Record> decode_records(const Json& list, std::vector<Package>* packages = nullptr) {
  std::vector<Record> out;
  for (const Json& item : list) {
    auto bytes = from_hex(item.get<std::string>());
    if (!bytes) continue;
    auto package = Package::decode(*bytes);
    if (!package) continue;
    if constexpr (std::is_same_v<Record, Package>) {
      out.push_back(*package);
    } else {
      auto record = Record::decode(package->body());
      if (record) out.push_back(*std::move(record));
    }
    if (packages) packages->push_back(*package);
  }
  return out;
}

}  // namespace

int abe_setup(const fs::path& dir, std::ostream& out, std::ostream& err) {
  const fs::path mpk = dir / "abe.mpk";
  const fs::path msk = dir / "abe.msk";
  std::error_code ec;
  if (fs::exists(mpk, ec) || fs::exists(msk, ec)) {
    err << "mchainctl: " << dir.string()
        << " already holds an ABE authority: keys issued under it would stop working\n";
    return 1;
  }
  fs::create_directories(dir, ec);
  if (ec) {
    err << "mchainctl: " << dir.string() << ": " << ec.message() << '\n';
    return 1;
  }
  const abe::kp::Authority authority = abe::kp::setup();
  const Bytes secret = authority.secret_key.encode();
  const Bytes public_key = authority.public_key.encode();
  if (auto s = write_file_atomically(msk, as_chars(secret), 0600, "ABE master secret key"); !s) {
    err << "mchainctl: " << s.error().message << '\n';
    return 1;
  }
  if (auto s = write_file_atomically(mpk, as_chars(public_key), 0644, "ABE public key"); !s) {
    err << "mchainctl: " << s.error().message << '\n';
    return 1;
  }
  out << "ABE authority " << to_hex(authority.public_key.id()).substr(0, 16) << " (KP-ABE, GPSW)\n"
      << "  public key: " << mpk.string() << "  (set abe.public_key to it on every mchaind)\n"
      << "  secret key: " << msk.string() << "  (keep on this host: it issues verifier keys)\n";
  return 0;
}

int verifier_issue(const fs::path& authority_dir, const std::string& policy,
                   const fs::path& key_file, std::ostream& out, std::ostream& err) {
  auto tree = abe::parse_policy(policy);
  if (!tree) {
    err << "mchainctl: --policy: " << tree.error().message << '\n';
    return 2;
  }
  auto mpk = read_encoded<abe::kp::MasterPublicKey>(authority_dir / "abe.mpk", "ABE public key",
                                                    &abe::kp::MasterPublicKey::decode);
  auto msk = read_encoded<abe::kp::MasterSecretKey>(
      authority_dir / "abe.msk", "ABE master secret key", &abe::kp::MasterSecretKey::decode);
  if (!mpk || !msk) {
    err << "mchainctl: " << (!mpk ? mpk.error().message : msk.error().message) << '\n';
    return 1;
  }
  auto key = abe::kp::keygen(*mpk, *msk, *tree);
  if (!key) {
    err << "mchainctl: " << key.error().message << '\n';
    return 1;
  }
  const Bytes encoded = key->encode();
  if (auto s = write_file_atomically(key_file, as_chars(encoded), 0600, "verifier key"); !s) {
    err << "mchainctl: " << s.error().message << '\n';
    return 1;
  }
  out << "verifier key " << key_file.string() << ": reads what satisfies " << tree->to_string()
      << '\n';
  return 0;
}

int verifier_read(const DaemonCommandOptions& o, const std::string& domain,
                  const fs::path& key_file, std::ostream& out, std::ostream& err) {
  auto key = read_verifier_key(key_file);
  if (!key) {
    err << "mchainctl: " << key.error().message << '\n';
    return 1;
  }
  auto r = ask(o, {{"command", "vm-records"}, {"domain", domain}});
  if (!r) {
    err << "mchainctl: " << r.error().message << '\n';
    return kExitUnreachable;
  }
  const std::vector<PolicyRecord> policies = decode_records<PolicyRecord>((*r)["policies"]);
  const std::vector<KeyLinkRecord> links = decode_records<KeyLinkRecord>((*r)["links"]);
  const std::vector<Package> data = decode_records<Package>((*r)["data"]);
  const VerifierKeys keys = verifier_keys(policies, links, *key);

  Json reports = Json::array();
  for (const Package& p : data) {
    const std::uint64_t version = p.header().policy.version;
    Json entry = {{"package", to_hex(p.id())},
                  {"time", format_time(p.header().timestamp)},
                  {"policy_version", version}};
    const auto k = keys.keys.find(version);
    if (k == keys.keys.end()) {
      entry["error"] = "no access";
    } else if (auto plain = open_data_package(p, k->second); !plain) {
      entry["error"] = "does not open: " + plain.error().message;
    } else if (auto report = measure::decode_report(*plain); !report) {
      entry["error"] = "not a report: " + report.error().message;
    } else {
      entry["report"] = measure::report_to_json(*report);
      entry["summary"] = {{"objects", report->objects_scanned},
                          {"added", report->count(measure::ChangeKind::kAdded)},
                          {"removed", report->count(measure::ChangeKind::kRemoved)},
                          {"changed", report->count(measure::ChangeKind::kChanged)},
                          {"baseline_created", report->baseline_created}};
    }
    reports.push_back(std::move(entry));
  }
  Json denied = Json::object();
  for (const auto& [version, why] : keys.denied) denied[std::to_string(version)] = why;

  if (o.json) {
    out << Json{{"vm", r->value("vm", "")},
                {"name", r->value("name", domain)},
                {"readable_versions",
                 [&] {
                   Json v = Json::array();
                   for (const auto& [version, _] : keys.keys) v.push_back(version);
                   return v;
                 }()},
                {"denied", denied},
                {"reports", reports}}
               .dump(2)
        << '\n';
  } else {
    out << r->value("name", domain) << " (" << r->value("vm", "") << "): " << policies.size()
        << " policy versions, " << data.size() << " reports\n";
    for (const auto& [version, why] : keys.denied) {
      out << "  policy v" << version << ": refused: " << why << '\n';
    }
    for (const Json& e : reports) {
      out << "  " << e["time"].get<std::string>() << "  v"
          << e["policy_version"].get<std::uint64_t>() << "  "
          << e["package"].get<std::string>().substr(0, 16) << "  ";
      if (e.contains("error")) {
        out << e["error"].get<std::string>() << '\n';
        continue;
      }
      const Json& s = e["summary"];
      if (s["baseline_created"].get<bool>()) {
        out << "baseline recorded, " << s["objects"] << " objects\n";
      } else {
        out << s["objects"] << " objects: " << s["added"] << " added, " << s["removed"]
            << " removed, " << s["changed"] << " changed\n";
      }
    }
  }
  return keys.denied.empty() ? 0 : 1;
}

int verifier_revoke(const DaemonCommandOptions& o, const std::string& domain,
                    const std::string& attribute, std::ostream& out, std::ostream& err) {
  auto r = ask(o, {{"command", "policy-show"}, {"domain", domain}});
  if (!r) {
    err << "mchainctl: " << r.error().message << '\n';
    return kExitUnreachable;
  }
  const Json& p = (*r)["policy"];
  if (p.is_null()) {
    err << "mchainctl: " << domain << " has no policy yet: nothing to revoke\n";
    return 1;
  }
  std::vector<std::string> attributes = p["attributes"].get<std::vector<std::string>>();
  const auto it = std::find(attributes.begin(), attributes.end(), attribute);
  if (it == attributes.end()) {
    err << "mchainctl: policy v" << p.value("version", 0) << " of " << domain
        << " has no attribute " << attribute << " (it has: ";
    for (std::size_t i = 0; i < attributes.size(); ++i) err << (i ? ", " : "") << attributes[i];
    err << ")\n";
    return 1;
  }
  attributes.erase(it);
  return daemon_policy_set(o, domain, p.value("expression", std::string()), attributes, out, err);
}

}  // namespace mchain::agent
