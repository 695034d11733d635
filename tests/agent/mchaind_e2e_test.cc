// mchaind with a real libvirt daemon and a real guest (tests/guest: TCG, qemu-ga inside): three
// daemons form the cluster, node-1 follows a private libvirtd whose qemu hook hands its calls
// to node-1. The guest is defined and started: its binding goes on the chain, its agent
// connects and is measured (the baseline); a file changed inside it shows up in the next
// report; the history's proofs verify and every report opens, also after a policy revision
// has moved the VM to a new data key. Then live migration for real: two private libvirtd in
// two network namespaces, node-1 and node-3 following one each; `virsh migrate --live` moves
// the guest, its key and binding follow, and the source's signature no longer counts; a
// migration cut off midway leaves everything with the source. Needs root; skips elsewhere.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "agent/domain_metadata.h"
#include "chain/crypto/keyfile.h"
#include "chain/package/records.h"
#include "daemon_fixture.h"
#include "guest/libvirt_host.h"
#include "netns.h"

namespace mchain::agent {
namespace {

using namespace mchain::agent::testing;
using mchain::testing::LibvirtHost;

std::string cannot_run_guests() {
  if (auto why = mchain::testing::libvirt_host_unavailable(); !why.empty()) return why;
  if (!mchain::testing::test_guest_dir()) return "the test guest was not built";
  return "";
}

// The test guest's domain, owned by `owner` through our metadata namespace.
std::string owned_guest_xml(const std::string& name, const std::string& owner,
                            const fs::path& console) {
  std::string xml =
      mchain::testing::test_guest_domain_xml(name, *mchain::testing::test_guest_dir(), console);
  const std::string after = "</name>\n";
  xml.insert(xml.find(after) + after.size(), "  <metadata><mchain:owner xmlns:mchain='" +
                                                 std::string(kMetadataNamespace) + "'>" + owner +
                                                 "</mchain:owner></metadata>\n");
  return xml;
}

class MchaindWithGuest : public Daemons {
 protected:
  std::string socket(std::size_t node) const {
    return " --socket " + daemons_[node]->socket().string();
  }

  // A node's view of the domain in `mchainctl vms --json`, or null.
  Json vm(const std::string& name, std::size_t node = 0) {
    const std::string listed = run(kCtl + " vms --json" + socket(node));
    if (!listed.starts_with("0:")) return nullptr;
    const Json parsed = Json::parse(listed.substr(2));
    for (const Json& v : parsed["vms"]) {
      if (v["name"] == name) return v;
    }
    return nullptr;
  }

  // Waits until node-1 has finished a measurement of `name` after `after` measurements (by
  // its time stamp changing), and returns the VM's entry.
  Json wait_measured(const std::string& name, const std::string& previous_time,
                     std::chrono::seconds within, std::size_t node = 0) {
    Json v;
    for (auto deadline = Clock::now() + within; Clock::now() < deadline;
         std::this_thread::sleep_for(200ms)) {
      v = vm(name, node);
      if (v.is_object() && v["measurement"].is_object() && v["measurement"]["last"].is_object() &&
          v["measurement"]["last"]["time"] != previous_time) {
        return v;
      }
    }
    ADD_FAILURE() << "no measurement of " << name << ": " << v.dump() << '\n'
                  << daemons_[node]->log();
    return v;
  }

  // Polls node's `vms` until `condition` holds for the domain; returns its entry.
  Json wait_vm(const std::string& name, std::size_t node,
               const std::function<bool(const Json&)>& condition, std::chrono::seconds within) {
    Json v;
    for (auto deadline = Clock::now() + within; Clock::now() < deadline;
         std::this_thread::sleep_for(200ms)) {
      v = vm(name, node);
      if (v.is_object() && condition(v)) return v;
    }
    ADD_FAILURE() << name << " on node-" << node + 1 << " never got there: " << v.dump() << '\n'
                  << daemons_[node]->log();
    return v;
  }

