// mchaind and mchainctl as a user runs them: real processes, real files.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "chain/block/block.h"
#include "chain/block/merkle.h"
#include "chain/package/package.h"
#include "temp_dir.h"
#include "tests/chain/store_tamper.h"

namespace {

namespace fs = std::filesystem;

struct Outcome {
  int status;
  std::string out;  // stdout and stderr together
};

Outcome run(const std::string& command) {
  std::string full = command + " 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    out.append(buffer.data(), n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

const std::string kCtl = std::string(MCHAIN_BINARY_DIR) + "/agent/mchainctl";
const std::string kDaemon = std::string(MCHAIN_BINARY_DIR) + "/agent/mchaind";

class Cli : public ::testing::Test {
 protected:
  mchain::testing::TempDir tmp_{"mchain-cli"};
  const fs::path dir_ = tmp_.path();
};

TEST_F(Cli, VersionAndHelp) {
  for (const auto& binary : {kCtl, kDaemon}) {
    Outcome version = run(binary + " --version");
    EXPECT_EQ(version.status, 0);
    EXPECT_NE(version.out.find("0.1.0"), std::string::npos) << version.out;
    Outcome help = run(binary + " --help");
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.out.find("usage:"), std::string::npos) << help.out;
  }
  Outcome unknown = run(kCtl + " frobnicate");
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.out.find("unknown command 'frobnicate'"), std::string::npos);
  EXPECT_EQ(run(kDaemon + " --bogus").status, 2);
}

// The bash completion (packaging/) offers every command `mchainctl --help` lists.
TEST_F(Cli, BashCompletionOffersEveryCommandTheHelpLists) {
  const std::string completion =
      std::string(MCHAIN_TEST_FIXTURES) + "/../../packaging/bash-completion/mchainctl";
  ASSERT_TRUE(fs::exists(completion)) << completion;
  const Outcome offered = run("bash -c 'source " + completion +
                              "; COMP_WORDS=(mchainctl \"\"); COMP_CWORD=1; _mchainctl; "
                              "printf \"%s\\n\" \"${COMPREPLY[@]}\"'");
  ASSERT_EQ(offered.status, 0) << offered.out;
  const Outcome help = run(kCtl + " --help");
  std::set<std::string> listed;
  std::istringstream lines(help.out);
  for (std::string line; std::getline(lines, line);) {
    // "  status [--json] ...": a command at the start of an indented line.
    if (line.size() > 2 && line.starts_with("  ") &&
        std::islower(static_cast<unsigned char>(line[2]))) {
      listed.insert(line.substr(2, line.find(' ', 2) - 2));
    }
  }
  ASSERT_GE(listed.size(), 10u) << help.out;
  for (const std::string& command : listed) {
    EXPECT_NE(offered.out.find(command + "\n"), std::string::npos) << "not completed: " << command;
  }
}

TEST_F(Cli, DemoAcceptsTheValidPackageAndRejectsTheFlippedOne) {
  Outcome demo = run(kCtl + " demo --json --dir " + dir_.string());
  ASSERT_EQ(demo.status, 0) << demo.out;
  auto report = nlohmann::json::parse(demo.out);
  EXPECT_TRUE(report["ok"].get<bool>());
  std::map<std::string, nlohmann::json> steps;
  for (const auto& step : report["steps"]) steps[step["step"]] = step;
  EXPECT_EQ(steps["validate"]["verdict"], "ok");
  EXPECT_NE(steps["tamper"]["verdict"], "ok");
  EXPECT_FALSE(steps["tamper"]["detail"].get<std::string>().empty());
  // Keys on disk, private halves readable by the owner only.
  for (const char* name : {"node-1", "alice", "vm"}) {
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / (std::string(name) + ".key")).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
  }
  Outcome show = run(kCtl + " package show --json " + (dir_ / "data.pkg").string());
  ASSERT_EQ(show.status, 0) << show.out;
  auto shown = nlohmann::json::parse(show.out);
  EXPECT_EQ(shown["type"], "data");
  EXPECT_EQ(shown["user"], "alice");
  EXPECT_EQ(shown["signatures"]["node"]["alg"], "ecdsa-p256-sha256");
}

