// mchainctl: the operator's and verifier's command-line tool.
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/access_commands.h"
#include "agent/chain_commands.h"
#include "agent/daemon_commands.h"
#include "agent/demo.h"
#include "agent/hook_command.h"
#include "agent/measure_command.h"
#include "agent/version.h"
#include "chain/crypto/keyfile.h"
#include "chain/file_io.h"
#include "chain/node/genesis.h"
#include "chain/package/records.h"

namespace {

using namespace mchain;
using nlohmann::json;

constexpr int kUsageError = 2;

constexpr std::string_view kHelp = R"(usage: mchainctl [--version] [--help] <command> [<args>]

Commands available in this release:
  demo [--dir DIR] [--file PATH] [--flip OFFSET] [--diff N] [--json]
      Create node, user and VM keys in DIR (default: a new directory under $TMPDIR or
      /tmp), measure PATH (default: /etc/passwd) into a signed, encrypted data package,
      validate it, flip one byte and show why the copy is rejected; then confirm the
      packages on a one-host chain in DIR/chain and mine it at difficulty N (default 12).
  key generate --out PATH [--alg ecdsa-p256-sha256|ed25519]
      Write a new private key to PATH (mode 0600) and its public key to PATH.pub.
  package show FILE [--json]
      Decode a package file and print its header, signatures and id.

On the chain store (read-only): a running mchaind answers them from its own store
(--socket PATH); with --store DIR, or with no daemon running, the store is read directly
(default /var/lib/mchain/chain):
  chain tip [--json]
      The main chain's tip: height, hash, cumulative work, time; the mining queue.
  chain show <height|hash> [--json]
      One mature block: header, leader, round, valid marks and packages.
  chain verify [--json]
      Re-check every block, link, signature and proof of work from height 0 to the tip.
      Exit status 0 if the chain is intact, 1 if not, naming the first broken block.
  history <domain> [--from T] [--to T] [--json]
      The VM's confirmed packages in time order, each with the block that holds it and a
      Merkle inclusion proof (verified before printing); through mchaind, what each
      measurement report says. T: microseconds or ISO 8601 UTC. The domain is a name, UUID
      or id for mchaind; a UUID with --store.

A cluster's genesis file (the first members, their addresses and node keys):
  genesis create --out FILE --chain NAME --node ID,HOST:PORT,KEY.pub [--node …]
                 [--time T] [--difficulty N]
      Write a genesis file (T defaults to now, N to 16). Every node starts from the same
      file; its SHA-256, printed here, names the cluster.
  genesis show FILE [--json]
      Check a genesis file member by member and print its members and hash.

Measuring a guest directly through its qemu-guest-agent (no daemon needed):
  measure (--qga-socket PATH | --domain DOM [--connect URI]) --policy FILE
          [--baseline FILE [--update-baseline]] [--collector auto|bulk|content]
          [--vm NAME] [--timeout SECONDS] [--report-out FILE] [--summary] [--json]
      Measure the files POLICY names inside the guest and print a Tripwire-style report
      (detailed unless --summary; JSON with --json). BASELINE is compared against when it
      exists and recorded from this run when it does not; --update-baseline replaces it
      after a successful run. --report-out writes the report's canonical CBOR (the data
      that goes into a package). The collector is chosen from what the guest allows
      unless given. Exit status: 0 nothing changed, else the sum of 1 added, 2 removed,
      4 changed, 8 error (including bad arguments).

