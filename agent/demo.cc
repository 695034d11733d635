#include "agent/demo.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "chain/crypto/keyfile.h"
#include "chain/node/consensus.h"
#include "chain/node/mining.h"
#include "chain/package/records.h"
#include "chain/package/validate.h"
#include "chain/store/verify.h"
#include "measure/file_measure.h"

namespace mchain::agent {

namespace {

using nlohmann::json;

Status write_file(const std::filesystem::path& path, ByteView bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return fail("cannot write " + path.string());
  return {};
}

// Creates a key file (0600) and its public half, then loads the private key back from disk
// so that the demo signs with exactly what a node would find in its state directory.
Result<crypto::PrivateKey> create_key(const std::filesystem::path& dir, const std::string& name) {
  auto key = crypto::PrivateKey::generate(crypto::SigAlg::ecdsa_p256_sha256);
  if (!key) return std::unexpected(key.error());
  const auto path = dir / (name + ".key");
  if (auto written = crypto::write_private_key_file(path, *key); !written) {
    return std::unexpected(written.error());
  }
  if (auto written = crypto::write_public_key_file(dir / (name + ".pub"), key->public_key());
      !written) {
    return std::unexpected(written.error());
  }
  return crypto::read_private_key_file(path);
}

json verdict_json(const ValidationResult& r) {
  return {{"verdict", to_string(r.verdict)}, {"detail", r.detail}};
}

class Narrator {
 public:
  Narrator(std::ostream& out, bool json) : out_(out), json_(json) {}

  void step(const std::string& name, const std::string& text, json details = json::object()) {
    if (json_) {
      details["step"] = name;
      steps_.push_back(std::move(details));
    } else {
      out_ << "* " << text << '\n';
    }
  }
  void finish(bool ok) {
    if (json_) out_ << json{{"ok", ok}, {"steps", steps_}}.dump(2) << '\n';
  }

 private:
  std::ostream& out_;
  bool json_;
  json steps_ = json::array();
};

// Up to `count` regular files in the directory of `file`, other than `file`, by name.
std::vector<std::filesystem::path> neighbour_files(const std::filesystem::path& file,
                                                   std::size_t count) {
  std::vector<std::filesystem::path> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(file.parent_path(), ec)) {
    if (entry.is_regular_file(ec) && !entry.is_symlink(ec) && entry.path() != file) {
      found.push_back(entry.path());
    }
  }
  std::sort(found.begin(), found.end());
  if (found.size() > count) found.resize(count);
  return found;
}

// Step 6: node-1 alone as a cluster, running the real consensus and mining code. Packages go
// in one at a time, each confirmed before the next, because a candidate is validated against
// the confirmed view only (the binding needs the registered user, the policy the binding).
// Every confirmed semi-finished block is then mined on top of the tip.
Status build_chain(const DemoOptions& options, const crypto::PrivateKey& node, TimeUs genesis,
                   const std::vector<Package>& packages, Narrator& say) {
  const std::filesystem::path directory = options.directory / "chain";
  auto opened = Store::open(directory);
  if (!opened) return std::unexpected(opened.error());
  Store& store = **opened;
  if (auto added = store.add_genesis_node("node-1", node.public_key(), genesis); !added) {
    return added;
  }

  // Short windows: the demo's clock below is virtual and moves by whole windows.
  const BufferOptions buffers{.max_data_packages = 100,
                              .max_data_bytes = 1 << 20,
                              .max_policy_packages = 100,
                              .data_window = 1000,
                              .policy_window = 1000};
  LocalTransport transport;
  ConsensusNode consensus(ConsensusConfig{"node-1", &node, {"node-1"}, buffers, 120'000'000}, store,
                          transport);
  std::size_t confirmations = 0;
  consensus.on_confirmed = [&](const SemiFinishedBlock&) { ++confirmations; };
  TimeUs now = now_us();
  transport.attach("node-1", [&](const std::string& from, const Bytes& message) {
    consensus.receive(from, message, now);
  });
  // Setup packages one at a time, each confirmed before the next; then all data packages
  // together, so that they share a block (and their Merkle proofs have real paths).
  auto confirm = [&](std::span<const Package> batch) -> Status {
    for (const Package& package : batch) {
      now = std::max(now, package.header().timestamp);
      if (ValidationResult r = consensus.submit(package, now); !r.ok()) {
        return fail("chain: " + std::string(to_string(package.header().type)) + " package " +
                    to_hex(package.id()).substr(0, 16) +
                    " rejected: " + std::string(to_string(r.verdict)) + ": " + r.detail);
      }
    }
    const std::size_t before = confirmations;
    for (int i = 0; i < 4 && confirmations == before; ++i) {
      now += buffers.data_window + buffers.policy_window;
      consensus.tick(now);
      transport.pump();
    }
    if (confirmations != before + 1) return fail("chain: a block was not confirmed");
    return {};
  };
  const auto first_data = std::find_if(packages.begin(), packages.end(), [](const Package& p) {
    return p.header().type == PackageType::data;
  });
  for (auto it = packages.begin(); it != first_data; ++it) {
    if (Status s = confirm(std::span(&*it, 1)); !s) return s;
  }
  if (first_data != packages.end()) {
    if (Status s = confirm(std::span(&*first_data, packages.end() - first_data)); !s) return s;
  }

  pow::Miner miner(0);
  const std::atomic<bool> stop{false};
  const MiningConfig mining{.data_diff = options.difficulty,
                            .policy_diff = options.difficulty,
                            .slice = {0, 0, UINT64_MAX}};
  while (!store.mining_queue().empty()) {
    auto mined = mine_next(store, miner, mining, now_us(), stop);
    if (!mined) return std::unexpected(mined.error());
    if (!*mined) return fail("chain: mining found no nonce");
    if (auto appended = store.append(**mined); !appended) {
      return std::unexpected(appended.error());
    }
  }

  auto report = verify_chain(store);
  if (!report) return std::unexpected(report.error());
  if (!report->ok() || !report->tip) {
    return fail("chain: the new chain does not verify: " +
                (report->first_broken ? report->first_broken->describe() : "no tip"));
  }
  const ChainTip& tip = *report->tip;
  const std::string verified = "ok: " + std::to_string(report->blocks_checked) + " blocks, " +
                               std::to_string(report->packages_checked) +
                               " packages verified up to height " + std::to_string(tip.height);
  say.step("chain",
           "chain: " + std::to_string(tip.height + 1) + " blocks, tip " + to_hex(tip.hash) +
               " at height " + std::to_string(tip.height) + " (difficulty " +
               std::to_string(options.difficulty) + ", store " + directory.string() + ")",
           {{"store", directory.string()},
            {"blocks", tip.height + 1},
            {"height", tip.height},
            {"tip", to_hex(tip.hash)},
            {"difficulty", options.difficulty},
            {"packages", report->packages_checked}});
  say.step("verify", "mchainctl chain verify --store " + directory.string() + " says: " + verified,
           {{"ok", true}, {"result", verified}});
  return {};
}

}  // namespace

