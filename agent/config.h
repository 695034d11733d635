// mchaind's configuration file (default /etc/mchain/mchaind.json). Every key is checked: an
// unknown key or a bad value is refused with its JSON path ("consensus.round_timeout_ms:
// expected an integer in [100, 600000]"), so a typo never silently falls back to a default.
//
//   {
//     "node": {
//       "id": "node-1",
//       "key": "/var/lib/mchain/node.key",       // the node's private key file (mode 0600)
//       "genesis": "/etc/mchain/genesis.json",
//       "listen": "0.0.0.0",                     // optional; default: the genesis address
//       "join": "10.0.0.9:7400"                  // optional: a node not in the genesis file
//     },
//     "state_dir": "/var/lib/mchain",            // chain store and keys live below it
//     "control": {"socket": "/run/mchain/mchaind.sock", "group": "mchain"},
//     "libvirt": {"uri": "qemu:///system"},      // or null: run without libvirt
//     "tpm": null,                               // or {"device": "/dev/tpmrm0"}
//     "abe": null,                               // or {"public_key": "/etc/mchain/abe.mpk",
//                                                //     "cp_public_key": "/etc/mchain/cpabe.pk"}:
//                                                // seal each data key for verifiers
//     "consensus": {"round_timeout_ms": 2000, "silence_ms": 3000, "window_ms": 50,
//                   "mode": "concurrent", "verify_threads": 0},
//     "mining": {"threads": 1},
//     "alarm_command": ["/usr/local/sbin/page-admin", "--mchain"],
//     "hook": {"enforce": false},                // refuse starts and migrations it can't bind
//     "drain_timeout_ms": 10000,                 // SIGTERM: how long in-flight rounds may take
//     "measurement": {
//       "policy": "/etc/mchain/measure.pol",     // the Tripwire-style policy every VM is measured by
//       "interval_s": 3600,                      // scheduled measurement of each VM; 0: none
//       "retry_s": 30,                           // first retry of a guest agent that did not answer
//       "command_timeout_ms": 10000,             // one guest-agent command
//       "workers": 2                             // VMs measured at once
//     }
//   }
//
// Only "node.id", "node.key" and "node.genesis" are required.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chain/error.h"
#include "chain/node/consensus.h"

namespace mchain::agent {

inline constexpr std::string_view kDefaultConfigPath = "/etc/mchain/mchaind.json";

struct DaemonConfig {
  std::string node_id;
  std::filesystem::path key_file;
  std::filesystem::path genesis_file;
  std::string listen_host;  // empty: the genesis file's host
  std::optional<std::pair<std::string, std::uint16_t>> join_at;

  std::filesystem::path state_dir = "/var/lib/mchain";
  std::filesystem::path control_socket = "/run/mchain/mchaind.sock";
  std::string control_group;  // empty: root (and mchaind's own user) only

  std::optional<std::string> libvirt_uri = "qemu:///system";  // nullopt: no libvirt
  std::optional<std::filesystem::path> tpm_device;            // nullopt: no TPM
  // The cluster ABE authority's KP-ABE public key (`mchainctl abe setup`); nullopt: data keys
  // stay in the keystore only and no verifier can read reports.
  std::optional<std::filesystem::path> abe_public_key;
  // The versioned CP-ABE authority's public key (`mchainctl abe setup --scheme cp-versioned`),
  // read again at each sealing: `mchainctl abe rekey` applies without a restart. nullopt: no VM
  // can have a CP-ABE policy.
  std::optional<std::filesystem::path> abe_cp_public_key;

  TimeUs round_timeout = 2'000'000;
  TimeUs silence = 3'000'000;
  TimeUs window = 50'000;
  ValidationMode mode = ValidationMode::concurrent;
  unsigned verify_threads = 0;
  unsigned miner_threads = 1;
  std::vector<std::string> alarm_command;
  bool enforce_hooks = false;
  TimeUs drain_timeout = 10'000'000;

  std::filesystem::path measure_policy = "/etc/mchain/measure.pol";
  std::chrono::seconds measure_interval{3600};
  std::chrono::seconds measure_retry{30};
  std::chrono::milliseconds measure_command_timeout{10'000};
  unsigned measure_workers = 2;

  std::filesystem::path store_dir() const { return state_dir / "chain"; }
};

// Parses the JSON text of a configuration; `file_name` prefixes error messages.
Result<DaemonConfig> parse_config(std::string_view json_text, std::string_view file_name);
// Reads (at most 1 MiB) and parses a configuration file.
Result<DaemonConfig> load_config(const std::filesystem::path& file);

}  // namespace mchain::agent