Asking the running mchaind (--socket PATH, default /run/mchain/mchaind.sock; root or the
control group):
  status [--json]            The node, its chain, valid pool, links and what it runs without.
  peers [--json]             Every other member of the genesis file and whether it is linked.
  metrics                    Prometheus text exposition of the node's counters.
  hooks [--json]             The libvirt hook's latest calls, as mchaind recorded them.
  vms [--json]               The domains libvirt has on this host: state, owner, guest agent,
                             and how the chain binds them.
  user add NAME [--json]     Register a user: a key in this host's keystore, and the
                             register-user package, confirmed before it returns.
  measure <domain> [--wait] [--json]
      Measure the domain now. Without --wait, return once it is queued; with it, once its
      report is confirmed on the chain (progress is shown on a terminal).
  baseline <domain> [--json]
      Measure the domain and take the result as its new baseline; later reports compare
      against it.
  report <domain> [<package-id>] [--json]
      A measurement report of the domain from the chain, decrypted with the data keys this
      host holds: the newest, or the one whose package id starts with the given hex digits.
  verify <domain> [--json]
      Re-check the domain's whole history on the chain: every Merkle inclusion proof, and
      that every report opens. Exit status 1 if anything does not hold.
  policy show <domain> [--json]
      The domain's access policy on the chain: version, scheme, attributes, who may read.
  policy set <domain> --expression EXPR [--attribute A]... [--scheme S] [--json]
      Put the next policy version on the chain with a new data key, and the key link that
      lets the new key read the older reports. The attributes and the scheme (kp-gpsw, or
      cp-versioned with EXPR an AND over the CP-ABE universe, e.g. 'member and not
      rank_le_1') stay as they are unless given.
  Domains are named as virsh names them: by name, UUID or id.
  package submit FILE [--wait] [--json]
      Hand a package (its canonical encoding) to the node: validated, buffered and gossiped;
      with --wait, answered once its semi-finished block is durable.

Access control: an ABE authority seals each policy version's data key for verifiers. Under
KP-ABE (kp-gpsw, the default) it is sealed to the VM's attributes and verifier keys hold access
trees; under the versioned CP-ABE (cp-versioned) it is sealed under the policy's expression and
verifier keys hold attribute sets, revoked by re-keying the authority.
  abe setup --dir DIR [--scheme cp-versioned --universe NAMES]
      Create an authority: KP-ABE DIR/abe.mpk (public: set abe.public_key to it on every
      mchaind) and DIR/abe.msk (secret: keep it here; it issues verifier keys); or CP-ABE
      over the comma-separated NAMES: DIR/cpabe.pk (abe.cp_public_key) and DIR/cpabe.mk.
  verifier issue --authority DIR (--policy EXPR | --attributes NAMES) --out FILE
      A verifier key (mode 0600). KP-ABE: reads the versions whose attributes satisfy EXPR,
      e.g. 'owner:alice or (reader:audit and 2 of (tenant:acme, env:prod, zone:eu))'.
      CP-ABE: holds the attributes NAMES, e.g. 'member, rank_le_2'.
  verifier read <domain> --key FILE [--json]
      Fetch the domain's records from mchaind and decrypt here, with the key, every report it
      may read (older versions through the key links); for each refused version, the part
      of the policy not met. Exit 1 if any version was refused.
  verifier revoke <domain> [ATTRIBUTE] [--json]
      KP-ABE: revise the domain's policy without ATTRIBUTE: keys that need it read nothing
      written from the new version on (what they already read stays read). CP-ABE (after
      abe rekey): revise it under the same expression at the new system version.
  abe rekey --authority DIR --revoke FILE
      CP-ABE: raise the system version, re-keying what FILE's key holds; that key opens
      nothing sealed afterwards. Writes DIR/cpabe.vN-vM.rk (secret) and the new keys.
  verifier update --authority DIR --key FILE
      CP-ABE: bring a remaining verifier's key to the authority's current system version.

The libvirt hook (hooks/qemu runs it; libvirt's words follow --):
  hook [--socket PATH] -- DOMAIN OPERATION SUB-OPERATION EXTRA    (domain XML on stdin)
      Hand the event to mchaind within 2 s. Exit 0 (also when mchaind is not reached, which
      is logged), or 1 with the reason on stderr when mchaind enforces and refuses it.

Exit status: 0 success, 1 failure (a refused request, a chain that does not verify, ...),
2 usage error, 3 mchaind not reachable on its control socket. The daemon-less measure (with
--qga-socket, --domain or --policy) has Tripwire's bitmask instead, above.
)";

struct Args {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> options;  // --name value
  std::vector<std::string> flags;                            // --name

  bool flag(std::string_view name) const {
    return std::find(flags.begin(), flags.end(), name) != flags.end();
  }
  std::optional<std::string> option(std::string_view name) const {
    for (const auto& [key, value] : options) {
      if (key == name) return value;
    }
    return std::nullopt;
  }
};

// Options that take a value; everything else starting with -- is a flag.
bool takes_value(std::string_view name) {
  for (std::string_view known :
       {"--dir",       "--file",      "--flip",      "--out",        "--alg",      "--store",
        "--from",      "--to",        "--diff",      "--qga-socket", "--domain",   "--connect",
        "--policy",    "--baseline",  "--collector", "--vm",         "--timeout",  "--report-out",
        "--chain",     "--node",      "--time",      "--difficulty", "--socket",   "--expression",
        "--attribute", "--authority", "--key",       "--scheme",     "--universe", "--attributes",
        "--revoke"}) {
    if (name == known) return true;
  }
  return false;
}

std::optional<Args> parse(int argc, char** argv, int first) {
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.starts_with("--")) {
      if (takes_value(arg)) {
        if (i + 1 >= argc) {
          std::cerr << "mchainctl: " << arg << " needs a value\n";
          return std::nullopt;
        }
        args.options.emplace_back(arg, argv[++i]);
      } else {
        args.flags.push_back(arg);
      }
    } else {
      args.positional.push_back(arg);
    }
  }
  return args;
}