TEST_F(Cli, DemoFlipsAnyChosenByte) {
  // Every offset of the structure, the header, the body and the signatures: always rejected.
  for (int offset : {0, 5, 40, 150, 300, 420}) {
    Outcome demo = run(kCtl + " demo --json --flip " + std::to_string(offset) + " --dir " +
                       (dir_ / std::to_string(offset)).string());
    ASSERT_EQ(demo.status, 0) << "offset " << offset << ": " << demo.out;
  }
  Outcome beyond = run(kCtl + " demo --flip 100000 --dir " + (dir_ / "beyond").string());
  EXPECT_EQ(beyond.status, 1);
  EXPECT_NE(beyond.out.find("beyond the package"), std::string::npos) << beyond.out;
  EXPECT_EQ(run(kCtl + " demo --flip 12x").status, 2);
}

TEST_F(Cli, DemoReportsAMissingFile) {
  Outcome demo = run(kCtl + " demo --file /nonexistent/file --dir " + dir_.string());
  EXPECT_EQ(demo.status, 1);
  EXPECT_NE(demo.out.find("cannot stat /nonexistent/file"), std::string::npos) << demo.out;
}

TEST_F(Cli, KeyGenerateWritesAPrivateKeyOnlyTheOwnerReads) {
  fs::path key = dir_ / "node.key";
  Outcome gen = run(kCtl + " key generate --alg ed25519 --out " + key.string());
  ASSERT_EQ(gen.status, 0) << gen.out;
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(fs::exists(dir_ / "node.key.pub"));
  EXPECT_EQ(run(kCtl + " key generate --alg rsa --out " + key.string()).status, 2);
  EXPECT_EQ(run(kCtl + " key generate").status, 2);
}

TEST_F(Cli, PackageShowRejectsGarbage) {
  fs::path file = dir_ / "garbage.pkg";
  std::ofstream(file) << "not a package";
  Outcome show = run(kCtl + " package show " + file.string());
  EXPECT_EQ(show.status, 1);
  EXPECT_NE(show.out.find("malformed package"), std::string::npos) << show.out;
  EXPECT_EQ(run(kCtl + " package show " + (dir_ / "missing").string()).status, 1);
}

// The demo's chain as the chain commands see it. Runs the demo in `dir` and returns its steps.
// The demo measures a file and its neighbours: three files of our own, so that the counts
// below do not depend on this machine's /etc.
std::map<std::string, nlohmann::json> run_demo(const fs::path& dir) {
  fs::create_directories(dir / "etc");
  for (const char* name : {"group", "hosts", "passwd"}) {
    std::ofstream(dir / "etc" / name) << name << " content\n";
  }
  Outcome demo = run(kCtl + " demo --json --file " + (dir / "etc" / "passwd").string() + " --dir " +
                     dir.string());
  EXPECT_EQ(demo.status, 0) << demo.out;
  std::map<std::string, nlohmann::json> steps;
  if (demo.status != 0) return steps;
  const auto report = nlohmann::json::parse(demo.out);  // outlives the loop over its steps
  for (const auto& step : report["steps"]) steps[step["step"]] = step;
  return steps;
}

