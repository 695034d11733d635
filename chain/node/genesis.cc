#include "chain/node/genesis.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "chain/crypto/hash.h"
#include "chain/file_io.h"

namespace mchain {

namespace {

using Json = nlohmann::ordered_json;

constexpr std::size_t kMaxGenesisBytes = 1 << 20;
constexpr std::size_t kMaxNodes = 1024;
constexpr unsigned kMaxDifficulty = 64;

// Thrown inside this file only, with the JSON path of the offending member.
struct GenesisError {
  std::string path;
  std::string reason;
};

[[noreturn]] void bad(std::string path, std::string reason) {
  throw GenesisError{std::move(path), std::move(reason)};
}

const Json& member(const Json& object, const std::string& path, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) bad(path, std::string("missing member \"") + key + "\"");
  return *it;
}

void only_members(const Json& object, const std::string& path,
                  std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      bad(path.empty() ? key : path + "." + key, "unknown member");
    }
  }
}

std::string text(const Json& value, const std::string& path) {
  if (!value.is_string()) bad(path, "expected a string");
  return value.get<std::string>();
}

std::pair<std::string, std::uint16_t> parse_address(const std::string& address,
                                                    const std::string& path) {
  auto parsed = parse_host_port(address);
  if (!parsed) bad(path, parsed.error().message);
  return *std::move(parsed);
}

Genesis parse(const Json& root) {
  if (!root.is_object()) bad("", "the genesis file must be a JSON object");
  only_members(root, "", {"chain", "time", "difficulty", "nodes"});
  Genesis g;
  g.chain = text(member(root, "chain", "chain"), "chain");
  if (g.chain.empty() || !valid_id(g.chain)) bad("chain", "1-64 characters of [A-Za-z0-9._:@-]");
  const Json& time = member(root, "time", "time");
  auto t = parse_time(text(time, "time"));
  if (!t) bad("time", t.error().message);
  g.time = *t;
  const Json& difficulty = member(root, "difficulty", "difficulty");
  if (!difficulty.is_number_unsigned() || difficulty.get<std::uint64_t>() < 1 ||
      difficulty.get<std::uint64_t>() > kMaxDifficulty) {
    bad("difficulty", "an integer from 1 to " + std::to_string(kMaxDifficulty));
  }
  g.difficulty = static_cast<std::uint8_t>(difficulty.get<std::uint64_t>());
  const Json& nodes = member(root, "nodes", "nodes");
  if (!nodes.is_array() || nodes.empty() || nodes.size() > kMaxNodes) {
    bad("nodes", "an array of 1 to " + std::to_string(kMaxNodes) + " nodes");
  }
  std::set<std::string> ids, addresses;
  std::set<Bytes> keys;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const std::string path = "nodes[" + std::to_string(i) + "]";
    const Json& entry = nodes[i];
    if (!entry.is_object()) bad(path, "expected an object");
    only_members(entry, path, {"id", "address", "key"});
    std::string id = text(member(entry, path + ".id", "id"), path + ".id");
    if (!valid_id(id)) bad(path + ".id", "1-64 characters of [A-Za-z0-9._:@-]");
    if (!ids.insert(id).second) bad(path + ".id", "\"" + id + "\" is listed twice");
    const std::string address =
        text(member(entry, path + ".address", "address"), path + ".address");
    auto [host, port] = parse_address(address, path + ".address");
    auto key = parse_key_text(text(member(entry, path + ".key", "key"), path + ".key"));
    if (!key) bad(path + ".key", key.error().message);
    GenesisNode node{std::move(id), std::move(host), port, std::move(*key)};
    if (!addresses.insert(address_text(node)).second) bad(path + ".address", "listed twice");
    if (!keys.insert(node.key.raw()).second) bad(path + ".key", "the same key as another node");
    g.nodes.push_back(std::move(node));
  }
  return g;
}

}  // namespace

Result<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view address) {
  std::string host;
  std::string_view port_text;
  if (address.starts_with('[')) {
    const auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return fail("expected \"[IPv6]:port\"");
    }
    host = address.substr(1, close - 1);
    port_text = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos || address.find(':') != colon) {
      return fail("expected \"host:port\" (IPv6 in brackets)");
    }
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
  }
  if (host.empty()) return fail("empty host");
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return fail("port must be 1..65535");
  }
  return std::pair{host, static_cast<std::uint16_t>(port)};
}

std::string address_text(const GenesisNode& n) {
  const bool v6 = n.host.find(':') != std::string::npos;
  return (v6 ? "[" + n.host + "]" : n.host) + ":" + std::to_string(n.port);
}

std::string key_text(const crypto::PublicKey& key) {
  return std::string(crypto::to_string(key.alg())) + ":" + to_hex(key.raw());
}

Result<crypto::PublicKey> parse_key_text(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return fail("expected \"<algorithm>:<hex public key>\"");
  auto alg = crypto::sig_alg_from_string(text.substr(0, colon));
  if (!alg) return fail("unknown algorithm \"" + std::string(text.substr(0, colon)) + "\"");
  auto raw = from_hex(text.substr(colon + 1));
  if (!raw) return fail("the key is not hex");
  return crypto::PublicKey::from_raw(*alg, *raw);
}

Hash256 Genesis::hash() const { return crypto::sha256(as_bytes(to_json())); }

std::string Genesis::to_json() const {
  Json nodes_json = Json::array();
  for (const GenesisNode& n : nodes) {
    nodes_json.push_back({{"id", n.id}, {"address", address_text(n)}, {"key", key_text(n.key)}});
  }
  Json root = {{"chain", chain},
               {"time", format_time(time)},
               {"difficulty", difficulty},
               {"nodes", std::move(nodes_json)}};
  return root.dump(2) + "\n";
}

Result<Genesis> parse_genesis(std::string_view json_text, std::string_view file_name) {
  const std::string where(file_name);
  Json root = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return fail(where + ": not valid JSON");
  try {
    return parse(root);
  } catch (const GenesisError& e) {
    return fail(where + ": " + (e.path.empty() ? "" : e.path + ": ") + e.reason);
  }
}

Result<Genesis> load_genesis(const std::filesystem::path& file) {
  auto content = read_small_file(file, kMaxGenesisBytes, "genesis file");
  if (!content) return std::unexpected(content.error());
  return parse_genesis(*content, file.string());
}

}  // namespace mchain