int usage_error(const std::string& message) {
  std::cerr << "mchainctl: " << message << "\nTry 'mchainctl --help'.\n";
  return kUsageError;
}

bool only_known_flags(const Args& args, std::initializer_list<std::string_view> known) {
  for (const auto& f : args.flags) {
    if (std::find(known.begin(), known.end(), f) == known.end()) {
      usage_error("unknown option " + f);
      return false;
    }
  }
  return true;
}

int run_demo(const Args& args) {
  if (!only_known_flags(args, {"--json"})) return kUsageError;
  agent::DemoOptions options;
  options.json = args.flag("--json");
  options.measured_file = args.option("--file").value_or("/etc/passwd");
  if (auto flip = args.option("--flip")) {
    std::size_t offset = 0;
    auto [end, ec] = std::from_chars(flip->data(), flip->data() + flip->size(), offset);
    if (ec != std::errc() || end != flip->data() + flip->size()) {
      return usage_error("--flip needs a byte offset, not '" + *flip + "'");
    }
    options.flip_offset = offset;
  }
  if (auto diff = args.option("--diff")) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(diff->data(), diff->data() + diff->size(), value);
    // Above ~28 one host mines for minutes; the demo is meant to take a second.
    if (ec != std::errc() || end != diff->data() + diff->size() || value < 1 || value > 28) {
      return usage_error("--diff needs a difficulty from 1 to 28, not '" + *diff + "'");
    }
    options.difficulty = static_cast<std::uint8_t>(value);
  }
  // Last, so that a usage error leaves no directory behind.
  if (auto dir = args.option("--dir")) {
    options.directory = *dir;
  } else {
    std::error_code ec;  // $TMPDIR naming no directory is an error, not an exception
    const std::filesystem::path tmp = std::filesystem::temp_directory_path(ec);
    if (ec) {
      std::cerr << "mchainctl: no temporary directory: " << ec.message() << '\n';
      return 1;
    }
    std::string pattern = (tmp / "mchain-demo.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::cerr << "mchainctl: cannot create a temporary directory in " << tmp.string() << '\n';
      return 1;
    }
    options.directory = pattern;
  }
  if (auto result = agent::run_demo(options, std::cout); !result) {
    std::cerr << "mchainctl demo: " << result.error().message << '\n';
    return 1;
  }
  return 0;
}

int run_key_generate(const Args& args) {
  if (!only_known_flags(args, {})) return kUsageError;
  auto out = args.option("--out");
  if (!out) return usage_error("key generate needs --out PATH");
  auto alg = crypto::sig_alg_from_string(args.option("--alg").value_or("ecdsa-p256-sha256"));
  if (!alg) return usage_error("unknown --alg; use ecdsa-p256-sha256 or ed25519");
  auto key = crypto::PrivateKey::generate(*alg);
  if (!key) {
    std::cerr << "mchainctl: " << key.error().message << '\n';
    return 1;
  }
  std::filesystem::path path(*out);
  auto pub_path = path;
  pub_path += ".pub";
  for (const Status& written : {crypto::write_private_key_file(path, *key),
                                crypto::write_public_key_file(pub_path, key->public_key())}) {
    if (!written) {
      std::cerr << "mchainctl: " << written.error().message << '\n';
      return 1;
    }
  }
  std::cout << "wrote " << path.string() << " and " << pub_path.string() << " ("
            << crypto::to_string(*alg) << ", fingerprint "
            << to_hex(key->public_key().fingerprint()).substr(0, 16) << ")\n";
  return 0;
}

