// The victim of the store crash test (store_crash_test.cc): opens the store in argv[1] and
// writes to it until killed. Each round confirms a semi-finished block of fresh data packages
// and mines the oldest queued body onto the tip; every few rounds it also mines a competing
// branch (a sibling of equal work, or a longer branch from a few blocks back) to force
// reorganisations. All its state is in the store, so a restart picks up where the last run
// died; its keys come from fixed seeds, so the setup it repeats on every start is idempotent.
//
// Writes 'r' to stdout once the store is open and set up, then '.' per round. Exits non-zero
// on any error, which the test reports.
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "chain/package/records.h"
#include "chain/store/store.h"
#include "store_test_util.h"

namespace mchain {
namespace {

constexpr TimeUs kT0 = 1'700'000'000'000'000;
constexpr std::uint8_t kDiff = 6;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "store_crash_child: %s\n", what.c_str());
  std::exit(3);
}

template <class T>
T must(Result<T> result, const char* what) {
  if (!result) die(std::string(what) + ": " + result.error().message);
  return *std::move(result);
}

void must(const Status& status, const char* what) {
  if (!status) die(std::string(what) + ": " + status.error().message);
}

// An Ed25519 key whose 32-byte seed is `fill` repeated: PKCS#8 is a fixed prefix, then the seed.
crypto::PrivateKey fixed_key(std::uint8_t fill) {
  Bytes der = *from_hex("302e020100300506032b657004220420");
  der.insert(der.end(), 32, fill);
  std::string b64(4 * ((der.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), der.data(),
                                static_cast<int>(der.size()));
  b64.resize(static_cast<std::size_t>(n));
  return must(crypto::PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\n" + b64 +
                                           "\n-----END PRIVATE KEY-----\n"),
              "key");
}

void progress(char c) {
  if (::write(STDOUT_FILENO, &c, 1) != 1) die("cannot write progress");
}

class Writer {
 public:
  explicit Writer(Store& store) : store_(store) {}

  void setup() {
    must(store_.add_genesis_node("node-1", node_.public_key(), kT0), "genesis");
    const PackageSigners signers{&vm_key_, &alice_, &node_};
    std::vector<Package> packages = {
        must(make_membership_package(
                 {Uuid{}, "alice", "node-1", kT0 + 1},
                 MembershipRecord{MembershipAction::register_user, "alice", alice_.public_key()},
                 {nullptr, &alice_, &node_}),
             "register"),
        must(make_binding_package({vm_, "alice", "node-1", kT0 + 10}, PolicyRef{},
                                  BindingEvent::started, vm_key_.public_key(), signers),
             "binding"),
        must(make_policy_package({vm_, "alice", "node-1", kT0 + 20}, policy_, signers), "policy")};
    // Ed25519 signs deterministically, so this is the same block on every start.
    must(store_.confirm(block(BlockType::policy, 0, {}, std::move(packages))), "confirm setup");
  }

  void round() {
    const std::vector<Hash256> confirmed = store_.confirmed();
    const std::uint64_t n = confirmed.size();
    std::vector<Package> packages;
    for (std::uint64_t i = 0; i < 3; ++i) {
      const std::string report = "round " + std::to_string(n) + " report " + std::to_string(i);
      packages.push_back(
          must(make_data_package({vm_, "alice", "node-1", kT0 + 1000 + n * 10 + i}, policy_.ref(),
                                 data_key_, as_bytes(report), {&vm_key_, &alice_, &node_}),
               "data package"));
    }
    must(store_.confirm(block(BlockType::data, n, confirmed.back(), std::move(packages))),
         "confirm");
    extend();
    if (n % 4 == 1) sibling();
    if (n % 4 == 3) overtake(n % 8 == 3 ? 1 : 2);
  }

 private:
  SemiFinishedBlock block(BlockType type, std::uint64_t round, const Hash256& previous,
                          std::vector<Package> packages) {
    return must(testing::make_semi(type, round, kT0 + 1000 + round * 10 + 5, previous,
                                   std::move(packages), node_, {{"node-1", &node_}}),
                "propose");
  }

  Block mine(const Hash256& body, const Hash256& previous, std::uint64_t height,
             std::uint64_t nonce_hi = 0) {
    return testing::mine_block(must(store_.semi_finished(body), "body"), previous, height, kDiff,
                               kT0 + 5000 + height, nonce_hi);
  }

  void append(const Block& b) { must(store_.append(b), "append"); }

  // Mines the oldest queued body onto the tip.
  void extend() {
    const auto queue = store_.mining_queue();
    if (queue.empty()) return;
    const auto tip = store_.tip();
    append(tip ? mine(queue.front(), tip->hash, tip->height + 1) : mine(queue.front(), {}, 0));
  }

  // A second block with the tip's body on the tip's parent: equal work, the lower hash wins.
  void sibling() {
    const auto tip = store_.tip();
    if (!tip || tip->height == 0) return;
    const Block top = must(store_.block(tip->hash), "tip");
    append(mine(top.header.semi_finished, top.header.previous, tip->height, 1));
  }

  // A branch from `depth` blocks below the tip, one block longer than the main chain above
  // it, re-mining the bodies of the blocks it replaces and then queued ones.
  void overtake(std::uint64_t depth) {
    const auto tip = store_.tip();
    if (!tip || tip->height < depth) return;
    const std::uint64_t fork = tip->height - depth;
    std::vector<Hash256> bodies;
    for (std::uint64_t h = fork + 1; h <= tip->height; ++h) {
      bodies.push_back(must(store_.block(*store_.main_chain_at(h)), "main").header.semi_finished);
    }
    for (const Hash256& queued : store_.mining_queue()) bodies.push_back(queued);
    if (bodies.size() < depth + 1) return;
    Hash256 previous = *store_.main_chain_at(fork);
    for (std::uint64_t i = 0; i <= depth; ++i) {
      const Block b = mine(bodies[i], previous, fork + 1 + i, 2);
      append(b);
      previous = b.hash();
    }
  }

  Store& store_;
  crypto::PrivateKey node_ = fixed_key(0x01);
  crypto::PrivateKey alice_ = fixed_key(0x02);
  crypto::PrivateKey vm_key_ = fixed_key(0x03);
  Uuid vm_ = *Uuid::parse("6f1c2e9a-0b7d-4c3e-9f10-2a3b4c5d6e7f");
  PolicyRecord policy_{vm_, 1, AbeScheme::kp_abe_gpsw, {"tenant:alice"}, "tenant:alice"};
  crypto::AeadKey data_key_ = crypto::random_aead_key();
};

}  // namespace
}  // namespace mchain

int main(int argc, char** argv) {
  using namespace mchain;
  if (argc != 2) die("usage: store_crash_child DIRECTORY");
  auto store = must(Store::open(argv[1]), "open");
  Writer writer(*store);
  writer.setup();
  progress('r');
  for (;;) {
    writer.round();
    progress('.');
  }
}
