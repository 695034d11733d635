// mchaind's configuration: every key checked, refusals name the key's path.
#include "agent/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "temp_dir.h"

namespace mchain::agent {
namespace {

const std::string kMinimal =
    R"({"node": {"id": "node-1", "key": "/etc/mchain/node.key", "genesis": "/etc/mchain/genesis.json"}})";

std::string refusal(const std::string& json) {
  auto parsed = parse_config(json, "test.json");
  EXPECT_FALSE(parsed) << json;
  return parsed ? std::string() : parsed.error().message;
}

TEST(DaemonConfig, TheMinimalFileTakesTheDefaults) {
  auto c = parse_config(kMinimal, "test.json");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->node_id, "node-1");
  EXPECT_EQ(c->key_file, "/etc/mchain/node.key");
  EXPECT_EQ(c->state_dir, "/var/lib/mchain");
  EXPECT_EQ(c->store_dir(), "/var/lib/mchain/chain");
  EXPECT_EQ(c->control_socket, "/run/mchain/mchaind.sock");
  EXPECT_EQ(c->libvirt_uri, "qemu:///system");
  EXPECT_FALSE(c->tpm_device);
  EXPECT_FALSE(c->abe_public_key);
  EXPECT_FALSE(c->abe_cp_public_key);
  EXPECT_FALSE(c->join_at);
  EXPECT_EQ(c->round_timeout, 2'000'000);
  EXPECT_EQ(c->mode, ValidationMode::concurrent);
}

TEST(DaemonConfig, EveryKeyIsRead) {
  auto c = parse_config(R"({
    "node": {"id": "n-7", "key": "/k", "genesis": "/g", "listen": "0.0.0.0", "join": "[fd00::1]:7400"},
    "state_dir": "/srv/mchain",
    "control": {"socket": "/run/x.sock", "group": "root"},
    "libvirt": null,
    "tpm": {"device": "/dev/tpmrm0"},
    "abe": {"public_key": "/etc/mchain/abe.mpk", "cp_public_key": "/etc/mchain/cpabe.pk"},
    "consensus": {"round_timeout_ms": 500, "silence_ms": 1500, "window_ms": 20, "mode": "inorder",
                  "verify_threads": 3},
    "mining": {"threads": 0},
    "alarm_command": ["/usr/local/sbin/page", "--mchain"],
    "hook": {"enforce": true},
    "drain_timeout_ms": 0
  })",
                        "test.json");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->listen_host, "0.0.0.0");
  ASSERT_TRUE(c->join_at);
  EXPECT_EQ(c->join_at->first, "fd00::1");
  EXPECT_EQ(c->join_at->second, 7400);
  EXPECT_EQ(c->state_dir, "/srv/mchain");
  EXPECT_EQ(c->control_socket, "/run/x.sock");
  EXPECT_EQ(c->control_group, "root");
  EXPECT_FALSE(c->libvirt_uri);
  EXPECT_EQ(c->tpm_device, "/dev/tpmrm0");
  EXPECT_EQ(c->abe_public_key, "/etc/mchain/abe.mpk");
  EXPECT_EQ(c->abe_cp_public_key, "/etc/mchain/cpabe.pk");
  EXPECT_EQ(c->round_timeout, 500'000);
  EXPECT_EQ(c->silence, 1'500'000);
  EXPECT_EQ(c->window, 20'000);
  EXPECT_EQ(c->mode, ValidationMode::in_order);
  EXPECT_EQ(c->verify_threads, 3u);
  EXPECT_EQ(c->miner_threads, 0u);
  EXPECT_EQ(c->alarm_command, (std::vector<std::string>{"/usr/local/sbin/page", "--mchain"}));
  EXPECT_TRUE(c->enforce_hooks);
  EXPECT_EQ(c->drain_timeout, 0);
}

TEST(DaemonConfig, UnknownKeysAreRefusedWithTheirPath) {
  EXPECT_EQ(refusal(R"({"node": {"id": "a", "key": "/k", "genesis": "/g"}, "statedir": "/x"})"),
            "test.json: statedir: unknown key");
  EXPECT_EQ(refusal(R"({"node": {"id": "a", "key": "/k", "genesis": "/g", "lisen": "x"}})"),
            "test.json: node.lisen: unknown key");
  EXPECT_EQ(refusal(R"({"node": {"id": "a", "key": "/k", "genesis": "/g"},
                        "consensus": {"round_timeout": 5}})"),
            "test.json: consensus.round_timeout: unknown key");
  EXPECT_EQ(refusal(R"({"node": {"id": "a", "key": "/k", "genesis": "/g"},
                        "libvirt": {"url": "qemu:///system"}})"),
            "test.json: libvirt.url: unknown key");
}