mchain::Hash256 hash_of(const std::string& hex) {
  auto bytes = mchain::from_hex(hex);
  mchain::Hash256 out{};
  EXPECT_TRUE(bytes && bytes->size() == 32) << hex;
  if (bytes && bytes->size() == 32) std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

TEST_F(Cli, ChainCommandsShowTheDemoChain) {
  auto steps = run_demo(dir_);
  ASSERT_TRUE(steps.contains("chain"));
  const std::string store = " --store " + (dir_ / "chain").string();
  const auto blocks = steps["chain"]["blocks"].get<std::uint64_t>();
  const auto tip_hash = steps["chain"]["tip"].get<std::string>();
  EXPECT_EQ(blocks, 4u);  // register user, binding, policy; then the three reports in one

  Outcome tip = run(kCtl + " chain tip --json" + store);
  ASSERT_EQ(tip.status, 0) << tip.out;
  auto t = nlohmann::json::parse(tip.out);
  EXPECT_EQ(t["tip"]["height"].get<std::uint64_t>(), blocks - 1);
  EXPECT_EQ(t["tip"]["hash"], tip_hash);
  EXPECT_EQ(t["mining_queue"], 0);
  EXPECT_EQ(t["confirmed"], blocks);
  EXPECT_EQ(run(kCtl + " chain tip" + store).status, 0);

  Outcome first = run(kCtl + " chain show 0 --json" + store);
  ASSERT_EQ(first.status, 0) << first.out;
  auto b0 = nlohmann::json::parse(first.out);
  EXPECT_EQ(b0["height"], 0);
  EXPECT_EQ(b0["type"], "policy");
  EXPECT_EQ(b0["previous"], std::string(64, '0'));
  ASSERT_EQ(b0["packages"].size(), 1u);
  EXPECT_EQ(b0["packages"][0]["type"], "membership");

  Outcome last = run(kCtl + " chain show " + tip_hash + " --json" + store);
  ASSERT_EQ(last.status, 0) << last.out;
  auto bt = nlohmann::json::parse(last.out);
  EXPECT_EQ(bt["hash"], tip_hash);
  EXPECT_EQ(bt["height"].get<std::uint64_t>(), blocks - 1);
  EXPECT_EQ(bt["leader"], "node-1");
  EXPECT_EQ(bt["marks"], nlohmann::json::array({"node-1"}));
  EXPECT_EQ(bt["packages"][0]["type"], "data");
  Outcome text = run(kCtl + " chain show 1" + store);
  ASSERT_EQ(text.status, 0) << text.out;
  EXPECT_NE(text.out.find("marks: node-1"), std::string::npos) << text.out;

  Outcome verify = run(kCtl + " chain verify" + store);
  EXPECT_EQ(verify.status, 0) << verify.out;
  EXPECT_NE(verify.out.find("ok: 4 blocks, 6 packages verified up to height 3, tip " + tip_hash),
            std::string::npos)
      << verify.out;
}

TEST_F(Cli, HistoryGivesEveryPackageOfTheVmWithAProofThatVerifies) {
  auto steps = run_demo(dir_);
  ASSERT_TRUE(steps.contains("vm"));
  const std::string vm = steps["vm"]["vm"];
  Outcome history = run(kCtl + " history " + vm + " --json --store " + (dir_ / "chain").string());
  ASSERT_EQ(history.status, 0) << history.out;
  auto h = nlohmann::json::parse(history.out);
  EXPECT_EQ(h["vm"], vm);
  // Binding, policy and three reports; the membership has no VM.
  ASSERT_EQ(h["packages"].size(), 5u);
  std::vector<std::string> types;
  std::uint64_t previous_time = 0;
  for (const auto& p : h["packages"]) {
    types.push_back(p["type"]);
    EXPECT_GE(p["timestamp_us"].get<std::uint64_t>(), previous_time);
    previous_time = p["timestamp_us"];
    // Re-check everything a verifier would, from the output alone.
    auto encoded = mchain::from_hex(p["package"].get<std::string>());
    ASSERT_TRUE(encoded);
    auto package = mchain::Package::decode(*encoded);
    ASSERT_TRUE(package) << package.error().message;
    const mchain::Hash256 id = hash_of(p["id"]);
    EXPECT_EQ(package->id(), id);
    EXPECT_EQ(package->header().vm.to_string(), vm);
    auto proof_bytes = mchain::from_hex(p["proof"]["encoded"].get<std::string>());
    ASSERT_TRUE(proof_bytes);
    auto proof = mchain::MerkleProof::decode(*proof_bytes);
    ASSERT_TRUE(proof) << proof.error().message;
    EXPECT_EQ(proof->index, p["proof"]["index"].get<std::uint64_t>());
    EXPECT_EQ(proof->tree_size, p["proof"]["tree_size"].get<std::uint64_t>());
    EXPECT_TRUE(mchain::verify_merkle_proof(id, *proof, hash_of(p["merkle_root"])));
    EXPECT_FALSE(mchain::verify_merkle_proof(hash_of(std::string(64, 'a')), *proof,
                                             hash_of(p["merkle_root"])));
    ASSERT_FALSE(p["block"].is_null());
    // The root is the one in the mined header that `chain show` prints.
    Outcome block = run(kCtl + " chain show " + p["block"]["hash"].get<std::string>() +
                        " --json --store " + (dir_ / "chain").string());
    ASSERT_EQ(block.status, 0) << block.out;
    EXPECT_EQ(nlohmann::json::parse(block.out)["merkle_root"], p["merkle_root"]);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"binding", "policy", "data", "data", "data"}));
  EXPECT_EQ(h["packages"][2]["block"]["height"], 3);
  // Three reports in one block: their proofs have real paths (two levels for three leaves).
  EXPECT_EQ(h["packages"][4]["proof"]["tree_size"], 3);
  EXPECT_FALSE(h["packages"][4]["proof"]["path"].empty());

  Outcome later = run(kCtl + " history " + vm + " --json --from " +
                      std::to_string(previous_time + 1) + " --store " + (dir_ / "chain").string());
  ASSERT_EQ(later.status, 0) << later.out;
  EXPECT_EQ(nlohmann::json::parse(later.out)["count"], 0);
  EXPECT_EQ(run(kCtl + " history not-a-uuid --store " + (dir_ / "chain").string()).status, 2);
  EXPECT_EQ(run(kCtl + " history " + vm + " --from yesterday").status, 2);
}