int run_package_show(const Args& args) {
  if (!only_known_flags(args, {"--json"})) return kUsageError;
  if (args.positional.size() != 3) return usage_error("package show needs one FILE");
  const std::string& file = args.positional[2];
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << "mchainctl: cannot open " << file << '\n';
    return 1;
  }
  Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto package = Package::decode(bytes);
  if (!package) {
    std::cerr << "mchainctl: " << file << ": malformed package: " << package.error().message
              << '\n';
    return 1;
  }
  const PackageHeader& h = package->header();
  json signatures = json::object();
  for (Role role : {Role::vm, Role::user, Role::node}) {
    const auto& s = package->signature(role);
    signatures[std::string(to_string(role))] =
        s ? json{{"alg", crypto::to_string(s->alg)}, {"bytes", to_hex(s->bytes)}} : json(nullptr);
  }
  json j{{"id", to_hex(package->id())},
         {"type", to_string(h.type)},
         {"vm", h.vm.to_string()},
         {"user", h.user},
         {"node", h.node},
         {"policy_version", h.policy.version},
         {"policy_hash", to_hex(h.policy.hash)},
         {"timestamp_us", h.timestamp},
         {"body_bytes", package->body().size()},
         {"signatures", signatures}};
  if (args.flag("--json")) {
    std::cout << j.dump(2) << '\n';
    return 0;
  }
  for (const char* key : {"id", "type", "vm", "user", "node", "policy_version", "policy_hash",
                          "timestamp_us", "body_bytes"}) {
    std::cout << key << ": " << (j[key].is_string() ? j[key].get<std::string>() : j[key].dump())
              << '\n';
  }
  for (const auto& [role, s] : signatures.items()) {
    std::cout << "signature." << role << ": "
              << (s.is_null() ? std::string("absent") : s["alg"].get<std::string>()) << '\n';
  }
  return 0;
}

agent::ChainCommandOptions chain_options(const Args& args) {
  agent::ChainCommandOptions options;
  if (auto store = args.option("--store")) options.store = *store;
  options.json = args.flag("--json");
  return options;
}

// Without --store, a running mchaind answers from its own store (LevelDB admits one process);
// with no daemon on the socket, the default store is read directly.
int chain_command(const Args& args, const std::vector<std::string>& daemon_args,
                  const std::function<int(const agent::ChainCommandOptions&)>& local) {
  if (!args.option("--store")) {
    agent::DaemonCommandOptions d;
    if (auto socket = args.option("--socket")) d.socket = *socket;
    d.json = args.flag("--json");
    if (auto answered = agent::daemon_chain(d, daemon_args, std::cout, std::cerr)) return *answered;
  }
  return local(chain_options(args));
}

// chain tip | chain show <height|hash> | chain verify
int run_chain(const Args& args) {
  if (!only_known_flags(args, {"--json"})) return kUsageError;
  for (const auto& [name, value] : args.options) {
    if (name != "--store" && name != "--socket") {
      return usage_error(name + " does not apply to chain commands");
    }
  }
  const auto& words = args.positional;
  if (words.size() < 2) return usage_error("chain needs a subcommand: tip, show or verify");
  if (words[1] == "tip" && words.size() == 2) {
    return chain_command(args, {"tip"}, [](const agent::ChainCommandOptions& o) {
      return agent::chain_tip(o, std::cout, std::cerr);
    });
  }
  if (words[1] == "verify" && words.size() == 2) {
    return chain_command(args, {"verify"}, [](const agent::ChainCommandOptions& o) {
      return agent::chain_verify(o, std::cout, std::cerr);
    });
  }
  if (words[1] == "show") {
    if (words.size() != 3) return usage_error("chain show needs one height or block hash");
    return chain_command(args, {"show", words[2]}, [&](const agent::ChainCommandOptions& o) {
      return agent::chain_show(o, words[2], std::cout, std::cerr);
    });
  }
  return usage_error("unknown chain command '" + words[1] + "'");
}

int run_history(const Args& args) {
  if (!only_known_flags(args, {"--json"})) return kUsageError;
  if (args.positional.size() != 2) return usage_error("history needs one domain");
  // A domain name or id means something to the daemon only; a store read directly knows UUIDs.
  const std::string& domain = args.positional[1];
  auto vm = Uuid::parse(domain);
  if (!vm && args.option("--store")) {
    return usage_error("with --store, history needs the VM's UUID, not '" + domain + "'");
  }
  TimeUs from = 0, to = UINT64_MAX;
  for (const auto& [name, value] : args.options) {
    if (name == "--store" || name == "--socket") continue;
    if (name != "--from" && name != "--to") {
      return usage_error(name + " does not apply to history");
    }
    auto t = parse_time(value);
    if (!t) return usage_error(name + ": " + t.error().message);
    (name == "--from" ? from : to) = *t;
  }
  return chain_command(args, {"history", domain, std::to_string(from), std::to_string(to)},
                       [&](const agent::ChainCommandOptions& o) {
                         if (!vm) {
                           std::cerr << "mchainctl: mchaind is not running: name the VM by its "
                                        "UUID to read the store directly\n";
                           return 1;
                         }
                         return agent::vm_history(o, *vm, from, to, std::cout, std::cerr);
                       });
}

