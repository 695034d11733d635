// Writes the seed corpus of package_decode_fuzz: one valid package of each type, signed with
// fresh Ed25519 keys (the smallest signatures), and each package's body as a bare record.
//   make_seeds DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "chain/crypto/aead.h"
#include "chain/crypto/sign.h"
#include "chain/node/messages.h"
#include "chain/package/records.h"

namespace {

using namespace mchain;

template <class T>
T need(Result<T> result, const char* what) {
  if (!result) {
    std::fprintf(stderr, "make_seeds: %s: %s\n", what, result.error().message.c_str());
    std::exit(1);
  }
  return *std::move(result);
}

void write(const std::filesystem::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);

  const auto alg = crypto::SigAlg::ed25519;
  const auto node = need(crypto::PrivateKey::generate(alg), "node key");
  const auto user = need(crypto::PrivateKey::generate(alg), "user key");
  const auto vm_key = need(crypto::PrivateKey::generate(alg), "VM key");
  const Uuid vm = Uuid::random();
  const PackageSigners all{&vm_key, &user, &node};
  const TimeUs t = 1'700'000'000'000'000;
  const PackageOrigin origin{vm, "alice", "node-1", t};

  PolicyRecord policy{vm, 2, AbeScheme::kp_abe_gpsw, {"tenant:alice"}, "tenant:alice"};
  const Bytes report{'h', 'e', 'l', 'l', 'o'};
  const struct {
    const char* name;
    Package package;
  } seeds[] = {
      {"membership", need(make_membership_package({Uuid{}, "alice", "node-1", t},
                                                  MembershipRecord{MembershipAction::register_user,
                                                                   "alice", user.public_key()},
                                                  {nullptr, &user, &node}),
                          "membership package")},
      {"binding", need(make_binding_package(origin, PolicyRef{}, BindingEvent::started,
                                            vm_key.public_key(), all),
                       "binding package")},
      {"policy", need(make_policy_package(origin, policy, all), "policy package")},
      {"data", need(make_data_package(origin, policy.ref(), crypto::random_aead_key(), report, all),
                    "data package")},
      {"key-link", need(make_key_link_package(origin, policy.ref(), 1, crypto::random_aead_key(),
                                              crypto::random_aead_key(), all),
                        "key-link package")},
  };
  for (const auto& seed : seeds) {
    write(dir / (std::string("package-") + seed.name), seed.package.encode());
    write(dir / (std::string("record-") + seed.name), seed.package.body());
  }
  // Peer messages: a proposal of every seed package, a mark over it and a status report.
  std::vector<Package> packages;
  for (const auto& seed : seeds) packages.push_back(seed.package);
  auto proposal = need(SemiFinishedBlock::propose(
                           Candidate{BlockType::data, "node-1", 0, t, Hash256{}, packages}, node),
                       "proposal");
  write(dir / "message-proposal", encode_message(Proposal{proposal}));
  const Hash256 hash = proposal.candidate.hash();
  write(dir / "message-mark",
        encode_message(Mark{
            hash, ValidMark{"node-1", need(node.sign(valid_mark_signing_message(hash)), "mark")}}));
  StatusReport status{"node-1", 1, hash, 0, 0, Hash256{}, t, {}};
  status.signature = need(node.sign(status.signing_message()), "status");
  write(dir / "message-status", encode_message(status));
  return 0;
}