// The tamper test: one byte of a stored block changed through LevelDB after the demo
// exited; `chain verify` fails and names the block.
TEST_F(Cli, VerifyNamesABlockWhoseBodyWasAlteredOnDisk) {
  run_demo(dir_);
  const fs::path store = dir_ / "chain";
  auto at = mchain::testing::main_block_at(store, 1);
  ASSERT_TRUE(at) << at.error().message;
  const std::string key = mchain::testing::store_key('S', at->semi_finished);
  auto value = mchain::testing::edit_store_entry(store, key);
  ASSERT_TRUE(value) << value.error().message;
  auto body = mchain::SemiFinishedBlock::decode(mchain::as_bytes(*value));
  ASSERT_TRUE(body) << body.error().message;
  // A byte of r in the package's user signature: the body still decodes, its hash changes.
  const auto& signature = body->candidate.packages.at(0).signature(mchain::Role::user)->bytes;
  auto edited = mchain::testing::edit_store_entry(store, key, [&](std::string& bytes) {
    const std::size_t found = mchain::testing::find_bytes(bytes, signature);
    ASSERT_NE(found, std::string::npos);
    bytes[found + 3] = static_cast<char>(bytes[found + 3] ^ 0x40);
  });
  ASSERT_TRUE(edited) << edited.error().message;

  Outcome verify = run(kCtl + " chain verify --store " + store.string());
  EXPECT_EQ(verify.status, 1) << verify.out;
  EXPECT_NE(verify.out.find("broken at height 1 block " + mchain::to_hex(at->block)),
            std::string::npos)
      << verify.out;
  Outcome json = run(kCtl + " chain verify --json --store " + store.string());
  EXPECT_EQ(json.status, 1);
  auto j = nlohmann::json::parse(json.out);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_EQ(j["first_broken"]["height"], 1);
  EXPECT_EQ(j["first_broken"]["hash"], mchain::to_hex(at->block));
  EXPECT_EQ(j["blocks_checked"], 1);
}

TEST_F(Cli, VerifyNamesABlockWhoseHeaderWasAlteredOnDisk) {
  run_demo(dir_);
  const fs::path store = dir_ / "chain";
  auto at = mchain::testing::main_block_at(store, 1);
  ASSERT_TRUE(at) << at.error().message;
  // Header byte 130, inside nonce_lo: the hash no longer meets the difficulty or the key.
  auto edited = mchain::testing::edit_store_entry(
      store, mchain::testing::store_key('B', at->block),
      [](std::string& bytes) { bytes[130] = static_cast<char>(bytes[130] ^ 0x01); });
  ASSERT_TRUE(edited) << edited.error().message;
  Outcome verify = run(kCtl + " chain verify --store " + store.string());
  EXPECT_EQ(verify.status, 1) << verify.out;
  EXPECT_NE(verify.out.find("broken at height 1 block " + mchain::to_hex(at->block)),
            std::string::npos)
      << verify.out;
  EXPECT_NE(verify.out.find("header altered"), std::string::npos) << verify.out;
}