// genesis create | genesis show FILE
int run_genesis(const Args& args) {
  const auto& words = args.positional;
  if (words.size() >= 2 && words[1] == "show") {
    if (!only_known_flags(args, {"--json"})) return kUsageError;
    if (words.size() != 3 || !args.options.empty())
      return usage_error("genesis show needs one FILE");
    auto genesis = load_genesis(words[2]);
    if (!genesis) {
      std::cerr << "mchainctl: " << genesis.error().message << '\n';
      return 1;
    }
    if (args.flag("--json")) {
      std::cout << genesis->to_json();
      return 0;
    }
    std::cout << "chain: " << genesis->chain << "\nhash: " << to_hex(genesis->hash())
              << "\ntime: " << format_time(genesis->time)
              << "\ndifficulty: " << unsigned{genesis->difficulty} << '\n';
    for (const GenesisNode& node : genesis->nodes) {
      std::cout << "node " << node.id << " at " << address_text(node) << ", key "
                << to_hex(node.key.fingerprint()).substr(0, 16) << " ("
                << crypto::to_string(node.key.alg()) << ")\n";
    }
    return 0;
  }
  if (words.size() != 2 || words[1] != "create") {
    return usage_error("genesis needs a subcommand: create or show");
  }
  if (!only_known_flags(args, {})) return kUsageError;
  // Built as JSON text and parsed back, so that create checks exactly what nodes will check.
  nlohmann::ordered_json doc = {{"chain", ""},
                                {"time", format_time(now_us())},
                                {"difficulty", 16},
                                {"nodes", nlohmann::ordered_json::array()}};
  std::optional<std::string> out;
  for (const auto& [name, value] : args.options) {
    if (name == "--out") {
      out = value;
    } else if (name == "--chain") {
      doc["chain"] = value;
    } else if (name == "--time") {
      auto t = parse_time(value);
      if (!t) return usage_error("--time: " + t.error().message);
      doc["time"] = format_time(*t);
    } else if (name == "--difficulty") {
      unsigned d = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), d);
      if (ec != std::errc() || end != value.data() + value.size()) {
        return usage_error("--difficulty needs a number, not '" + value + "'");
      }
      doc["difficulty"] = d;
    } else if (name == "--node") {
      // ID,HOST:PORT,KEYFILE
      const auto first = value.find(',');
      const auto last = value.rfind(',');
      if (first == std::string::npos || first == last) {
        return usage_error("--node needs ID,HOST:PORT,KEY.pub, not '" + value + "'");
      }
      auto key = crypto::read_public_key_file(value.substr(last + 1));
      if (!key) {
        std::cerr << "mchainctl: " << key.error().message << '\n';
        return 1;
      }
      doc["nodes"].push_back({{"id", value.substr(0, first)},
                              {"address", value.substr(first + 1, last - first - 1)},
                              {"key", key_text(*key)}});
    } else {
      return usage_error(name + " does not apply to genesis create");
    }
  }
  if (!out) return usage_error("genesis create needs --out FILE");
  auto genesis = parse_genesis(doc.dump(), "genesis");
  if (!genesis) {
    std::cerr << "mchainctl: " << genesis.error().message << '\n';
    return 1;
  }
  if (auto written = write_file_atomically(*out, genesis->to_json(), 0644, "genesis"); !written) {
    std::cerr << "mchainctl: " << written.error().message << '\n';
    return 1;
  }
  std::cout << "wrote " << *out << ": chain " << genesis->chain << ", " << genesis->nodes.size()
            << " nodes, hash " << to_hex(genesis->hash()) << '\n';
  return 0;
}

