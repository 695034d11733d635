// mchainctl's authority-side access commands, run in-process on files: the KP-ABE and versioned
// CP-ABE authorities, verifier keys, re-keying and key updates, and what they do with bad or
// half-written files. Reading through mchaind is in the guest e2e test.
#include "agent/access_commands.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "agent/abe_files.h"
#include "agent/key_chain.h"
#include "temp_dir.h"

namespace mchain::agent {
namespace {

namespace fs = std::filesystem;
namespace cp = abe::cpabe;

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

// A command's exit status with what it wrote to stdout and stderr.
struct Ran {
  int status = -1;
  std::string out, err;
};
template <class F>
Ran ran(F&& command) {
  std::ostringstream out, err;
  const int status = command(out, err);
  return {status, out.str(), err.str()};
}

cp::UserKey cp_key(const fs::path& file) {
  auto key = read_verifier_key(file);
  EXPECT_TRUE(key) << (key ? "" : key.error().message);
  const auto* k = key ? std::get_if<cp::UserKey>(&*key) : nullptr;
  EXPECT_NE(k, nullptr) << file;
  return k ? *k : cp::UserKey{};
}

class AccessCommands : public ::testing::Test {
 protected:
  testing::TempDir tmp_{"mchain-access"};
  fs::path dir_ = tmp_.path() / "authority";