  // The hook, as a host installs it, pointed at a node's control socket.
  fs::path hook_for(std::size_t node) {
    const fs::path hook = tmp_.path() / ("hook-" + std::to_string(node));
    std::ofstream(hook) << "#!/bin/sh\nMCHAINCTL=" << kCtl
                        << " MCHAIN_CONTROL_SOCKET=" << daemons_[node]->socket().string()
                        << " exec " << MCHAIN_HOOK_SCRIPT << " \"$@\"\n";
    fs::permissions(hook, fs::perms::owner_all);
    return hook;
  }

  void write_measure_policy() {
    std::ofstream(tmp_.path() / "measure.pol") << "/etc -> $(ReadOnly) (rulename = config);\n"
                                               << "/opt -> $(ReadOnly) (rulename = data);\n";
  }

  std::string socket_;
};

TEST_F(MchaindWithGuest, AGuestIsBoundMeasuredOnConnectAndAChangedFileShowsInItsHistory) {
  if (auto why = cannot_run_guests(); !why.empty()) GTEST_SKIP() << why;
  socket_ = socket(0);
  LibvirtHost::Options options;
  options.hook = hook_for(0);
  auto host = LibvirtHost::start(tmp_.path() / "h1", "h1", options);
  ASSERT_TRUE(host) << host.error();
  write_measure_policy();
  // The cluster's ABE authorities, KP-ABE and the versioned CP-ABE (ranks, as in the sharing
  // paper's experiment): node-1 seals every data key under the one its policy names.
  const fs::path authority = tmp_.path() / "abe";
  ASSERT_TRUE(run(kCtl + " abe setup --dir " + authority.string()).starts_with("0:"));
  ASSERT_TRUE(run(kCtl + " abe setup --scheme cp-versioned --universe member,rank_le_1,rank_le_2" +
                  " --dir " + authority.string())
                  .starts_with("0:"));
  daemons_[0]->write_config(tmp_.path() / "genesis.json", tmp_.path() / "node-1.key", false,
                            {{"uri", host->uri()}}, 3600,
                            {{"public_key", (authority / "abe.mpk").string()},
                             {"cp_public_key", (authority / "cpabe.pk").string()}});
  start_all();
  ASSERT_TRUE(run(kCtl + " user add alice" + socket_).starts_with("0:"));

  const fs::path xml = tmp_.path() / "guest.xml";
  std::ofstream(xml) << owned_guest_xml("guest-1", "alice", tmp_.path() / "console.log");
  auto defined = host->virsh({"define", xml.string()});
  ASSERT_EQ(defined.status, 0) << defined.output;
  auto started = host->virsh({"start", "guest-1"});
  ASSERT_EQ(started.status, 0) << started.output << host->logs();

  // Bound on node-1 for alice, then measured once its agent connects: the baseline.
  Json first = wait_measured("guest-1", "", 180s);
  ASSERT_TRUE(first.is_object() && first["measurement"]["last"].is_object());
  ASSERT_TRUE(first["measurement"]["last"].value("ok", false)) << first.dump();
  EXPECT_EQ(first["measurement"]["last"]["trigger"], "agent-connected") << first.dump();
  const Json& baseline = first["measurement"]["last"]["result"];
  EXPECT_TRUE(baseline["baseline_created"].get<bool>()) << baseline.dump();
  EXPECT_GT(baseline["objects"].get<int>(), 20) << baseline.dump();
  EXPECT_EQ(first["chain"]["host"], "node-1");
  EXPECT_EQ(first["chain"]["owner"], "alice");
  EXPECT_EQ(first["chain"]["policy_version"], 1);

  // The hook's calls for the start were recorded.
  const std::string hooks = run(kCtl + " hooks" + socket_);
  for (const char* call : {"guest-1 prepare begin", "guest-1 start begin", "guest-1 started begin"})
    EXPECT_NE(hooks.find(call), std::string::npos) << call << " missing from\n" << hooks;

  // A file changes inside the guest (through its agent, as an intruder with a shell would).
  auto agent = [&](const std::string& command) {
    auto r = host->virsh({"qemu-agent-command", "guest-1", command});
    EXPECT_EQ(r.status, 0) << command << ": " << r.output;
    return Json::parse(r.output, nullptr, false);
  };
  const Json opened =
      agent(R"({"execute":"guest-file-open","arguments":{"path":"/etc/motd","mode":"a"}})");
  const auto handle = opened["return"].get<std::int64_t>();
  agent(R"({"execute":"guest-file-write","arguments":{"handle":)" + std::to_string(handle) +
        R"(,"buf-b64":"dGFtcGVyZWQK"}})");
  agent(R"({"execute":"guest-file-close","arguments":{"handle":)" + std::to_string(handle) + "}}");

  // Measured on demand, by name: one object changed, confirmed on the chain.
  const std::string measured = run(kCtl + " measure guest-1 --wait" + socket_);
  ASSERT_TRUE(measured.starts_with("0:guest-1: report ")) << measured << daemons_[0]->log();
  EXPECT_NE(measured.find(" 0 added, 0 removed, 1 changed"), std::string::npos) << measured;
  const std::string report = run(kCtl + " report guest-1" + socket_);
  EXPECT_TRUE(report.starts_with("0:Report ")) << report;
  EXPECT_NE(report.find("/etc/motd"), std::string::npos) << report;

  // The history holds the binding, the policy and both reports, each with its proof.
  const std::string history = run(kCtl + " history guest-1" + socket_);
  EXPECT_TRUE(history.starts_with("0:")) << history;
  EXPECT_NE(history.find("report: baseline recorded"), std::string::npos) << history;
  EXPECT_NE(history.find("0 added, 0 removed, 1 changed"), std::string::npos) << history;

  // A new policy version, a new data key and the key link back; a report under it. v2 adds the
  // auditors' attribute.
  const std::string uuid = first["uuid"];
  const std::string revised = run(
      kCtl + " policy set guest-1 --expression 'owner:alice or role:auditor'" +
      " --attribute owner:alice --attribute vm:" + uuid + " --attribute reader:audit" + socket_);
  ASSERT_TRUE(revised.starts_with("0:guest-1: policy v2 in force")) << revised;
  EXPECT_NE(revised.find("key link to v1"), std::string::npos) << revised;
  const std::string shown = run(kCtl + " policy show guest-1" + socket_);
  EXPECT_NE(shown.find("readable by: owner:alice or role:auditor"), std::string::npos) << shown;
  const std::string third = run(kCtl + " measure guest-1 --wait --json" + socket_);
  ASSERT_TRUE(third.starts_with("0:")) << third;
  EXPECT_EQ(Json::parse(third.substr(2))["result"]["policy_version"], 2) << third;

  // Without K(v1) on this host, the reports under v1 still open: through the key link.
  fs::remove(tmp_.path() / "node-1-state" / "keys" / "vms" / (uuid + ".v1.data"));
  const std::string verified = run(kCtl + " verify " + uuid + socket_);
  EXPECT_TRUE(verified.starts_with("0:")) << verified;
  EXPECT_NE(verified.find("3 measurement reports, 3 open"), std::string::npos) << verified;
  EXPECT_NE(verified.find("signatures (leader, marks, packages) checked in the"), std::string::npos)
      << verified;
  EXPECT_NE(verified.find("verified"), std::string::npos) << verified;

  // Verifiers, with keys from the authority, decrypt on their own side: the owner's key and an
  // auditor's, which satisfies v2 and so reads v1 through the key link too.
  const fs::path alice_key = tmp_.path() / "alice.vkey";
  const fs::path audit_key = tmp_.path() / "audit.vkey";
  ASSERT_TRUE(run(kCtl + " verifier issue --authority " + authority.string() +
                  " --policy owner:alice --out " + alice_key.string())
                  .starts_with("0:"));
  ASSERT_TRUE(run(kCtl + " verifier issue --authority " + authority.string() +
                  " --policy 'reader:audit and vm:" + uuid + "' --out " + audit_key.string())
                  .starts_with("0:"));
  const std::string audited =
      run(kCtl + " verifier read guest-1 --key " + audit_key.string() + socket_);
  EXPECT_TRUE(audited.starts_with("0:")) << audited;
  EXPECT_NE(audited.find("baseline recorded"), std::string::npos) << audited;
  EXPECT_NE(audited.find("0 added, 0 removed, 1 changed"), std::string::npos) << audited;

  // Revoked at v3: the auditor keeps v1 and v2, and reads nothing written under v3.
  const std::string revoked = run(kCtl + " verifier revoke guest-1 reader:audit" + socket_);
  ASSERT_TRUE(revoked.starts_with("0:guest-1: policy v3 in force")) << revoked;
  ASSERT_TRUE(run(kCtl + " measure guest-1 --wait" + socket_).starts_with("0:"));
  const std::string after =
      run(kCtl + " verifier read guest-1 --key " + audit_key.string() + " --json" + socket_);
  ASSERT_TRUE(after.starts_with("1:")) << after;
  const Json read = Json::parse(after.substr(2));
  EXPECT_EQ(read["readable_versions"], Json({1, 2})) << read.dump();
  EXPECT_NE(read["denied"]["3"].get<std::string>().find("reader:audit"), std::string::npos)
      << read.dump();
  std::size_t opened_reports = 0;
  for (const Json& r : read["reports"]) opened_reports += r.contains("report") ? 1 : 0;
  EXPECT_EQ(opened_reports, 3u) << read.dump();
  const std::string owner =
      run(kCtl + " verifier read guest-1 --key " + alice_key.string() + socket_);
  EXPECT_TRUE(owner.starts_with("0:")) << owner;
  EXPECT_EQ(owner.find("refused"), std::string::npos) << owner;

  // Under the versioned CP-ABE from v4: members below rank 1 read. rank 2 and rank 3 keys read
  // v4, and through the key links everything before it; a rank-1 key is told what it lacks.
  const std::string misspelt = run(kCtl + " policy set guest-1 --scheme cp-versioned " +
                                   "--expression 'member and not rank_9'" + socket_);
  EXPECT_TRUE(misspelt.starts_with("1:")) << misspelt;
  EXPECT_NE(misspelt.find("position 16: unknown attribute 'rank_9'"), std::string::npos)
      << misspelt;
  const std::string cp_policy =
      run(kCtl + " policy set guest-1 --scheme cp-versioned --expression 'not rank_le_1 and " +
          "member'" + socket_);
  ASSERT_TRUE(cp_policy.starts_with("0:guest-1: policy v4 in force")) << cp_policy;
  EXPECT_NE(cp_policy.find("sealed under member and not rank_le_1 at CP-ABE system version 1"),
            std::string::npos)
      << cp_policy;
  ASSERT_TRUE(run(kCtl + " measure guest-1 --wait" + socket_).starts_with("0:"));
  std::map<std::string, fs::path> ranks;
  for (const auto& [rank, attributes] :
       {std::pair{"1", "member, rank_le_1, rank_le_2"}, std::pair{"2", "member, rank_le_2"},
        std::pair{"3", "member"}}) {
    ranks[rank] = tmp_.path() / ("rank" + std::string(rank) + ".vkey");
    ASSERT_TRUE(run(kCtl + " verifier issue --authority " + authority.string() + " --attributes '" +
                    attributes + "' --out " + ranks[rank].string())
                    .starts_with("0:"));
  }
  auto read_with = [&](const std::string& rank) {
    const std::string r =
        run(kCtl + " verifier read guest-1 --json --key " + ranks[rank].string() + socket_);
    Json out = Json::parse(r.substr(2), nullptr, false);
    out["exit"] = r.substr(0, 1);
    return out;
  };
  auto open_reports = [](const Json& read) {
    std::size_t n = 0;
    for (const Json& r : read["reports"]) n += r.contains("report") ? 1 : 0;
    return n;
  };
  Json rank2 = read_with("2");
  EXPECT_EQ(rank2["exit"], "0") << rank2.dump();
  EXPECT_EQ(rank2["readable_versions"], Json({1, 2, 3, 4})) << rank2.dump();
  EXPECT_EQ(open_reports(rank2), 5u) << rank2.dump();
  const Json rank1 = read_with("1");
  EXPECT_EQ(rank1["exit"], "1") << rank1.dump();
  EXPECT_TRUE(rank1["readable_versions"].empty()) << rank1.dump();
  EXPECT_NE(rank1["denied"]["4"].get<std::string>().find("policy v4 requires not rank_le_1"),
            std::string::npos)
      << rank1.dump();

  // Rank 2 is revoked: the authority re-keys, brings rank 3's key forward, and v5 is sealed
  // under system version 2. Rank 2 keeps v1..v4 and reads nothing of v5.
  const std::string not_yet = run(kCtl + " verifier revoke guest-1" + socket_);
  EXPECT_TRUE(not_yet.starts_with("1:")) << not_yet;
  EXPECT_NE(not_yet.find("revoke the key first"), std::string::npos) << not_yet;
  const std::string rekeyed = run(kCtl + " abe rekey --authority " + authority.string() +
                                  " --revoke " + ranks["2"].string());
  ASSERT_TRUE(rekeyed.starts_with("0:CP-ABE system version 1 -> 2")) << rekeyed;
  ASSERT_TRUE(run(kCtl + " verifier update --authority " + authority.string() + " --key " +
                  ranks["3"].string())
                  .starts_with("0:"));
  EXPECT_TRUE(run(kCtl + " verifier update --authority " + authority.string() + " --key " +
                  ranks["2"].string())
                  .starts_with("1:"));
  const std::string resealed = run(kCtl + " verifier revoke guest-1" + socket_);
  ASSERT_TRUE(resealed.starts_with("0:guest-1: policy v5 in force")) << resealed;
  EXPECT_NE(resealed.find("at CP-ABE system version 2"), std::string::npos) << resealed;
  ASSERT_TRUE(run(kCtl + " measure guest-1 --wait" + socket_).starts_with("0:"));
  rank2 = read_with("2");
  EXPECT_EQ(rank2["exit"], "1") << rank2.dump();
  EXPECT_EQ(rank2["readable_versions"], Json({1, 2, 3, 4})) << rank2.dump();
  EXPECT_EQ(open_reports(rank2), 5u) << rank2.dump();
  EXPECT_NE(rank2["denied"]["5"].get<std::string>().find(
                "sealed under system version 2, this key is at version 1"),
            std::string::npos)
      << rank2.dump();
  const Json rank3 = read_with("3");
  EXPECT_EQ(rank3["exit"], "0") << rank3.dump();
  EXPECT_EQ(rank3["readable_versions"], Json({1, 2, 3, 4, 5})) << rank3.dump();
  EXPECT_EQ(open_reports(rank3), 6u) << rank3.dump();

  // The cloud gives the VM to bob (its metadata changes): node-1 puts the transfer on the chain,
  // signed with bob's key, then a policy for bob; the next report is bob's.
  ASSERT_TRUE(run(kCtl + " user add bob" + socket_).starts_with("0:"));
  auto given = host->virsh({"metadata", "guest-1", std::string(kMetadataNamespace), "--key",
                            "mchain", "--set", "<owner>bob</owner>", "--live", "--config"});
  ASSERT_EQ(given.status, 0) << given.output;
  for (auto deadline = Clock::now() + 60s; Clock::now() < deadline;
       std::this_thread::sleep_for(200ms)) {
    if (run(kCtl + " policy show guest-1" + socket_).find("readable by: owner:bob") !=
        std::string::npos)
      break;
  }
  const Json transferred = vm("guest-1");
  EXPECT_EQ(transferred["chain"]["owner"], "bob") << transferred.dump() << daemons_[0]->log();
  EXPECT_EQ(transferred["binding"]["last"], "transferred") << transferred.dump();
  EXPECT_EQ(transferred["chain"]["policy_version"], 6) << transferred.dump();
  const std::string bobs = run(kCtl + " measure guest-1 --wait --json" + socket_);
  ASSERT_TRUE(bobs.starts_with("0:")) << bobs << daemons_[0]->log();
  EXPECT_EQ(Json::parse(bobs.substr(2))["result"]["policy_version"], 6) << bobs;

  // Destroyed: the binding says it runs nowhere; the three stores hold the same blocks.
  ASSERT_EQ(host->virsh({"destroy", "guest-1"}).status, 0);
  for (auto deadline = Clock::now() + 60s; Clock::now() < deadline;
       std::this_thread::sleep_for(200ms)) {
    if (Json v = vm("guest-1");
        v.is_object() && v["chain"].is_object() && v["chain"]["host"].is_null())
      break;
  }
  EXPECT_TRUE(vm("guest-1")["chain"]["host"].is_null()) << daemons_[0]->log();
  const auto count =
      daemons_[0]->ask({{"command", "status"}})->at("confirmed").get<std::uint64_t>();
  EXPECT_TRUE(confirmed_everywhere(count));
  for (auto& d : daemons_) EXPECT_EQ(d->stop(), 0);
}

TEST_F(MchaindWithGuest, LiveMigrationMovesTheKeyAndBindingAndAFailedOneLeavesThemWithTheSource) {
  if (auto why = cannot_run_guests(); !why.empty()) GTEST_SKIP() << why;
  if (const auto& why = mchain::testing::NetnsLab::unavailable_reason(); !why.empty()) {
    GTEST_SKIP() << why;
  }
  // Two hosts whose libvirtd see each other only through the lab's link; node-1 follows h1,
  // node-3 follows h2, node-2 only validates. (A destination's node key must be P-256 to
  // receive sealed secrets; the test cluster gives node-2 an Ed25519 key.) node-3 measures its
  // VMs every 3 s as well.
  const std::array<std::size_t, 2> follower = {0, 2};
  mchain::testing::NetnsLab lab(2);
  ASSERT_TRUE(lab.ok());
  std::vector<LibvirtHost> hosts;
  for (std::size_t i = 0; i < 2; ++i) {
    LibvirtHost::Options options;
    options.hook = hook_for(follower[i]);
    options.netns = lab.name(i);
    options.cache_dir = tmp_.path() / "libvirt-cache";
    auto host = LibvirtHost::start(tmp_.path() / ("h" + std::to_string(i + 1)),
                                   "h" + std::to_string(i + 1), options);
    ASSERT_TRUE(host) << host.error();
    hosts.push_back(*std::move(host));
  }
  write_measure_policy();
  for (std::size_t i = 0; i < 2; ++i) {
    daemons_[follower[i]]->write_config(
        tmp_.path() / "genesis.json",
        tmp_.path() / ("node-" + std::to_string(follower[i] + 1) + ".key"), false,
        {{"uri", hosts[i].uri()}}, i == 1 ? 3 : 3600);
  }
  start_all();
  // alice's key is on node-1 only: the hand-off brings it to node-3.
  ASSERT_TRUE(run(kCtl + " user add alice" + socket(0)).starts_with("0:"));
  const fs::path xml = tmp_.path() / "guest.xml";
  std::ofstream(xml) << owned_guest_xml("guest-1", "alice", tmp_.path() / "console.log");
  ASSERT_EQ(hosts[0].virsh({"define", xml.string()}).status, 0);
  auto started = hosts[0].virsh({"start", "guest-1"});
  ASSERT_EQ(started.status, 0) << started.output << hosts[0].logs();
  const Json first = wait_measured("guest-1", "", 180s, 0);
  ASSERT_TRUE(first["measurement"]["last"].is_object() && first["measurement"]["last"]["ok"]);
  const std::string uuid = first["uuid"];
  // What node-1 signs with, kept aside to forge a package after the switch.
  const fs::path keys = tmp_.path() / "node-1-state" / "keys";
  auto vm_key = crypto::read_private_key_file(keys / "vms" / (uuid + ".key"));
  auto alice_key = crypto::read_private_key_file(keys / "users" / "alice.key");
  auto node_key = crypto::read_private_key_file(tmp_.path() / "node-1.key");
  ASSERT_TRUE(vm_key && alice_key && node_key);
  auto data_key_text = read_small_file(keys / "vms" / (uuid + ".v1.data"), 64, "data key");
  ASSERT_TRUE(data_key_text && data_key_text->size() == 32);
  crypto::AeadKey data_key{};
  std::copy(data_key_text->begin(), data_key_text->end(), data_key.begin());

  // Live migration, as an operator runs it.
  auto migrated =
      hosts[0].virsh({"migrate", "--live", "--p2p", "--persistent", "--undefinesource", "guest-1",
                      hosts[1].uri(), "--migrateuri", "tcp://" + lab.address(1)},
                     180s);
  ASSERT_EQ(migrated.status, 0) << migrated.output << hosts[0].logs() << hosts[1].logs();

  // node-3 got the secrets, bound it (`migrated`), and measured it against the baseline that
  // came along: nothing changed.
  const Json moved = wait_vm(
      "guest-1", 2,
      [](const Json& v) {
        return v["chain"].is_object() && v["chain"]["host"] == "node-3" &&
               v["measurement"].is_object() && v["measurement"]["last"].is_object() &&
               v["measurement"]["last"]["ok"] == true;
      },
      180s);
  EXPECT_EQ(moved["binding"]["last"], "migrated") << moved.dump();
  EXPECT_EQ(moved["handoff"], "complete: bound here") << moved.dump();
  EXPECT_NE(daemons_[2]->log().find("received from node-1: VM key, alice's key, 1 data keys, "
                                    "the baseline"),
            std::string::npos)
      << daemons_[2]->log();
  const Json& after_move = moved["measurement"]["last"]["result"];
  EXPECT_FALSE(after_move["baseline_created"].get<bool>()) << after_move.dump();
  EXPECT_EQ(after_move["changed"], 0) << after_move.dump();
  EXPECT_TRUE(fs::exists(tmp_.path() / "node-3-state" / "keys" / "users" / "alice.key"));
  // The source, which still held the key while the guest was paused for the switch, never
  // claimed it back; the destination bound it once.
  EXPECT_EQ(daemons_[0]->log().find("migrated on node-1"), std::string::npos) << daemons_[0]->log();
  const std::string node3 = daemons_[2]->log();
  EXPECT_EQ(node3.find("migrated on node-3"), node3.rfind("migrated on node-3")) << node3;
  // node-1 no longer holds the VM's key.
  for (auto deadline = Clock::now() + 30s;
       fs::exists(keys / "vms" / (uuid + ".key")) && Clock::now() < deadline;)
    std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(fs::exists(keys / "vms" / (uuid + ".key"))) << daemons_[0]->log();
  const std::string hooks = run(kCtl + " hooks" + socket(2));
  EXPECT_NE(hooks.find("guest-1 migrate begin"), std::string::npos) << hooks;

  // A report signed by node-1 after the switch: every node refuses it.
  const std::string policy = run(kCtl + " policy show guest-1 --json" + socket(2));
  ASSERT_TRUE(policy.starts_with("0:")) << policy;
  const Json p = Json::parse(policy.substr(2))["policy"];
  PolicyRef ref{p["version"].get<std::uint64_t>(), {}};
  std::copy_n(from_hex(p["hash"].get<std::string>())->begin(), 32, ref.hash.begin());
  auto forged =
      make_data_package({*Uuid::parse(uuid), "alice", "node-1", now_us()}, ref, data_key,
                        as_bytes("all is well"), PackageSigners{&*vm_key, &*alice_key, &*node_key});
  ASSERT_TRUE(forged);
  const fs::path forged_file = tmp_.path() / "forged.pkg";
  ASSERT_TRUE(write_file_atomically(forged_file, as_chars(forged->encode()), 0644, "package"));
  for (std::size_t node : {0u, 1u, 2u}) {
    const std::string refused =
        run(kCtl + " package submit " + forged_file.string() + " --wait" + socket(node));
    EXPECT_TRUE(refused.starts_with("1:")) << refused;
    EXPECT_NE(refused.find("node-not-hosting-vm-at-t"), std::string::npos) << refused;
  }

  // Back to h1, with h1's libvirtd killed once the migration has begun there: it fails, the
  // guest runs on at h2, and the binding stays with node-3, which still measures it.
  std::atomic<bool> done{false};
  LibvirtHost::Result back;
  std::thread migrate_back([&] {
    back = hosts[1].virsh({"migrate", "--live", "--p2p", "--persistent", "--undefinesource",
                           "guest-1", hosts[0].uri(), "--migrateuri", "tcp://" + lab.address(0)},
                          180s);
    done = true;
  });
  for (auto deadline = Clock::now() + 60s; Clock::now() < deadline && !done;
       std::this_thread::sleep_for(20ms)) {
    if (run(kCtl + " hooks" + socket(0)).find("guest-1 migrate begin") != std::string::npos) break;
  }
  ::kill(hosts[0].pid(), SIGKILL);
  migrate_back.join();
  EXPECT_NE(back.status, 0) << "the migration succeeded: " << back.output;
  auto state = hosts[1].virsh({"domstate", "guest-1"});
  EXPECT_NE(state.output.find("running"), std::string::npos) << state.output;
  std::this_thread::sleep_for(2s);  // whatever either side would wrongly submit, it would by now
  const Json stayed = vm("guest-1", 2);
  EXPECT_EQ(stayed["chain"]["host"], "node-3") << stayed.dump();
  const std::string again = run(kCtl + " measure guest-1 --wait" + socket(2));
  EXPECT_TRUE(again.starts_with("0:guest-1: report ")) << again << daemons_[2]->log();
  // Besides the connect and the demand, the schedule measured it on node-3.
  EXPECT_NE(daemons_[2]->log().find("measurement (schedule) confirmed"), std::string::npos)
      << daemons_[2]->log();
  // h1's libvirtd comes back without the guest: node-1 drops what it was handed, if anything.
  hosts[0].stop();
  LibvirtHost::Options options;
  options.hook = hook_for(0);
  options.netns = lab.name(0);
  options.cache_dir = tmp_.path() / "libvirt-cache";
  auto restarted = LibvirtHost::start(tmp_.path() / "h1", "h1", options);
  ASSERT_TRUE(restarted) << restarted.error();
  for (auto deadline = Clock::now() + 30s;
       fs::exists(keys / "vms" / (uuid + ".key")) && Clock::now() < deadline;)
    std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(fs::exists(keys / "vms" / (uuid + ".key"))) << daemons_[0]->log();
  restarted->stop();
  for (auto& h : hosts) h.stop();
  for (auto& d : daemons_) EXPECT_EQ(d->stop(), 0);
}

}  // namespace
}  // namespace mchain::agent