TEST_F(Cli, ChainCommandsReportWhatIsWrong) {
  Outcome missing = run(kCtl + " chain tip --store " + (dir_ / "missing").string());
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.out.find("does not exist"), std::string::npos) << missing.out;
  EXPECT_FALSE(fs::exists(dir_ / "missing"));  // read-only commands create nothing
  EXPECT_EQ(run(kCtl + " chain verify --store " + (dir_ / "missing").string()).status, 1);
  std::ofstream(dir_ / "notes.txt") << "not a store";
  Outcome foreign = run(kCtl + " chain verify --store " + dir_.string());
  EXPECT_EQ(foreign.status, 1);
  EXPECT_NE(foreign.out.find("not a store"), std::string::npos) << foreign.out;

  run_demo(dir_ / "demo");
  const std::string store = " --store " + (dir_ / "demo" / "chain").string();
  Outcome high = run(kCtl + " chain show 99" + store);
  EXPECT_EQ(high.status, 1);
  EXPECT_NE(high.out.find("no main-chain block at height 99 (the tip is at height 3)"),
            std::string::npos)
      << high.out;
  Outcome unknown = run(kCtl + " chain show " + std::string(64, 'a') + store);
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.out.find("is not stored"), std::string::npos) << unknown.out;
  EXPECT_EQ(run(kCtl + " chain show 12x" + store).status, 2);
  EXPECT_EQ(run(kCtl + " chain show" + store).status, 2);
  EXPECT_EQ(run(kCtl + " chain frobnicate" + store).status, 2);
  EXPECT_EQ(run(kCtl + " chain" + store).status, 2);
  EXPECT_EQ(run(kCtl + " chain tip --bogus" + store).status, 2);
  EXPECT_EQ(run(kCtl + " chain tip --from 1" + store).status, 2);

  // LevelDB admits one process at a time: a daemon holding the store gets a clear message.
  leveldb::DB* raw = nullptr;
  ASSERT_TRUE(leveldb::DB::Open(leveldb::Options(), (dir_ / "demo" / "chain").string(), &raw).ok());
  std::unique_ptr<leveldb::DB> holder(raw);
  Outcome locked = run(kCtl + " chain tip" + store);
  EXPECT_EQ(locked.status, 1);
  EXPECT_NE(locked.out.find("locked by another process"), std::string::npos) << locked.out;
}

TEST_F(Cli, DemoRefusesToReuseAnEarlierChain) {
  run_demo(dir_);
  Outcome again = run(kCtl + " demo --dir " + dir_.string());
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.out.find("already exists"), std::string::npos) << again.out;
  EXPECT_EQ(run(kCtl + " demo --diff 0 --dir " + (dir_ / "x").string()).status, 2);
  Outcome easy = run(kCtl + " demo --json --diff 4 --dir " + (dir_ / "easy").string());
  ASSERT_EQ(easy.status, 0) << easy.out;
}

}  // namespace

namespace {

TEST_F(Cli, GenesisCreateThenShowGiveTheSameHash) {
  for (const char* name : {"n1", "n2"}) {
    ASSERT_EQ(run(kCtl + " key generate --out " + (dir_ / name).string() + ".key").status, 0);
  }
  const std::string file = (dir_ / "genesis.json").string();
  Outcome created =
      run(kCtl + " genesis create --out " + file + " --chain test-1 --time 2026-11-22T00:00:00Z" +
          " --node n1,127.0.0.1:7401," + (dir_ / "n1.key.pub").string() + " --node n2,[::1]:7402," +
          (dir_ / "n2.key.pub").string());
  ASSERT_EQ(created.status, 0) << created.out;
  const auto hash_at = created.out.find("hash ");
  ASSERT_NE(hash_at, std::string::npos);
  const std::string hash = created.out.substr(hash_at + 5, 64);
  Outcome shown = run(kCtl + " genesis show " + file);
  ASSERT_EQ(shown.status, 0) << shown.out;
  EXPECT_NE(shown.out.find("hash: " + hash), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("node n2 at [::1]:7402"), std::string::npos) << shown.out;

  // The same checks as every node makes: a duplicate address is refused, with its path.
  Outcome duplicate = run(kCtl + " genesis create --out " + (dir_ / "g2.json").string() +
                          " --chain c --node n1,h:1," + (dir_ / "n1.key.pub").string() +
                          " --node n2,h:1," + (dir_ / "n2.key.pub").string());
  EXPECT_EQ(duplicate.status, 1);
  EXPECT_NE(duplicate.out.find("nodes[1].address: listed twice"), std::string::npos)
      << duplicate.out;
  EXPECT_FALSE(fs::exists(dir_ / "g2.json"));
}

}  // namespace