int run_measure(const Args& args) {
  // measure's exit status is Tripwire's bitmask, so a usage problem is its "error" bit.
  auto usage = [](const std::string& message) {
    usage_error(message);
    return agent::kMeasureError;
  };
  if (!only_known_flags(args, {"--json", "--update-baseline", "--summary"})) {
    return agent::kMeasureError;
  }
  if (args.positional.size() != 1) return usage("measure takes no positional arguments");
  agent::MeasureCommandOptions o;
  for (const auto& [name, value] : args.options) {
    if (name == "--qga-socket") {
      o.qga_socket = value;
    } else if (name == "--domain") {
      o.domain = value;
    } else if (name == "--connect") {
      o.libvirt_uri = value;
    } else if (name == "--policy") {
      o.policy = value;
    } else if (name == "--baseline") {
      o.baseline = value;
    } else if (name == "--report-out") {
      o.report_out = value;
    } else if (name == "--vm") {
      o.measure.vm = value;
    } else if (name == "--collector") {
      if (value == "auto") {
        o.measure.collector = measure::CollectorChoice::kAuto;
      } else if (value == "bulk") {
        o.measure.collector = measure::CollectorChoice::kBulk;
      } else if (value == "content") {
        o.measure.collector = measure::CollectorChoice::kContent;
      } else {
        return usage("--collector is auto, bulk or content, not '" + value + "'");
      }
    } else if (name == "--timeout") {
      unsigned seconds = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
      if (ec != std::errc() || end != value.data() + value.size() || seconds == 0 ||
          seconds > 3600) {
        return usage("--timeout needs seconds from 1 to 3600, not '" + value + "'");
      }
      o.command_timeout = std::chrono::seconds(seconds);
    } else {
      return usage(name + " does not apply to measure");
    }
  }
  if (o.qga_socket.has_value() == o.domain.has_value()) {
    return usage("measure needs exactly one of --qga-socket PATH and --domain DOM");
  }
  if (o.policy.empty()) return usage("measure needs --policy FILE");
  if (args.flag("--update-baseline") && !o.baseline) {
    return usage("--update-baseline needs --baseline FILE");
  }
  o.update_baseline = args.flag("--update-baseline");
  o.json = args.flag("--json");
  o.level = args.flag("--summary") ? measure::ReportLevel::kSummary : measure::ReportLevel::kDetail;
  if (o.measure.vm.empty()) o.measure.vm = o.domain ? *o.domain : o.qga_socket->string();
  return agent::run_measure(o, std::cout, std::cerr);
}

agent::DaemonCommandOptions daemon_options(const Args& args) {
  agent::DaemonCommandOptions o;
  if (auto socket = args.option("--socket")) o.socket = *socket;
  o.json = args.flag("--json");
  return o;
}

bool only_socket_option(const Args& args, const std::string& command) {
  for (const auto& [name, value] : args.options) {
    if (name != "--socket") {
      usage_error(name + " does not apply to " + command);
      return false;
    }
  }
  return true;
}

// measure DOM [--wait] | baseline DOM | report DOM [ID] | verify DOM | policy show|set DOM
int run_vm_command(const Args& args) {
  const auto& words = args.positional;
  const std::string& command = words[0];
  const agent::DaemonCommandOptions o = daemon_options(args);
  if (command == "measure") {
    if (!only_known_flags(args, {"--json", "--wait"}) || !only_socket_option(args, "measure"))
      return kUsageError;
    if (words.size() != 2) return usage_error("measure needs one domain");
    return agent::daemon_measure(o, words[1], args.flag("--wait"), false, std::cout, std::cerr);
  }
  if (command == "baseline") {
    if (!only_known_flags(args, {"--json"}) || !only_socket_option(args, "baseline"))
      return kUsageError;
    if (words.size() != 2) return usage_error("baseline needs one domain");
    return agent::daemon_measure(o, words[1], true, true, std::cout, std::cerr);
  }
  if (command == "report") {
    if (!only_known_flags(args, {"--json"}) || !only_socket_option(args, "report"))
      return kUsageError;
    if (words.size() != 2 && words.size() != 3)
      return usage_error("report needs a domain and optionally a package id");
    return agent::daemon_report(o, words[1], words.size() == 3 ? words[2] : "", std::cout,
                                std::cerr);
  }
  if (command == "verify") {
    if (!only_known_flags(args, {"--json"}) || !only_socket_option(args, "verify"))
      return kUsageError;
    if (words.size() != 2) return usage_error("verify needs one domain");
    return agent::daemon_verify(o, words[1], std::cout, std::cerr);
  }
  // policy show DOM | policy set DOM --expression EXPR [--attribute A]...
  if (words.size() != 3 || (words[1] != "show" && words[1] != "set")) {
    return usage_error(
        "policy show DOMAIN | policy set DOMAIN --expression EXPR [--attribute A]... "
        "[--scheme S]");
  }
  if (!only_known_flags(args, {"--json"})) return kUsageError;
  if (words[1] == "show") {
    if (!only_socket_option(args, "policy show")) return kUsageError;
    return agent::daemon_policy_show(o, words[2], std::cout, std::cerr);
  }
  std::optional<std::string> expression;
  std::vector<std::string> attributes;
  std::optional<AbeScheme> scheme;
  for (const auto& [name, value] : args.options) {
    if (name == "--expression") {
      expression = value;
    } else if (name == "--attribute") {
      attributes.push_back(value);
    } else if (name == "--scheme") {
      scheme = abe_scheme_from_string(value);
      if (!scheme) return usage_error("--scheme is kp-gpsw or cp-versioned");
    } else if (name != "--socket") {
      return usage_error(name + " does not apply to policy set");
    }
  }
  if (!expression) return usage_error("policy set needs --expression EXPR");
  return agent::daemon_policy_set(o, words[2], *expression, attributes, scheme, std::cout,
                                  std::cerr);
}

