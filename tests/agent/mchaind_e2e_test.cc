// mchaind with a real libvirt daemon and a real guest (tests/guest: TCG, qemu-ga inside): three
// daemons form the cluster, node-1 follows a private libvirtd whose qemu hook hands its calls
// to node-1. The guest is defined and started: its binding goes on the chain, its agent
// connects and is measured (the baseline); a file changed inside it shows up in the next
// report; the history's proofs verify and every report opens, also after a policy revision
// has moved the VM to a new data key. Needs root; skips elsewhere.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/domain_metadata.h"
#include "daemon_fixture.h"
#include "guest/libvirt_host.h"

namespace mchain::agent {
namespace {

using namespace mchain::agent::testing;
using mchain::testing::LibvirtHost;

std::string cannot_run_guests() {
  using mchain::testing::guest_detail::run_command;
  if (::geteuid() != 0) return "a private libvirtd needs root";
  if (run_command({"sh", "-c", "command -v libvirtd && command -v virsh"}).status != 0)
    return "needs libvirt-daemon-driver-qemu and libvirt-clients (scripts/setup.sh)";
  if (run_command({"unshare", "--mount", "--uts", "true"}).status != 0)
    return "no mount and UTS namespaces here";
  if (!mchain::testing::test_guest_dir()) return "the test guest was not built";
  return "";
}

// The test guest's domain, owned by `owner` through our metadata namespace.
std::string owned_guest_xml(const std::string& name, const std::string& owner,
                            const fs::path& console) {
  std::string xml = mchain::testing::test_guest_domain_xml(
      name, *mchain::testing::test_guest_dir(), console);
  const std::string after = "</name>\n";
  xml.insert(xml.find(after) + after.size(),
             "  <metadata><mchain:owner xmlns:mchain='" + std::string(kMetadataNamespace) +
                 "'>" + owner + "</mchain:owner></metadata>\n");
  return xml;
}

class MchaindWithGuest : public Daemons {
 protected:
  // node-1's view of the domain in `mchainctl vms --json`, or null.
  Json vm(const std::string& name) {
    const std::string listed = run(kCtl + " vms --json" + socket_);
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
                     std::chrono::seconds within) {
    Json v;
    for (auto deadline = Clock::now() + within; Clock::now() < deadline;
         std::this_thread::sleep_for(200ms)) {
      v = vm(name);
      if (v.is_object() && v["measurement"].is_object() &&
          v["measurement"]["last"].is_object() &&
          v["measurement"]["last"]["time"] != previous_time) {
        return v;
      }
    }
    ADD_FAILURE() << "no measurement of " << name << ": " << v.dump() << '\n'
                  << daemons_[0]->log();
    return v;
  }

  std::string socket_;
};

TEST_F(MchaindWithGuest, AGuestIsBoundMeasuredOnConnectAndAChangedFileShowsInItsHistory) {
  if (auto why = cannot_run_guests(); !why.empty()) GTEST_SKIP() << why;
  socket_ = " --socket " + daemons_[0]->socket().string();

  // The hook as a host installs it, pointed at node-1's control socket.
  const fs::path hook = tmp_.path() / "hook";
  std::ofstream(hook) << "#!/bin/sh\nMCHAINCTL=" << kCtl << " MCHAIN_CONTROL_SOCKET="
                      << daemons_[0]->socket().string() << " exec " << MCHAIN_HOOK_SCRIPT
                      << " \"$@\"\n";
  fs::permissions(hook, fs::perms::owner_all);
  LibvirtHost::Options options;
  options.hook = hook;
  auto host = LibvirtHost::start(tmp_.path() / "h1", "h1", options);
  ASSERT_TRUE(host) << host.error();

  std::ofstream(tmp_.path() / "measure.pol") << "/etc -> $(ReadOnly) (rulename = config);\n"
                                             << "/opt -> $(ReadOnly) (rulename = data);\n";
  daemons_[0]->write_config(tmp_.path() / "genesis.json", tmp_.path() / "node-1.key", false,
                            {{"uri", host->uri()}});
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

  // A new policy version, a new data key and the key link back; a report under it.
  const std::string revised = run(kCtl + " policy set guest-1 --expression 'owner:alice or role:auditor'" + socket_);
  ASSERT_TRUE(revised.starts_with("0:guest-1: policy v2 in force")) << revised;
  EXPECT_NE(revised.find("key link to v1"), std::string::npos) << revised;
  const std::string shown = run(kCtl + " policy show guest-1" + socket_);
  EXPECT_NE(shown.find("readable by: owner:alice or role:auditor"), std::string::npos) << shown;
  const std::string third = run(kCtl + " measure guest-1 --wait --json" + socket_);
  ASSERT_TRUE(third.starts_with("0:")) << third;
  EXPECT_EQ(Json::parse(third.substr(2))["result"]["policy_version"], 2) << third;

  // Without K(v1) on this host, the reports under v1 still open: through the key link.
  const std::string uuid = first["uuid"];
  fs::remove(tmp_.path() / "node-1-state" / "keys" / "vms" / (uuid + ".v1.data"));
  const std::string verified = run(kCtl + " verify " + uuid + socket_);
  EXPECT_TRUE(verified.starts_with("0:")) << verified;
  EXPECT_NE(verified.find("3 measurement reports, 3 open"), std::string::npos) << verified;
  EXPECT_NE(verified.find("verified"), std::string::npos) << verified;

  // Destroyed: the binding says it runs nowhere; the three stores hold the same blocks.
  ASSERT_EQ(host->virsh({"destroy", "guest-1"}).status, 0);
  for (auto deadline = Clock::now() + 60s; Clock::now() < deadline;
       std::this_thread::sleep_for(200ms)) {
    if (Json v = vm("guest-1"); v.is_object() && v["chain"].is_object() && v["chain"]["host"].is_null())
      break;
  }
  EXPECT_TRUE(vm("guest-1")["chain"]["host"].is_null()) << daemons_[0]->log();
  const auto count = daemons_[0]->ask({{"command", "status"}})->at("confirmed").get<std::uint64_t>();
  EXPECT_TRUE(confirmed_everywhere(count));
  for (auto& d : daemons_) EXPECT_EQ(d->stop(), 0);
}

}  // namespace
}  // namespace mchain::agent
