// mchaind as systemd runs it: three daemons on loopback, each with its config, state
// directory, control socket and a $NOTIFY_SOCKET the test listens on; packages go in through
// the control socket (and mchainctl), SIGTERM drains.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "daemon_fixture.h"

namespace mchain::agent {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using namespace mchain::agent::testing;

TEST_F(Daemons, ThreeDaemonsConfirmWhatTheirControlSocketsAreHanded) {
  start_all();
  // The world's setup through three different daemons: the first through mchainctl.
  auto world = cluster_.world_packages(w_);
  const std::string out =
      run(kCtl + " package submit " + package_file("user", world[0].second).string() +
          " --wait --socket " + daemons_[0]->socket().string());
  EXPECT_TRUE(out.starts_with("0:package ")) << out;
  EXPECT_NE(out.find("confirmed in semi-finished block"), std::string::npos) << out;
  ASSERT_TRUE(confirmed_everywhere(1));
  for (std::size_t i = 1; i < 3; ++i) {
    auto r = daemons_[i]->ask(
        {{"command", "submit"}, {"package", to_hex(world[i].second.encode())}, {"wait", true}},
        60s);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ((*r)["ok"], true) << r->dump();
    EXPECT_EQ((*r)["package"], to_hex(world[i].second.id()));
    ASSERT_TRUE(confirmed_everywhere(i + 1));
  }
  // Handing in a confirmed package again is answered with the block that holds it; one the
  // chain refuses comes back with its verdict.
  auto again =
      daemons_[2]->ask({{"command", "submit"}, {"package", to_hex(world[1].second.encode())}});
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)["ok"], true) << again->dump();
  EXPECT_TRUE(again->contains("semi_finished")) << again->dump();
  Bytes forged = cluster_.report(w_, "forged").encode();
  forged[forged.size() - 3] ^= 0x01;  // inside the last signature: decodes, does not verify
  auto refused = daemons_[2]->ask({{"command", "submit"}, {"package", to_hex(forged)}});
  ASSERT_TRUE(refused);
  EXPECT_EQ((*refused)["ok"], false) << refused->dump();
  EXPECT_NE(refused->value("error", "").find("bad-"), std::string::npos) << refused->dump();

  // What an operator reads.
  const std::string status =
      run(kCtl + " status --json --socket " + daemons_[1]->socket().string());
  ASSERT_TRUE(status.starts_with("0:")) << status;
  const Json s = Json::parse(status.substr(2));
  EXPECT_EQ(s["node"], "node-2");
  EXPECT_EQ(s["confirmed"], 3);
  EXPECT_EQ(s["pool"].size(), 3u);
  EXPECT_TRUE(s["libvirt"].is_null());
  EXPECT_TRUE(s["tpm"].is_null());
  const std::string peers = run(kCtl + " peers --socket " + daemons_[0]->socket().string());
  EXPECT_NE(peers.find("node-2\t127.0.0.1:"), std::string::npos) << peers;
  EXPECT_NE(peers.find("\tlinked"), std::string::npos) << peers;
  const std::string metrics = run(kCtl + " metrics --socket " + daemons_[2]->socket().string());
  EXPECT_NE(metrics.find("mchain_confirmed_blocks 3\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("# TYPE mchain_proposals_total counter"), std::string::npos) << metrics;
  EXPECT_NE(daemons_[0]->log().find("running without libvirt"), std::string::npos);
  EXPECT_NE(daemons_[0]->log().find("running without a TPM"), std::string::npos);
  EXPECT_TRUE(
      run(kCtl + " status --socket " + (tmp_.path() / "nobody.sock").string()).starts_with("3:"));
  // The chain commands, answered by a running daemon from its own (locked) store.
  const std::string on = " --socket " + daemons_[1]->socket().string();
  const std::string tip = run(kCtl + " chain tip --json" + on);
  ASSERT_TRUE(tip.starts_with("0:")) << tip;
  EXPECT_EQ(Json::parse(tip.substr(2))["confirmed"], 3);
  const std::string verified = run(kCtl + " chain verify" + on);
  EXPECT_TRUE(verified.starts_with("0:ok: ")) << verified;
  const std::string history = run(kCtl + " history " + w_.vm.to_string() + " --json" + on);
  ASSERT_TRUE(history.starts_with("0:")) << history;
  EXPECT_NE(history.find("\"binding\""), std::string::npos) << history;
  EXPECT_NE(history.find("\"policy\""), std::string::npos) << history;

  for (auto& d : daemons_) EXPECT_EQ(d->stop(), 0) << d->log();
  for (auto& n : notify_) EXPECT_TRUE(n->wait_for("STOPPING=1", 1s));
}

TEST_F(Daemons, SigtermLetsTheRoundInFlightFinishAndARestartCatchesUp) {
  start_all();
  auto world = cluster_.world_packages(w_);
  for (std::size_t i = 0; i < 3; ++i) {
    auto r = daemons_[0]->ask(
        {{"command", "submit"}, {"package", to_hex(world[i].second.encode())}, {"wait", true}},
        60s);
    ASSERT_TRUE(r && (*r)["ok"] == true) << (r ? r->dump() : r.error().message);
  }
  ASSERT_TRUE(confirmed_everywhere(3));
  // Handed in and stopped at once: the package is buffered, not yet confirmed.
  const Package report = cluster_.report(w_, "submitted just before SIGTERM");
  auto r = daemons_[0]->ask({{"command", "submit"}, {"package", to_hex(report.encode())}});
  ASSERT_TRUE(r && (*r)["ok"] == true) << (r ? r->dump() : r.error().message);
  EXPECT_EQ(daemons_[0]->stop(), 0) << daemons_[0]->log();
  EXPECT_TRUE(notify_[0]->wait_for("STOPPING=1", 1s));
  EXPECT_NE(daemons_[0]->log().find("stopped cleanly after 4 confirmed blocks"), std::string::npos)
      << daemons_[0]->log();
  EXPECT_FALSE(fs::exists(daemons_[0]->socket()));
  // The others have it too, and the restarted daemon is where they are.
  for (std::size_t i = 1; i < 3; ++i) {
    EXPECT_TRUE(daemons_[i]->wait_status([](const Json& s) { return s["confirmed"] == 4; }, 30s));
  }
  ASSERT_TRUE(daemons_[0]->start(*notify_[0]));
  EXPECT_TRUE(daemons_[0]->wait_status(
      [](const Json& s) { return s["confirmed"] == 4 && s["linked"].size() == 2; }, 60s))
      << daemons_[0]->log();
  for (auto& d : daemons_) EXPECT_EQ(d->stop(), 0);
}

TEST_F(Daemons, TheWatchdogIsPingedWhileTheNodeRuns) {
  ASSERT_TRUE(daemons_[0]->start(*notify_[0], std::chrono::microseconds(300'000)));
  EXPECT_TRUE(notify_[0]->wait_for("READY=1", 30s)) << daemons_[0]->log();
  EXPECT_TRUE(notify_[0]->wait_for("WATCHDOG=1", 5s)) << daemons_[0]->log();
  EXPECT_EQ(daemons_[0]->stop(), 0);
}

TEST_F(Daemons, TheHookIsRecordedAndWhereEnforcedAnUnbindableVmIsRefused) {
  daemons_[0]->write_config(tmp_.path() / "genesis.json", tmp_.path() / "node-1.key", true);
  ASSERT_TRUE(daemons_[0]->start(*notify_[0]));
  ASSERT_TRUE(notify_[0]->wait_for("READY=1", 30s)) << daemons_[0]->log();
  const fs::path unowned = tmp_.path() / "unowned.xml";
  const fs::path owned = tmp_.path() / "owned.xml";
  std::ofstream(unowned) << "<domain><name>web-1</name></domain>";
  std::ofstream(owned) << "<domain><name>web-2</name><metadata>"
                          "<mchain:owner xmlns:mchain='http://mchain.invalid/xmlns/libvirt/1'>alice"
                          "</mchain:owner></metadata></domain>";
  const std::string hook = kCtl + " hook --socket " + daemons_[0]->socket().string() + " -- ";
  const std::string refused = run(hook + "web-1 start begin - <" + unowned.string());
  EXPECT_TRUE(refused.starts_with("1:mchain: 'start begin' of web-1 refused: it names no owner"))
      << refused;
  EXPECT_EQ(run(hook + "web-2 start begin - <" + owned.string()), "0:");
  EXPECT_EQ(run(hook + "web-1 stopped end - <" + unowned.string()), "0:");  // not enforced
  const std::string listed = run(kCtl + " hooks --json --socket " + daemons_[0]->socket().string());
  ASSERT_TRUE(listed.starts_with("0:")) << listed;
  const Json events = Json::parse(listed.substr(2));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["allowed"], false);
  EXPECT_EQ(events[1]["owner"], "alice");
  EXPECT_EQ(events[1]["allowed"], true);
  EXPECT_EQ(events[2]["operation"], "stopped");
  EXPECT_NE(daemons_[0]->log().find("hook: web-2 start begin -, owner alice"), std::string::npos);
  EXPECT_EQ(daemons_[0]->stop(), 0);
}

TEST_F(Daemons, ItFollowsTheDomainsLibvirtHas) {
  // libvirt's test driver: one running domain named "test", in this process's memory.
  daemons_[0]->write_config(tmp_.path() / "genesis.json", tmp_.path() / "node-1.key", false,
                            {{"uri", "test:///default"}});
  ASSERT_TRUE(daemons_[0]->start(*notify_[0]));
  ASSERT_TRUE(
      daemons_[0]->wait_status([](const Json& s) { return s["libvirt_connected"] == true; }, 30s))
      << daemons_[0]->log();
  const std::string listed = run(kCtl + " vms --json --socket " + daemons_[0]->socket().string());
  ASSERT_TRUE(listed.starts_with("0:")) << listed;
  const Json vms = Json::parse(listed.substr(2));
  EXPECT_EQ(vms["libvirt"], "test:///default");
  ASSERT_EQ(vms["vms"].size(), 1u) << vms.dump();
  EXPECT_EQ(vms["vms"][0]["name"], "test");
  EXPECT_EQ(vms["vms"][0]["state"], "running");
  EXPECT_EQ(vms["vms"][0]["host"], "node-1");
  const std::string table = run(kCtl + " vms --socket " + daemons_[0]->socket().string());
  EXPECT_NE(table.find(" test "), std::string::npos) << table;
  EXPECT_NE(daemons_[0]->log().find("libvirt: connected to test:///default, 1 domains"),
            std::string::npos)
      << daemons_[0]->log();
  EXPECT_EQ(daemons_[0]->stop(), 0);
}

TEST_F(Daemons, AVmLibvirtRunsHereIsBoundOnTheChainOnceItsOwnerIsRegistered) {
  // node-1 follows a test-driver host with one running domain that alice owns.
  const std::string uuid = "6f1c2e9a-0b7d-4c3e-9f10-2a3b4c5d6e7f";
  const fs::path host = tmp_.path() / "host.xml";
  std::ofstream(host) << "<node><domain type='test'><name>web-1</name><uuid>" << uuid
                      << "</uuid><memory>8192</memory><os><type>hvm</type></os><metadata>"
                         "<mchain:owner xmlns:mchain='http://mchain.invalid/xmlns/libvirt/1'>alice"
                         "</mchain:owner></metadata></domain></node>";
  daemons_[0]->write_config(tmp_.path() / "genesis.json", tmp_.path() / "node-1.key", false,
                            {{"uri", "test://" + host.string()}});
  start_all();
  const std::string socket = " --socket " + daemons_[0]->socket().string();
  auto vm = [&]() -> Json {
    const std::string listed = run(kCtl + " vms --json" + socket);
    if (!listed.starts_with("0:")) return nullptr;
    const Json parsed = Json::parse(listed.substr(2));
    for (const Json& v : parsed["vms"]) {
      if (v["uuid"] == uuid) return v;
    }
    return nullptr;
  };
  // Without alice's key on this host the VM cannot be bound, and `vms` says why.
  Json before;
  for (auto deadline = Clock::now() + 30s; Clock::now() < deadline;
       std::this_thread::sleep_for(50ms)) {
    before = vm();
    if (before.is_object() && before["binding"].is_object() &&
        !before["binding"]["problem"].get<std::string>().empty()) {
      break;
    }
  }
  ASSERT_TRUE(before.is_object()) << daemons_[0]->log();
  EXPECT_TRUE(before["chain"].is_null());
  EXPECT_NE(before["binding"]["problem"].get<std::string>().find("no key for user 'alice'"),
            std::string::npos)
      << before.dump();

  const std::string added = run(kCtl + " user add alice" + socket);
  ASSERT_TRUE(added.starts_with("0:user alice registered")) << added;
  // The binding follows: a new VM key, signed by it, alice's key and node-1's.
  ASSERT_TRUE(confirmed_everywhere(2));
  Json after;
  for (auto deadline = Clock::now() + 30s; Clock::now() < deadline;
       std::this_thread::sleep_for(50ms)) {
    after = vm();
    if (after.is_object() && after["chain"].is_object()) break;
  }
  ASSERT_TRUE(after.is_object() && after["chain"].is_object()) << daemons_[0]->log();
  EXPECT_EQ(after["chain"]["owner"], "alice");
  EXPECT_EQ(after["chain"]["host"], "node-1");
  EXPECT_EQ(after["binding"]["last"], "started");
  EXPECT_EQ(after["binding"]["problem"], "");
  EXPECT_TRUE(fs::exists(tmp_.path() / "node-1-state" / "keys" / "vms" / (uuid + ".key")));
  EXPECT_NE(daemons_[0]->log().find("binding web-1 (" + uuid + "): started on node-1 for alice"),
            std::string::npos)
      << daemons_[0]->log();

  // Bound, it is measured as soon as it is: the test driver's guests have no agent, so the
  // run fails, is reported with its back-off, and puts nothing on the chain.
  Json failed;
  for (auto deadline = Clock::now() + 30s; Clock::now() < deadline;
       std::this_thread::sleep_for(50ms)) {
    failed = vm();
    if (failed.is_object() && failed["measurement"].is_object() &&
        failed["measurement"]["failures"].get<int>() > 0 && !failed["measurement"]["busy"].get<bool>())
      break;
  }
  ASSERT_TRUE(failed.is_object() && failed["measurement"].is_object()) << daemons_[0]->log();
  const Json& m = failed["measurement"];
  EXPECT_EQ(m["failures"], 1) << m.dump();
  EXPECT_FALSE(m["retry_at"].is_null()) << m.dump();
  EXPECT_EQ(m["last"]["ok"], false) << m.dump();
  EXPECT_NE(m["last"]["error"].get<std::string>().find("the guest agent did not complete the run"),
            std::string::npos)
      << m.dump();
  EXPECT_NE(daemons_[0]->log().find("measure: web-1 (" + uuid + "): measurement"),
            std::string::npos)
      << daemons_[0]->log();
  // On demand, by name, id or UUID: the same refusal, now from mchainctl, and still nothing
  // on the chain (no policy either: the first report brings it).
  for (const std::string& name : {std::string("web-1"), std::string("1"), uuid}) {
    const std::string measured = run(kCtl + " measure " + name + " --wait" + socket);
    EXPECT_TRUE(measured.starts_with("1:mchainctl: mchaind: web-1: the guest agent did not"))
        << measured;
  }
  EXPECT_TRUE(run(kCtl + " measure nosuch" + socket).starts_with("1:mchainctl: mchaind: no domain 'nosuch'"));
  const std::string policy = run(kCtl + " policy show web-1" + socket);
  EXPECT_NE(policy.find("no policy yet"), std::string::npos) << policy;
  const std::string history = run(kCtl + " history web-1" + socket);
  EXPECT_TRUE(history.starts_with("0:")) << history;
  EXPECT_EQ(history.find(" data "), std::string::npos) << history;
  EXPECT_NE(history.find(" binding "), std::string::npos) << history;
  // Every attempt counted, and no retry of its own came in between (the first is 30 s away).
  const Json still = vm();
  EXPECT_EQ(still["measurement"]["failures"].get<int>(), 4) << still.dump();

  // The other nodes validated it against the same history: they hold the same two blocks.
  for (auto& d : daemons_) EXPECT_EQ(d->stop(), 0);
}

TEST_F(Daemons, ABadConfigurationExitsWithTwoAndNamesTheKey) {
  std::ofstream(daemons_[0]->config())
      << R"({"node": {"id": "node-1", "key": "/k", "genesis": "/g"},
                                             "consensus": {"mode": "fast"}})";
  const std::string out = run(kDaemon + " --config " + daemons_[0]->config().string());
  EXPECT_TRUE(out.starts_with("2:")) << out;
  EXPECT_NE(out.find("consensus.mode: expected \"concurrent\" or \"inorder\""), std::string::npos)
      << out;
  // A configuration that parses but names a key file that is not there: cannot start.
  daemons_[0]->write_config(tmp_.path() / "genesis.json", tmp_.path() / "missing.key");
  const std::string missing = run(kDaemon + " --config " + daemons_[0]->config().string());
  EXPECT_TRUE(missing.starts_with("1:")) << missing;
  EXPECT_NE(missing.find("cannot start"), std::string::npos) << missing;
}

}  // namespace
}  // namespace mchain::agent