// abe setup|rekey | verifier issue|update|read|revoke (agent/access_commands.h).
int run_access(const Args& args) {
  const auto& words = args.positional;
  const std::string what = words[0] + (words.size() > 1 ? " " + words[1] : "");
  auto only_options = [&](std::initializer_list<std::string_view> allowed) {
    for (const auto& [name, value] : args.options) {
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        usage_error(name + " does not apply to " + what);
        return false;
      }
    }
    return true;
  };
  if (what == "abe setup") {
    if (!only_known_flags(args, {}) || !only_options({"--dir", "--scheme", "--universe"}))
      return kUsageError;
    auto dir = args.option("--dir");
    auto scheme = args.option("--scheme");
    auto universe = args.option("--universe");
    constexpr std::string_view usage =
        "abe setup --dir DIR [--scheme kp-gpsw | --scheme cp-versioned --universe NAMES]";
    if (!dir || words.size() != 2) return usage_error(std::string(usage));
    const auto kind = scheme ? abe_scheme_from_string(*scheme) : AbeScheme::kp_abe_gpsw;
    if (!kind) return usage_error("--scheme is kp-gpsw or cp-versioned");
    if (*kind == AbeScheme::cp_abe_versioned) {
      if (!universe) return usage_error("a cp-versioned authority needs --universe NAMES");
      return agent::abe_setup_cp(*dir, *universe, std::cout, std::cerr);
    }
    if (universe) return usage_error("--universe is for --scheme cp-versioned");
    return agent::abe_setup(*dir, std::cout, std::cerr);
  }
  if (what == "abe rekey") {
    if (!only_known_flags(args, {}) || !only_options({"--authority", "--revoke"}))
      return kUsageError;
    auto authority = args.option("--authority");
    auto revoke = args.option("--revoke");
    if (!authority || !revoke || words.size() != 2) {
      return usage_error("abe rekey --authority DIR --revoke FILE");
    }
    return agent::abe_rekey(*authority, *revoke, std::cout, std::cerr);
  }
  if (what == "verifier issue") {
    if (!only_known_flags(args, {}) ||
        !only_options({"--authority", "--policy", "--attributes", "--out"}))
      return kUsageError;
    auto authority = args.option("--authority");
    auto policy = args.option("--policy");
    auto attributes = args.option("--attributes");
    auto out = args.option("--out");
    if (!authority || policy.has_value() == attributes.has_value() || !out || words.size() != 2) {
      return usage_error(
          "verifier issue --authority DIR (--policy EXPR | --attributes NAMES) --out FILE");
    }
    if (attributes)
      return agent::verifier_issue_cp(*authority, *attributes, *out, std::cout, std::cerr);
    return agent::verifier_issue(*authority, *policy, *out, std::cout, std::cerr);
  }
  if (what == "verifier update") {
    if (!only_known_flags(args, {}) || !only_options({"--authority", "--key"})) return kUsageError;
    auto authority = args.option("--authority");
    auto key = args.option("--key");
    if (!authority || !key || words.size() != 2) {
      return usage_error("verifier update --authority DIR --key FILE");
    }
    return agent::verifier_update(*authority, *key, std::cout, std::cerr);
  }
  agent::DaemonCommandOptions o;
  if (auto socket = args.option("--socket")) o.socket = *socket;
  o.json = args.flag("--json");
  if (what == "verifier read") {
    if (!only_known_flags(args, {"--json"}) || !only_options({"--key", "--socket"}))
      return kUsageError;
    auto key = args.option("--key");
    if (!key || words.size() != 3) return usage_error("verifier read DOMAIN --key FILE");
    return agent::verifier_read(o, words[2], *key, std::cout, std::cerr);
  }
  if (what == "verifier revoke") {
    if (!only_known_flags(args, {"--json"}) || !only_options({"--socket"})) return kUsageError;
    if (words.size() != 3 && words.size() != 4) {
      return usage_error("verifier revoke DOMAIN [ATTRIBUTE]");
    }
    const std::optional<std::string> attribute =
        words.size() == 4 ? std::optional<std::string>(words[3]) : std::nullopt;
    return agent::verifier_revoke(o, words[2], attribute, std::cout, std::cerr);
  }
  return usage_error("unknown command '" + what + "'");
}

