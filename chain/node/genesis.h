// The genesis file: the cluster's first members, where to reach them and the keys they prove
// themselves with. Every node starts from the same file; its hash names the cluster, so that
// nodes of different clusters never mistake each other's messages.
//
//   {
//     "chain": "acme-cloud-1",
//     "time": "2026-11-22T00:00:00Z",
//     "difficulty": 16,
//     "nodes": [
//       {"id": "node-1", "address": "10.0.0.1:7400", "key": "ecdsa-p256-sha256:02ab…"},
//       {"id": "node-2", "address": "[fd00::2]:7400", "key": "ed25519:5f1c…"}
//     ]
//   }
//
// Every member is checked; an unknown member, a duplicate id, key or address, or a bad value
// is refused with its JSON path ("nodes[1].key: …").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chain/crypto/sign.h"
#include "chain/error.h"
#include "chain/types.h"

namespace mchain {

struct GenesisNode {
  std::string id;
  std::string host;  // a name or an IP address (IPv6 without brackets)
  std::uint16_t port = 0;
  crypto::PublicKey key;
};
// "host:port", with an IPv6 host in brackets.
std::string address_text(const GenesisNode& node);

struct Genesis {
  std::string chain;  // a name for people; the hash is what identifies the cluster
  TimeUs time = 0;    // from when the genesis nodes are members
  std::uint8_t difficulty = 0;
  std::vector<GenesisNode> nodes;

  // SHA-256 of the canonical JSON text (to_json()).
  Hash256 hash() const;
  // Canonical JSON: members in the order above, nodes as given, two-space indent.
  std::string to_json() const;
};

// "host:port", or "[IPv6]:port": the host (IPv6 without brackets) and a port in 1..65535.
Result<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view address);

// A node's key as the genesis file writes it: "<alg>:<hex of the raw public key>".
std::string key_text(const crypto::PublicKey& key);
Result<crypto::PublicKey> parse_key_text(std::string_view text);

Result<Genesis> parse_genesis(std::string_view json_text, std::string_view file_name = "genesis");
// Reads and parses a genesis file (at most 1 MiB).
Result<Genesis> load_genesis(const std::filesystem::path& file);

}  // namespace mchain
