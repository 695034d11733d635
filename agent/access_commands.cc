#include "agent/access_commands.h"

#include <algorithm>
#include <map>
#include <system_error>
#include <vector>

#include "abe/cpabe/cpabe.h"
#include "abe/kpabe/kpabe.h"
#include "agent/abe_files.h"
#include "agent/control.h"
#include "agent/key_chain.h"
#include "chain/file_io.h"
#include "chain/package/records.h"
#include "measure/report/report.h"

namespace mchain::agent {

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace cp = abe::cpabe;

int failed(std::ostream& err, const Error& e, int status = 1) {
  err << "mchainctl: " << e.message << '\n';
  return status;
}

// "member, rank_le_2" for a key's attribute set.
std::string attribute_list(const cp::PublicKey& pk, const cp::AttributeFlags& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < pk.n(); ++i) {
    if (!s[i]) continue;
    out += (out.empty() ? "" : ", ") + pk.names[i];
  }
  return out.empty() ? "(none)" : out;
}

Result<cp::UserKey> read_cp_user_key(const fs::path& file, const cp::PublicKey& pk) {
  auto key = read_verifier_key(file);
  if (!key) return std::unexpected(key.error());
  const auto* cpk = std::get_if<cp::UserKey>(&*key);
  if (cpk == nullptr) return fail(file.string() + ": a KP-ABE key, not a CP-ABE one");
  if (cpk->sys_id != pk.sys_id) return fail(file.string() + ": issued by another CP-ABE authority");
  return *cpk;
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

// A directory for a new authority of one scheme: created if need be, and refused if it holds
// one already (every key issued under that one would stop working).
Status new_authority_dir(const fs::path& dir, std::string_view public_file,
                         std::string_view master_file, std::string_view scheme) {
  std::error_code ec;
  if (fs::exists(dir / public_file, ec) || fs::exists(dir / master_file, ec)) {
    return fail(dir.string() + " already holds a " + std::string(scheme) +
                " authority: keys issued under it would stop working");
  }
  fs::create_directories(dir, ec);
  if (ec) return fail(dir.string() + ": " + ec.message());
  return {};
}

}  // namespace