int run_daemon_command(const Args& args) {
  const auto& words = args.positional;
  const bool submit = words[0] == "package";
  if (words[0] == "user") {
    if (!only_known_flags(args, {"--json"})) return kUsageError;
    if (words.size() != 3) return usage_error("user add needs one NAME");
    agent::DaemonCommandOptions o;
    if (auto socket = args.option("--socket")) o.socket = *socket;
    o.json = args.flag("--json");
    return agent::daemon_user_add(o, words[2], std::cout, std::cerr);
  }
  if (!only_known_flags(args, submit ? std::initializer_list<std::string_view>{"--json", "--wait"}
                                     : std::initializer_list<std::string_view>{"--json"})) {
    return kUsageError;
  }
  agent::DaemonCommandOptions o;
  if (auto socket = args.option("--socket")) o.socket = *socket;
  o.json = args.flag("--json");
  if (submit) {
    if (words.size() != 3) return usage_error("package submit needs one FILE");
    return agent::daemon_submit(o, words[2], args.flag("--wait"), std::cout, std::cerr);
  }
  if (words.size() != 1) return usage_error(words[0] + " takes no arguments");
  if (words[0] == "status") return agent::daemon_status(o, std::cout, std::cerr);
  if (words[0] == "peers") return agent::daemon_peers(o, std::cout, std::cerr);
  if (words[0] == "hooks") return agent::daemon_hooks(o, std::cout, std::cerr);
  if (words[0] == "vms") return agent::daemon_vms(o, std::cout, std::cerr);
  return agent::daemon_metrics(o, std::cout, std::cerr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kHelp;
    return kUsageError;
  }
  std::string_view command = argv[1];
  if (command == "--version") {
    std::cout << "mchainctl " << agent::version() << '\n';
    return 0;
  }
  if (command == "--help" || command == "help") {
    std::cout << kHelp;
    return 0;
  }
  if (command == "hook") {
    // As libvirt calls it (through hooks/qemu): [--socket PATH] [--] DOMAIN OP SUB EXTRA. The
    // words are libvirt's and may start with dashes, so they are not parsed as options.
    std::filesystem::path socket{std::string(agent::kDefaultControlSocket)};
    int i = 2;
    if (i + 1 < argc && std::string_view(argv[i]) == "--socket") {
      socket = argv[i + 1];
      i += 2;
    }
    if (i < argc && std::string_view(argv[i]) == "--") ++i;
    return agent::run_hook(socket, std::vector<std::string>(argv + i, argv + argc), std::cin,
                           std::cerr);
  }
  auto args = parse(argc, argv, 1);
  if (!args) return kUsageError;
  const auto& words = args->positional;
  if (words.empty()) return usage_error("no command given");
  if (words[0] == "demo" && words.size() == 1) return run_demo(*args);
  if (words[0] == "key" && words.size() == 2 && words[1] == "generate") {
    return run_key_generate(*args);
  }
  if (words[0] == "package" && words.size() >= 2 && words[1] == "show") {
    return run_package_show(*args);
  }
  if (words[0] == "user" && words.size() >= 2 && words[1] == "add")
    return run_daemon_command(*args);
  if (words[0] == "status" || words[0] == "peers" || words[0] == "metrics" || words[0] == "hooks" ||
      words[0] == "vms" || (words[0] == "package" && words.size() >= 2 && words[1] == "submit")) {
    return run_daemon_command(*args);
  }
  if (words[0] == "chain") return run_chain(*args);
  if (words[0] == "history") return run_history(*args);
  if (words[0] == "measure") {
    // With a way to reach the guest given here, mchainctl measures it itself.
    if (args->option("--qga-socket") || args->option("--domain") || args->option("--policy")) {
      return run_measure(*args);
    }
    return run_vm_command(*args);
  }
  if (words[0] == "baseline" || words[0] == "report" || words[0] == "verify" ||
      words[0] == "policy") {
    return run_vm_command(*args);
  }
  if (words[0] == "genesis") return run_genesis(*args);
  if (words[0] == "abe" || words[0] == "verifier") return run_access(*args);
  return usage_error("unknown command '" + std::string(command) + "'");
}