TEST(DaemonConfig, BadValuesAreRefusedWithTheirPath) {
  const std::string node = R"("node": {"id": "a", "key": "/k", "genesis": "/g"})";
  struct Case {
    std::string json;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"[]", "test.json: (top level): expected an object"},
      {"{}", "test.json: node: missing"},
      {R"({"node": {"key": "/k", "genesis": "/g"}})", "test.json: node.id: missing"},
      {R"({"node": {"id": "bad id!", "key": "/k", "genesis": "/g"}})",
       "test.json: node.id: not a valid node id"},
      {R"({"node": {"id": "a", "key": "relative.key", "genesis": "/g"}})",
       "test.json: node.key: expected an absolute path"},
      {R"({"node": {"id": "a", "key": 7, "genesis": "/g"}})",
       "test.json: node.key: expected a string"},
      {R"({"node": {"id": "a", "key": "/k", "genesis": "/g", "join": "host"}})",
       "test.json: node.join: expected \"host:port\" (IPv6 in brackets)"},
      {R"({"node": {"id": "a", "key": "/k", "genesis": "/g", "join": "h:70000"}})",
       "test.json: node.join: port must be 1..65535"},
      {"{" + node + R"(, "consensus": {"round_timeout_ms": 5}})",
       "test.json: consensus.round_timeout_ms: expected an integer in [100, 600000]"},
      {"{" + node + R"(, "consensus": {"round_timeout_ms": -5}})",
       "test.json: consensus.round_timeout_ms: expected an integer in [100, 600000]"},
      {"{" + node + R"(, "consensus": {"round_timeout_ms": 1.5}})",
       "test.json: consensus.round_timeout_ms: expected an integer in [100, 600000]"},
      {"{" + node + R"(, "consensus": {"mode": "sideways"}})",
       "test.json: consensus.mode: expected \"concurrent\" or \"inorder\""},
      {"{" + node + R"(, "consensus": {"round_timeout_ms": 5000, "silence_ms": 1000}})",
       "test.json: consensus.silence_ms: must not be shorter than round_timeout_ms"},
      {"{" + node + R"(, "control": {"group": "no-such-group-mchain"}})",
       "test.json: control.group: no group named \"no-such-group-mchain\" on this host"},
      {"{" + node + R"(, "control": {"socket": "/)" + std::string(120, 's') + R"("}})",
       "test.json: control.socket: longer than 107 bytes"},
      {"{" + node + R"(, "tpm": {}})", "test.json: tpm.device: missing"},
      {"{" + node + R"(, "abe": {}})",
       "test.json: abe: give public_key (KP-ABE), cp_public_key (versioned CP-ABE) or both"},
      {"{" + node + R"(, "abe": {"cp_public_key": 3}})",
       "test.json: abe.cp_public_key: expected a string"},
      {"{" + node + R"(, "alarm_command": []})",
       "test.json: alarm_command: expected a non-empty array of strings"},
      {"{" + node + R"(, "alarm_command": ["page-admin"]})",
       "test.json: alarm_command[0]: expected an absolute path (no shell, no PATH look-up)"},
      {"{" + node + R"(, "alarm_command": ["/bin/true", 3]})",
       "test.json: alarm_command[1]: expected a string"},
      {"{" + node + R"(, "mining": "lots"})", "test.json: mining: expected an object"},
      {"{" + node + R"(, "hook": {"enforce": "yes"}})",
       "test.json: hook.enforce: expected true or false"},
  };
  for (const Case& c : cases) EXPECT_EQ(refusal(c.json), c.expected) << c.json;
  EXPECT_NE(refusal("{not json").find("test.json: not JSON"), std::string::npos);
}

TEST(DaemonConfig, LoadReadsTheFileAndNamesItInErrors) {
  testing::TempDir tmp("mchain-config");
  const auto file = tmp.path() / "mchaind.json";
  std::ofstream(file) << kMinimal;
  auto loaded = load_config(file);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->node_id, "node-1");
  std::ofstream(file) << R"({"node": 1})";
  auto bad = load_config(file);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, file.string() + ": node: expected an object");
  EXPECT_FALSE(load_config(tmp.path() / "missing.json"));
}

}  // namespace
}  // namespace mchain::agent