  Ran setup_cp(const std::string& universe = "member, rank_le_1,rank_le_2") {
    return ran([&](auto& o, auto& e) { return abe_setup_cp(dir_, universe, o, e); });
  }
  Ran issue_cp(const std::string& attributes, const fs::path& file) {
    return ran([&](auto& o, auto& e) { return verifier_issue_cp(dir_, attributes, file, o, e); });
  }
  Ran rekey(const fs::path& revoked) {
    return ran([&](auto& o, auto& e) { return abe_rekey(dir_, revoked, o, e); });
  }
  Ran update(const fs::path& file) {
    return ran([&](auto& o, auto& e) { return verifier_update(dir_, file, o, e); });
  }
  fs::path key(const std::string& name) const { return tmp_.path() / (name + ".vkey"); }
};

TEST_F(AccessCommands, CpSetupWritesThePublicKeyForMchaindAndKeepsTheMasterKeyPrivate) {
  const Ran r = setup_cp();
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("universe:   member, rank_le_1, rank_le_2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("set abe.cp_public_key"), std::string::npos) << r.out;
  EXPECT_EQ(mode_of(dir_ / kCpPublicKeyFile), 0644u);
  EXPECT_EQ(mode_of(dir_ / kCpMasterKeyFile), 0600u);
  auto authority = read_cp_authority(dir_);
  ASSERT_TRUE(authority) << authority.error().message;
  EXPECT_EQ(authority->pk.names, (std::vector<std::string>{"member", "rank_le_1", "rank_le_2"}));
  EXPECT_EQ(authority->pk.version, 1u);

  // Never over an existing authority: every key issued under it would stop working.
  const Ran again = setup_cp("a, b");
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.err.find("already holds a CP-ABE authority"), std::string::npos) << again.err;
  EXPECT_EQ(read_cp_authority(dir_)->pk.sys_id, authority->pk.sys_id);
  // A KP-ABE authority may live beside it.
  EXPECT_EQ(ran([&](auto& o, auto& e) { return abe_setup(dir_, o, e); }).status, 0);
  EXPECT_TRUE(read_kp_public_key(dir_ / kKpPublicKeyFile));
}

TEST_F(AccessCommands, CpSetupRefusesABadUniverse) {
  for (const auto& [universe, why] :
       {std::pair{"a,,b", "an empty name"}, std::pair{"a, b, a", "'a' appears twice"},
        std::pair{"member, not", "none of them and, or, not"},
        std::pair{"rank 1", "names of [A-Za-z0-9_.:-]"}}) {
    dir_ = tmp_.path() / ("bad-" + std::to_string(std::hash<std::string>{}(universe)));
    const Ran r = setup_cp(universe);
    EXPECT_EQ(r.status, 2) << universe;
    EXPECT_NE(r.err.find(why), std::string::npos) << universe << ": " << r.err;
    EXPECT_FALSE(fs::exists(dir_ / kCpMasterKeyFile)) << universe;
  }
}

TEST_F(AccessCommands, IssuedKeysHoldTheirAttributesAndBadOnesArePointedAt) {
  ASSERT_EQ(setup_cp().status, 0);
  const Ran r = issue_cp("rank_le_2, member", key("rank2"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("attributes {member, rank_le_2}, system version 1"), std::string::npos)
      << r.out;
  EXPECT_EQ(mode_of(key("rank2")), 0600u);
  EXPECT_EQ(cp_key(key("rank2")).s, (cp::AttributeFlags{true, false, true}));

  const Ran bad = issue_cp("member, rank_9", key("bad"));
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("position 9: unknown attribute 'rank_9'"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(key("bad")));
  // No authority there: the file is named.
  dir_ = tmp_.path() / "nowhere";
  const Ran none = issue_cp("member", key("none"));
  EXPECT_EQ(none.status, 1);
  EXPECT_NE(none.err.find("nowhere/cpabe.pk"), std::string::npos) << none.err;
}

TEST_F(AccessCommands, RekeyRevokesOneKeyAndUpdateBringsTheOthersForwardButNotIt) {
  ASSERT_EQ(setup_cp().status, 0);
  ASSERT_EQ(issue_cp("member, rank_le_2", key("rank2")).status, 0);
  ASSERT_EQ(issue_cp("member", key("rank3")).status, 0);
  ASSERT_EQ(issue_cp("member", key("rank3b")).status, 0);
  const cp::PublicKey v1 = *read_cp_public_key(dir_ / kCpPublicKeyFile);

  const Ran r = rekey(key("rank2"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("CP-ABE system version 1 -> 2: the key for {member, rank_le_2} is revoked"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(mode_of(cp_rekey_file(dir_, 1, 2)), 0600u);
  auto authority = read_cp_authority(dir_);
  ASSERT_TRUE(authority) << authority.error().message;
  EXPECT_EQ(authority->pk.version, 2u);
  EXPECT_EQ(authority->pk.sys_id, v1.sys_id);

  // What is sealed now (as mchaind does, from the new public key) opens for the updated key
  // only; what was sealed before still opens for the revoked one.
  const cp::Policy policy = *cp::parse_policy(authority->pk, "member and not rank_le_1");
  const Bytes message = {1, 2, 3};
  const cp::Ciphertext before = *cp::encrypt(v1, policy, message);
  const cp::Ciphertext after = *cp::encrypt(authority->pk, policy, message);

  const Ran updated = update(key("rank3"));
  ASSERT_EQ(updated.status, 0) << updated.err;
  EXPECT_NE(updated.out.find("system version 1 -> 2"), std::string::npos) << updated.out;
  EXPECT_EQ(cp::decrypt(cp_key(key("rank3")), after), message);
  EXPECT_NE(update(key("rank3")).out.find("already at system version 2"), std::string::npos);

  const Ran refused = update(key("rank2"));
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.err.find("{member, rank_le_2} was revoked at system version 2"),
            std::string::npos)
      << refused.err;
  const cp::UserKey revoked = cp_key(key("rank2"));
  EXPECT_EQ(revoked.version, 1u);
  EXPECT_EQ(cp::decrypt(revoked, before), message);
  EXPECT_FALSE(cp::decrypt(revoked, after));

  // A second re-key: a key two versions behind walks both re-keys.
  ASSERT_EQ(issue_cp("member, rank_le_1", key("rank1")).status, 0);
  ASSERT_EQ(rekey(key("rank1")).status, 0);
  const Ran two = update(key("rank3b"));
  ASSERT_EQ(two.status, 0) << two.err;
  EXPECT_NE(two.out.find("system version 1 -> 3"), std::string::npos) << two.out;
  const cp::Ciphertext v3 = *cp::encrypt(read_cp_authority(dir_)->pk, policy, message);
  EXPECT_EQ(cp::decrypt(cp_key(key("rank3b")), v3), message);

  // Without its re-key file a key cannot be brought forward, and the file is named.
  fs::copy_file(key("rank3"), key("old"));  // at version 2
  fs::remove(cp_rekey_file(dir_, 2, 3));
  const Ran missing = update(key("old"));
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("cpabe.v2-v3.rk"), std::string::npos) << missing.err;
  EXPECT_EQ(cp_key(key("old")).version, 2u);
}

TEST_F(AccessCommands, RekeyAndUpdateRefuseKeysOfAnotherSchemeOrAuthority) {
  ASSERT_EQ(setup_cp().status, 0);
  ASSERT_EQ(ran([&](auto& o, auto& e) { return abe_setup(dir_, o, e); }).status, 0);
  ASSERT_EQ(ran([&](auto& o, auto& e) {
              return verifier_issue(dir_, "owner:alice", key("kp"), o, e);
            }).status,
            0);
  const Ran kp = rekey(key("kp"));
  EXPECT_EQ(kp.status, 1);
  EXPECT_NE(kp.err.find("a KP-ABE key, not a CP-ABE one"), std::string::npos) << kp.err;

  const fs::path mine = dir_;
  dir_ = tmp_.path() / "other";
  ASSERT_EQ(setup_cp().status, 0);
  ASSERT_EQ(issue_cp("member", key("foreign")).status, 0);
  dir_ = mine;
  const Ran foreign = rekey(key("foreign"));
  EXPECT_EQ(foreign.status, 1);
  EXPECT_NE(foreign.err.find("issued by another CP-ABE authority"), std::string::npos)
      << foreign.err;
  EXPECT_EQ(update(key("foreign")).status, 1);
  EXPECT_EQ(read_cp_authority(dir_)->pk.version, 1u);  // nothing re-keyed

  std::ofstream(key("garbage")) << "not a key";
  const Ran garbage = rekey(key("garbage"));
  EXPECT_EQ(garbage.status, 1);
  EXPECT_NE(garbage.err.find("not a verifier key"), std::string::npos) << garbage.err;
}

TEST_F(AccessCommands, ARekeyCutShortBetweenItsRenamesIsCompletedOnTheNextRead) {
  ASSERT_EQ(setup_cp().status, 0);
  ASSERT_EQ(issue_cp("member", key("k")).status, 0);
  const CpAuthority v1 = *read_cp_authority(dir_);
  auto r = cp::rekey(v1.pk, v1.mk, std::vector<std::uint32_t>{0});
  ASSERT_TRUE(r);
  // As abe rekey leaves it after write_cp_authority's first rename: the re-key written, the new
  // master key in place, the new public key staged.
  const Bytes rk = r->rk.to_bytes();
  std::ofstream(cp_rekey_file(dir_, 1, 2), std::ios::binary)
      .write(reinterpret_cast<const char*>(rk.data()), static_cast<std::streamsize>(rk.size()));
  ASSERT_TRUE(write_cp_authority(dir_, {r->pk, r->mk}));
  const Bytes staged = r->pk.to_bytes();
  std::ofstream(dir_ / "cpabe.pk.next", std::ios::binary)
      .write(reinterpret_cast<const char*>(staged.data()),
             static_cast<std::streamsize>(staged.size()));
  const Bytes old_pk = v1.pk.to_bytes();
  std::ofstream(dir_ / kCpPublicKeyFile, std::ios::binary)
      .write(reinterpret_cast<const char*>(old_pk.data()),
             static_cast<std::streamsize>(old_pk.size()));

  // The next command completes it: here verifier update, which then brings the key to v2.
  const Ran updated = update(key("k"));
  ASSERT_EQ(updated.status, 0) << updated.err;
  EXPECT_NE(updated.out.find("system version 1 -> 2"), std::string::npos) << updated.out;
  EXPECT_FALSE(fs::exists(dir_ / "cpabe.pk.next"));
  EXPECT_EQ(read_cp_public_key(dir_ / kCpPublicKeyFile)->version, 2u);
  const cp::Policy member = *cp::parse_policy(r->pk, "member");
  const Bytes message = {7};
  EXPECT_EQ(cp::decrypt(cp_key(key("k")), *cp::encrypt(r->pk, member, message)), message);

  // Without the staged key, a public key behind its master key is a clear error, not a guess.
  std::ofstream(dir_ / kCpPublicKeyFile, std::ios::binary)
      .write(reinterpret_cast<const char*>(old_pk.data()),
             static_cast<std::streamsize>(old_pk.size()));
  auto split = read_cp_authority(dir_);
  ASSERT_FALSE(split);
  EXPECT_NE(split.error().message.find("cpabe.pk is at system version 1, cpabe.mk at 2"),
            std::string::npos)
      << split.error().message;
  // Keys of two different systems.
  const fs::path other = tmp_.path() / "other";
  dir_ = other;
  ASSERT_EQ(setup_cp().status, 0);
  fs::copy_file(tmp_.path() / "authority" / kCpMasterKeyFile, other / kCpMasterKeyFile,
                fs::copy_options::overwrite_existing);
  auto mixed = read_cp_authority(other);
  ASSERT_FALSE(mixed);
  EXPECT_NE(mixed.error().message.find("different CP-ABE systems"), std::string::npos);
}

TEST_F(AccessCommands, ARevocationListThatIsNotOursIsRefused) {
  ASSERT_EQ(setup_cp().status, 0);
  ASSERT_EQ(issue_cp("member", key("k")).status, 0);
  std::ofstream(dir_ / kCpRevocationsFile) << "2 10x\n";
  const Ran r = rekey(key("k"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("cpabe.revoked:1: expected \"VERSION FLAGS\""), std::string::npos) << r.err;
  EXPECT_EQ(read_cp_authority(dir_)->pk.version, 1u);
}

TEST(AbeSchemeNames, FullAndShortNamesParse) {
  EXPECT_EQ(abe_scheme_from_string("kp-abe-gpsw"), AbeScheme::kp_abe_gpsw);
  EXPECT_EQ(abe_scheme_from_string("kp-gpsw"), AbeScheme::kp_abe_gpsw);
  EXPECT_EQ(abe_scheme_from_string("cp-abe-versioned"), AbeScheme::cp_abe_versioned);
  EXPECT_EQ(abe_scheme_from_string("cp-versioned"), AbeScheme::cp_abe_versioned);
  EXPECT_FALSE(abe_scheme_from_string("cp"));
  EXPECT_FALSE(abe_scheme_from_string("kp-abe"));
  EXPECT_FALSE(abe_scheme_from_string(""));
}

}  // namespace
}  // namespace mchain::agent
