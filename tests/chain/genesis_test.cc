// The genesis file: what every node starts from, checked member by member.
#include "chain/node/genesis.h"

#include <gtest/gtest.h>

#include <fstream>

#include "chain/test_util.h"
#include "temp_dir.h"

namespace mchain {
namespace {

using testing::ed25519_from_seed;
using testing::make_key;
using testing::must;

// RFC 8032 test 1's secret key: a fixed Ed25519 key, so the golden hash below is stable.
constexpr std::string_view kSeed =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

std::string valid_text(const std::string& key1, const std::string& key2) {
  return R"({
  "chain": "acme-cloud-1",
  "time": "2026-11-22T00:00:00Z",
  "difficulty": 16,
  "nodes": [
    {"id": "node-1", "address": "127.0.0.1:7401", "key": ")" +
         key1 + R"("},
    {"id": "node-2", "address": "[::1]:7402", "key": ")" +
         key2 + R"("}
  ]
})";
}

TEST(Genesis, ParsesAndRoundTripsThroughItsCanonicalText) {
  auto k1 = make_key();
  auto k2 = make_key(crypto::SigAlg::ed25519);
  auto g = parse_genesis(valid_text(key_text(k1.public_key()), key_text(k2.public_key())));
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->chain, "acme-cloud-1");
  EXPECT_EQ(g->difficulty, 16);
  EXPECT_EQ(format_time(g->time), "2026-11-22T00:00:00.000000Z");
  ASSERT_EQ(g->nodes.size(), 2u);
  EXPECT_EQ(g->nodes[0].host, "127.0.0.1");
  EXPECT_EQ(g->nodes[0].port, 7401);
  EXPECT_EQ(g->nodes[1].host, "::1");
  EXPECT_EQ(address_text(g->nodes[1]), "[::1]:7402");
  EXPECT_EQ(g->nodes[0].key, k1.public_key());
  EXPECT_EQ(g->nodes[1].key, k2.public_key());

  auto again = parse_genesis(g->to_json());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->to_json(), g->to_json());
  EXPECT_EQ(again->hash(), g->hash());
}

TEST(Genesis, CanonicalTextAndHashArePinned) {
  // Changing the canonical form changes every cluster's identity: a deliberate act.
  auto key = ed25519_from_seed(kSeed);
  auto g = must(parse_genesis(R"({"chain": "c", "time": "2026-01-01T00:00:00Z", "difficulty": 8,
      "nodes": [{"id": "n1", "address": "h:1", "key": ")" +
                              key_text(key.public_key()) + R"("}]})"));
  EXPECT_EQ(g.to_json(), R"({
  "chain": "c",
  "time": "2026-01-01T00:00:00.000000Z",
  "difficulty": 8,
  "nodes": [
    {
      "id": "n1",
      "address": "h:1",
      "key": "ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    }
  ]
}
)");
}

TEST(Genesis, EveryMistakeNamesItsPath) {
  const std::string k1 = key_text(make_key().public_key());
  const std::string k2 = key_text(make_key().public_key());
  const std::string good = valid_text(k1, k2);
  auto with = [&](std::string from, std::string to) {
    std::string s = good;
    auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "g: not valid JSON"},
      {"[]", "g: the genesis file must be a JSON object"},
      {with(R"("difficulty": 16)", R"("difficulty": 0)"), "g: difficulty: an integer from 1 to 64"},
      {with(R"("difficulty": 16)", R"("difficulty": "16")"), "g: difficulty: an integer"},
      {with(R"("chain": "acme-cloud-1",)", ""), "g: chain: missing member \"chain\""},
      {with(R"("chain": "acme-cloud-1")", R"("chain": "acme cloud")"), "g: chain: 1-64 characters"},
      {with(R"("time": "2026-11-22T00:00:00Z")", R"("time": "yesterday")"), "g: time: 'yesterday'"},
      {with(R"("difficulty": 16,)", R"("difficulty": 16, "extra": 1,)"),
       "g: extra: unknown member"},
      {with(R"("id": "node-2")", R"("id": "node-1")"),
       "g: nodes[1].id: \"node-1\" is listed twice"},
      {with(R"("id": "node-2")", R"("id": "node 2")"), "g: nodes[1].id: 1-64 characters"},
      {with("[::1]:7402", "127.0.0.1:7401"), "g: nodes[1].address: listed twice"},
      {with("[::1]:7402", "::1:7402"), "g: nodes[1].address: expected \"host:port\""},
      {with("[::1]:7402", "[::1]:0"), "g: nodes[1].address: port must be 1..65535"},
      {with("[::1]:7402", "[::1]:65536"), "g: nodes[1].address: port must be 1..65535"},
      {with(k2, k1), "g: nodes[1].key: the same key as another node"},
      {with(k2, "rsa:00"), "g: nodes[1].key: unknown algorithm \"rsa\""},
      {with(k2, "ed25519:zz"), "g: nodes[1].key: the key is not hex"},
      {with(k2, "ecdsa-p256-sha256:0011"), "g: nodes[1].key: "},
      {with(R"("id": "node-2", )", R"("id": "node-2", "role": "x", )"),
       "g: nodes[1].role: unknown member"},
      {R"({"chain": "c", "time": "2026-01-01T00:00:00Z", "difficulty": 8, "nodes": []})",
       "g: nodes: an array of 1 to 1024 nodes"},
  };
  for (const auto& [text, expected] : cases) {
    auto g = parse_genesis(text, "g");
    ASSERT_FALSE(g) << text;
    EXPECT_EQ(g.error().message.substr(0, expected.size()), expected) << g.error().message;
  }
}

TEST(Genesis, LoadsFromAFileAndSaysWhichFile) {
  mchain::testing::TempDir dir("genesis");
  const auto file = dir.path() / "genesis.json";
  auto missing = load_genesis(file);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("does not exist"), std::string::npos);
  std::ofstream(file) << valid_text(key_text(make_key().public_key()),
                                    key_text(make_key().public_key()));
  EXPECT_TRUE(load_genesis(file));
  std::ofstream(file) << "{";
  auto broken = load_genesis(file);
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message.find(file.string() + ": not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace mchain
