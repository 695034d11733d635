// mchainctl's read-only commands on a chain store: chain tip, chain show, chain verify and
// history. Each opens the store without creating it — or, in mchaind answering them over its
// control socket, reads the daemon's open store — and returns the process exit code:
// 0 success, 1 a failure (no store, unknown block, a chain that does not verify), after
// printing the result to `out` and any error to `err`.
#pragma once

#include <filesystem>
#include <functional>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "chain/error.h"
#include "chain/types.h"

namespace mchain {
class Store;
class Package;
}  // namespace mchain

namespace mchain::agent {

inline constexpr std::string_view kDefaultStore = "/var/lib/mchain/chain";

struct ChainCommandOptions {
  std::filesystem::path store{std::string(kDefaultStore)};
  bool json = false;
  // A store already open (mchaind answering over its socket): used instead of `store`.
  const Store* open = nullptr;
  // history: what a data package's report says, or why it does not open (mchaind, which
  // holds data keys); absent, reports are not opened.
  std::function<nlohmann::json(const Package&)> describe_data;
};

int chain_tip(const ChainCommandOptions& options, std::ostream& out, std::ostream& err);
// `which`: a main-chain height (decimal) or a block hash (64 hex digits).
int chain_show(const ChainCommandOptions& options, const std::string& which, std::ostream& out,
               std::ostream& err);
int chain_verify(const ChainCommandOptions& options, std::ostream& out, std::ostream& err);
// The VM's confirmed packages with from <= timestamp < to, each with its Merkle inclusion
// proof, verified before it is printed, and with describe_data, what each report says.
int vm_history(const ChainCommandOptions& options, const Uuid& vm, TimeUs from, TimeUs to,
               std::ostream& out, std::ostream& err);

}  // namespace mchain::agent