int abe_setup(const fs::path& dir, std::ostream& out, std::ostream& err) {
  const fs::path mpk = dir / kKpPublicKeyFile;
  const fs::path msk = dir / kKpMasterKeyFile;
  if (auto ready = new_authority_dir(dir, kKpPublicKeyFile, kKpMasterKeyFile, "KP-ABE"); !ready) {
    return failed(err, ready.error());
  }
  const abe::kp::Authority authority = abe::kp::setup();
  const Bytes secret = authority.secret_key.encode();
  const Bytes public_key = authority.public_key.encode();
  if (auto s = write_file_atomically(msk, as_chars(secret), 0600, "ABE master secret key"); !s) {
    return failed(err, s.error());
  }
  if (auto s = write_file_atomically(mpk, as_chars(public_key), 0644, "ABE public key"); !s) {
    return failed(err, s.error());
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
  auto mpk = read_kp_public_key(authority_dir / kKpPublicKeyFile);
  if (!mpk) return failed(err, mpk.error());
  auto msk = read_kp_master_key(authority_dir / kKpMasterKeyFile);
  if (!msk) return failed(err, msk.error());
  auto key = abe::kp::keygen(*mpk, *msk, *tree);
  if (!key) return failed(err, key.error());
  const Bytes encoded = key->encode();
  if (auto s = write_file_atomically(key_file, as_chars(encoded), 0600, "verifier key"); !s) {
    return failed(err, s.error());
  }
  out << "verifier key " << key_file.string() << ": reads what satisfies " << tree->to_string()
      << '\n';
  return 0;
}

int abe_setup_cp(const fs::path& dir, const std::string& universe, std::ostream& out,
                 std::ostream& err) {
  std::vector<std::string> names;
  for (std::size_t at = 0; at <= universe.size();) {
    std::size_t comma = universe.find(',', at);
    if (comma == std::string::npos) comma = universe.size();
    std::string name = universe.substr(at, comma - at);
    name.erase(0, name.find_first_not_of(" \t"));
    name.erase(name.find_last_not_of(" \t") + 1);
    if (name.empty()) {
      err << "mchainctl: --universe: an empty name in '" << universe << "'\n";
      return 2;
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      err << "mchainctl: --universe: '" << name << "' appears twice\n";
      return 2;
    }
    names.push_back(std::move(name));
    at = comma + 1;
  }
  auto system = cp::setup(names);
  if (!system) {
    err << "mchainctl: --universe: " << cp::describe(system.error()) << " (1 to "
        << cp::kMaxUniverse << " names of [A-Za-z0-9_.:-], none of them and, or, not)\n";
    return 2;
  }
  if (auto ready = new_authority_dir(dir, kCpPublicKeyFile, kCpMasterKeyFile, "CP-ABE"); !ready) {
    return failed(err, ready.error());
  }
  if (auto s = write_cp_authority(dir, {system->pk, system->mk}); !s) return failed(err, s.error());
  out << "CP-ABE authority " << to_hex(system->pk.sys_id).substr(0, 16)
      << " (versioned CP-ABE), system version 1\n  universe:   ";
  for (std::size_t i = 0; i < names.size(); ++i) out << (i ? ", " : "") << names[i];
  out << "\n  public key: " << (dir / kCpPublicKeyFile).string()
      << "  (set abe.cp_public_key to it on every mchaind)\n  master key: "
      << (dir / kCpMasterKeyFile).string()
      << "  (keep on this host: it issues and re-keys verifier keys)\n";
  return 0;
}

int verifier_issue_cp(const fs::path& authority_dir, const std::string& attributes,
                      const fs::path& key_file, std::ostream& out, std::ostream& err) {
  auto authority = read_cp_authority(authority_dir);
  if (!authority) return failed(err, authority.error());
  auto s = cp::parse_attributes(authority->pk, attributes);
  if (!s) return failed(err, Error{"--attributes: " + s.error().message}, 2);
  auto key = cp::keygen(authority->mk, *s);
  if (!key) return failed(err, Error{"CP-ABE: " + cp::describe(key.error())});
  const Bytes encoded = key->to_bytes();
  if (auto w = write_file_atomically(key_file, as_chars(encoded), 0600, "verifier key"); !w) {
    return failed(err, w.error());
  }
  out << "verifier key " << key_file.string() << ": attributes {"
      << attribute_list(authority->pk, *s) << "}, system version " << key->version << '\n';
  return 0;
}

int abe_rekey(const fs::path& authority_dir, const fs::path& revoked_key_file, std::ostream& out,
              std::ostream& err) {
  auto authority = read_cp_authority(authority_dir);
  if (!authority) return failed(err, authority.error());
  auto revoked = read_cp_user_key(revoked_key_file, authority->pk);
  if (!revoked) return failed(err, revoked.error());
  const std::vector<std::uint32_t> gamma = cp::revocation_set(revoked->s);
  auto r = cp::rekey(authority->pk, authority->mk, gamma);
  if (!r) return failed(err, Error{"CP-ABE: " + cp::describe(r.error())});
  // The revocation and the re-key first: once the new keys are in place, the remaining
  // verifiers need the re-key, and verifier update must know whose key not to bring forward.
  if (auto w = record_cp_revocation(authority_dir, r->rk.to, revoked->s); !w) {
    return failed(err, w.error());
  }
  const fs::path rk_file = cp_rekey_file(authority_dir, r->rk.from, r->rk.to);
  const Bytes rk = r->rk.to_bytes();
  if (auto w = write_file_atomically(rk_file, as_chars(rk), 0600, "CP-ABE re-key"); !w) {
    return failed(err, w.error());
  }
  if (auto w = write_cp_authority(authority_dir, {r->pk, r->mk}); !w) return failed(err, w.error());
  out << "CP-ABE system version " << r->rk.from << " -> " << r->rk.to << ": the key for {"
      << attribute_list(authority->pk, revoked->s) << "} is revoked (" << gamma.size() << " of "
      << 2 * authority->pk.n() << " attribute occurrences re-keyed)\n"
      << "  re-key:     " << rk_file.string() << "  (secret: it would restore the revoked key)\n"
      << "  public key: " << (authority_dir / kCpPublicKeyFile).string()
      << "  (mchaind reads it at its next sealing)\n"
      << "next: mchainctl verifier update --authority " << authority_dir.string()
      << " --key FILE, for every other verifier's key;\n"
      << "      mchainctl verifier revoke DOMAIN, for every VM sealed under version " << r->rk.from
      << '\n';
  return 0;
}

int verifier_update(const fs::path& authority_dir, const fs::path& key_file, std::ostream& out,
                    std::ostream& err) {
  // The whole authority, not only its public key: this completes a re-key cut short.
  auto authority = read_cp_authority(authority_dir);
  if (!authority) return failed(err, authority.error());
  const cp::PublicKey& pk = authority->pk;
  auto key = read_cp_user_key(key_file, pk);
  if (!key) return failed(err, key.error());
  const std::uint32_t from = key->version;
  if (from > pk.version) {
    return failed(err, Error{key_file.string() + ": at system version " + std::to_string(from) +
                             ", newer than the authority's " + std::to_string(pk.version)});
  }
  if (from == pk.version) {
    out << "verifier key " << key_file.string() << ": already at system version " << from << '\n';
    return 0;
  }
  auto revocations = read_cp_revocations(authority_dir);
  if (!revocations) return failed(err, revocations.error());
  while (key->version < pk.version) {
    if (auto r = revocations->find(key->version + 1);
        r != revocations->end() && r->second == key->s) {
      return failed(err,
                    Error{key_file.string() + ": the attribute set {" + attribute_list(pk, key->s) +
                          "} was revoked at system version " + std::to_string(r->first) +
                          ": issue a new key (verifier issue) if it should read again"});
    }
    const fs::path rk_file = cp_rekey_file(authority_dir, key->version, key->version + 1);
    auto rk = read_cp_rekey(rk_file);
    if (!rk) return failed(err, rk.error());
    auto updated = cp::update_key(*key, *rk);
    if (!updated)
      return failed(err, Error{rk_file.string() + ": " + cp::describe(updated.error())});
    key = *std::move(updated);
  }
  const Bytes encoded = key->to_bytes();
  if (auto w = write_file_atomically(key_file, as_chars(encoded), 0600, "verifier key"); !w) {
    return failed(err, w.error());
  }
  out << "verifier key " << key_file.string() << ": system version " << from << " -> "
      << key->version << '\n';
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
                    const std::optional<std::string>& attribute, std::ostream& out,
                    std::ostream& err) {
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
  const std::uint64_t version = p.value("version", std::uint64_t{0});
  const std::string expression = p.value("expression", std::string());
  const auto scheme = abe_scheme_from_string(p.value("scheme", std::string()));
  if (scheme == AbeScheme::cp_abe_versioned) {
    if (attribute) {
      err << "mchainctl: policy v" << version << " of " << domain
          << " is CP-ABE: a verifier is revoked by `mchainctl abe rekey`, then `verifier revoke "
          << domain << "` without an attribute\n";
      return 2;
    }
    const Json& current = (*r)["abe"]["cp_system_version"];
    if (!current.is_number()) {
      err << "mchainctl: mchaind has no abe.cp_public_key: it cannot seal a CP-ABE policy\n";
      return 1;
    }
    const std::uint64_t sealed = p.value("sealed_system_version", std::uint64_t{0});
    if (current.get<std::uint64_t>() <= sealed) {
      err << "mchainctl: policy v" << version << " of " << domain
          << " is sealed under CP-ABE system version " << sealed
          << ", mchaind's current one: revoke the key first (mchainctl abe rekey --authority DIR "
             "--revoke FILE)\n";
      return 1;
    }
    return daemon_policy_set(o, domain, expression, {}, AbeScheme::cp_abe_versioned, out, err);
  }
  if (!attribute) {
    err << "mchainctl: policy v" << version << " of " << domain
        << " is KP-ABE: name the attribute to take away (verifier revoke DOMAIN ATTRIBUTE)\n";
    return 2;
  }
  std::vector<std::string> attributes = p["attributes"].get<std::vector<std::string>>();
  const auto it = std::find(attributes.begin(), attributes.end(), *attribute);
  if (it == attributes.end()) {
    err << "mchainctl: policy v" << version << " of " << domain << " has no attribute "
        << *attribute << " (it has: ";
    for (std::size_t i = 0; i < attributes.size(); ++i) err << (i ? ", " : "") << attributes[i];
    err << ")\n";
    return 1;
  }
  attributes.erase(it);
  return daemon_policy_set(o, domain, expression, attributes, AbeScheme::kp_abe_gpsw, out, err);
}

}  // namespace mchain::agent