Status run_demo(const DemoOptions& options, std::ostream& out) {
  Narrator say(out, options.json);
  std::error_code ec;
  // An earlier run's chain holds other keys and the same registrations: never mix or delete.
  if (std::filesystem::exists(options.directory / "chain", ec)) {
    return fail(
        (options.directory / "chain").string() +
        " already exists (a chain from an earlier run?): remove it or choose another --dir");
  }
  std::filesystem::create_directories(options.directory, ec);
  if (ec) return fail("cannot create " + options.directory.string() + ": " + ec.message());

  // 1. Identities: node, user and VM keys, as files.
  auto node = create_key(options.directory, "node-1");
  if (!node) return std::unexpected(node.error());
  auto user = create_key(options.directory, "alice");
  if (!user) return std::unexpected(user.error());
  auto vm_key = create_key(options.directory, "vm");
  if (!vm_key) return std::unexpected(vm_key.error());
  say.step("keys",
           "created ECDSA P-256 keys for node-1, user alice and the VM in " +
               options.directory.string() + " (private keys mode 0600)",
           {{"directory", options.directory.string()}});

  // 2. The replicated view they are checked against: node-1 is a genesis member; the user
  //    registration, the VM's binding and its policy go in as validated packages.
  const TimeUs t0 = now_us();
  const TimeUs genesis = t0 - 10;
  const Uuid vm = Uuid::random();
  const PackageSigners all{&*vm_key, &*user, &*node};
  MemoryView view;
  view.add_node("node-1", node->public_key(), genesis);
  PolicyRecord policy{vm, 1, AbeScheme::kp_abe_gpsw, {"tenant:alice", "auditor"}, "auditor"};
  std::vector<Result<Package>> setup;
  setup.push_back(make_membership_package(
      {Uuid{}, "alice", "node-1", t0 - 3},
      MembershipRecord{MembershipAction::register_user, "alice", user->public_key()},
      {nullptr, &*user, &*node}));
  setup.push_back(make_binding_package({vm, "alice", "node-1", t0 - 2}, PolicyRef{},
                                       BindingEvent::started, vm_key->public_key(), all));
  setup.push_back(make_policy_package({vm, "alice", "node-1", t0 - 1}, policy, all));
  for (auto& package : setup) {
    if (!package) return std::unexpected(package.error());
    ValidationResult r = validate(*package, view);
    if (!r.ok()) {
      return fail("setup package rejected: " + std::string(to_string(r.verdict)) + ": " + r.detail);
    }
    if (auto applied = view.apply(*package); !applied) return std::unexpected(applied.error());
    say.step(std::string(to_string(package->header().type)),
             "accepted " + std::string(to_string(package->header().type)) + " package " +
                 to_hex(package->id()).substr(0, 16),
             {{"id", to_hex(package->id())}});
  }
  say.step("vm", "VM " + vm.to_string() + " owned by alice runs on node-1 under policy v1",
           {{"vm", vm.to_string()}, {"policy_hash", to_hex(policy.hash())}});

  // 3. Measure a real file and seal the report into a data package.
  auto measured = measure::measure_file(options.measured_file);
  if (!measured) return std::unexpected(measured.error());
  const std::string report = measure::to_report_text(*measured);
  const crypto::AeadKey data_key = crypto::random_aead_key();
  auto package = make_data_package({vm, "alice", "node-1", now_us()}, policy.ref(), data_key,
                                   as_bytes(report), all);
  if (!package) return std::unexpected(package.error());
  const Bytes encoded = package->encode();
  if (auto w = write_file(options.directory / "data.pkg", encoded); !w) return w;
  say.step("measure",
           "measured " + measured->path + " (" + std::to_string(measured->size) +
               " bytes, sha256 " + (measured->sha256 ? to_hex(*measured->sha256) : "-") +
               ") into a " + std::to_string(encoded.size()) + "-byte data package",
           {{"file", measured->path},
            {"package_bytes", encoded.size()},
            {"package", (options.directory / "data.pkg").string()}});

  // 4. Validate it, and read it back with K_uv.
  ValidationResult accepted = validate_encoded(encoded, view);
  say.step("validate", "validation: " + std::string(to_string(accepted.verdict)),
           verdict_json(accepted));
  if (!accepted.ok()) {
    say.finish(false);
    return fail("the valid package was rejected: " + accepted.detail);
  }
  auto opened = open_data_package(*package, data_key);
  if (!opened || std::string(opened->begin(), opened->end()) != report) {
    say.finish(false);
    return fail("the data package did not decrypt to the report");
  }
  say.step("decrypt", "decrypted with K_uv: the report reads back intact");

  // 5. Flip one byte and show the rejection.
  std::size_t offset = options.flip_offset.value_or(encoded.size() / 2);
  if (offset >= encoded.size()) {
    return fail("flip offset " + std::to_string(offset) + " is beyond the package's " +
                std::to_string(encoded.size()) + " bytes");
  }
  Bytes tampered = encoded;
  tampered[offset] ^= 0x01;
  if (auto w = write_file(options.directory / "data-tampered.pkg", tampered); !w) return w;
  ValidationResult rejected = validate_encoded(tampered, view);
  json details = verdict_json(rejected);
  details["offset"] = offset;
  say.step("tamper",
           "flipped byte " + std::to_string(offset) + ": " +
               (rejected.ok() ? std::string("ACCEPTED (this is a bug)")
                              : "rejected, " + std::string(to_string(rejected.verdict)) + ": " +
                                    rejected.detail),
           details);
  if (rejected.ok()) {
    say.finish(false);
    return fail("a tampered package was accepted");
  }

  // 6. The same packages, valid, on a one-host chain, with a few more measurements: the
  //    regular files beside the measured one, so that the data block holds several packages.
  std::vector<Package> on_chain;
  for (auto& p : setup) on_chain.push_back(*p);
  on_chain.push_back(*package);
  for (const auto& neighbour : neighbour_files(options.measured_file, 7)) {
    auto m = measure::measure_file(neighbour);
    if (!m) continue;  // unreadable: the demo measures what it can
    auto extra = make_data_package({vm, "alice", "node-1", now_us()}, policy.ref(), data_key,
                                   as_bytes(measure::to_report_text(*m)), all);
    if (!extra) return std::unexpected(extra.error());
    on_chain.push_back(*std::move(extra));
  }
  if (auto built = build_chain(options, *node, genesis, on_chain, say); !built) {
    say.finish(false);
    return built;
  }
  say.finish(true);
  return {};
}

}  // namespace mchain::agent
