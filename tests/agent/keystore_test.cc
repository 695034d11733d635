// The host keystore: user and VM keys as 0600 files in 0700 directories, never replaced.
#include "agent/keystore.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "temp_dir.h"

namespace mchain::agent {
namespace {

mode_t mode_of(const std::filesystem::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST(Keystore, KeepsUserKeysPrivateAndNeverReplacesThem) {
  testing::TempDir tmp("mchain-keystore");
  const Keystore keystore(tmp.path() / "keys");
  EXPECT_FALSE(keystore.user_key("alice"));
  auto alice = *crypto::PrivateKey::generate(crypto::SigAlg::ecdsa_p256_sha256);
  ASSERT_TRUE(keystore.put_user_key("alice", alice));
  auto read = keystore.user_key("alice");
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->public_key(), alice.public_key());
  EXPECT_EQ(mode_of(tmp.path() / "keys"), 0700u);
  EXPECT_EQ(mode_of(tmp.path() / "keys" / "users"), 0700u);
  EXPECT_EQ(mode_of(tmp.path() / "keys" / "users" / "alice.key"), 0600u);
  auto other = *crypto::PrivateKey::generate(crypto::SigAlg::ed25519);
  EXPECT_FALSE(keystore.put_user_key("alice", other));
  EXPECT_EQ(keystore.user_key("alice")->public_key(), alice.public_key());
  // A name that is not an id could escape the directory.
  EXPECT_FALSE(keystore.put_user_key("../../etc/x", other));
  EXPECT_FALSE(keystore.user_key("../../etc/x"));
}

TEST(Keystore, MakesAVmKeyOnceAndTakesAHandedOverOneOnlyIfItIsTheSame) {
  testing::TempDir tmp("mchain-keystore");
  const Keystore keystore(tmp.path() / "keys");
  const Uuid vm = *Uuid::parse("6f1c2e9a-0b7d-4c3e-9f10-2a3b4c5d6e7f");
  EXPECT_FALSE(keystore.has_vm_key(vm));
  EXPECT_FALSE(keystore.vm_key(vm));
  auto made = keystore.create_vm_key(vm);
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_TRUE(keystore.has_vm_key(vm));
  EXPECT_EQ(keystore.vm_key(vm)->public_key(), made->public_key());
  EXPECT_EQ(mode_of(tmp.path() / "keys" / "vms" / (vm.to_string() + ".key")), 0600u);
  EXPECT_FALSE(keystore.create_vm_key(vm)) << "a second key for the same VM";
  EXPECT_TRUE(keystore.put_vm_key(vm, *made)) << "the same key handed over again";
  auto different = *crypto::PrivateKey::generate(crypto::SigAlg::ecdsa_p256_sha256);
  EXPECT_FALSE(keystore.put_vm_key(vm, different));
  EXPECT_EQ(keystore.vm_key(vm)->public_key(), made->public_key());
}

TEST(Keystore, KeepsOneDataKeyPerPolicyVersionAndForgetsAVmKeyOnRequest) {
  testing::TempDir tmp("mchain-keystore");
  const Keystore keystore(tmp.path() / "keys");
  const Uuid vm = *Uuid::parse("6f1c2e9a-0b7d-4c3e-9f10-2a3b4c5d6e7f");
  EXPECT_FALSE(keystore.data_key(vm, 1));
  const crypto::AeadKey k1 = crypto::random_aead_key();
  const crypto::AeadKey k2 = crypto::random_aead_key();
  ASSERT_TRUE(keystore.put_data_key(vm, 1, k1));
  ASSERT_TRUE(keystore.put_data_key(vm, 2, k2));
  EXPECT_EQ(*keystore.data_key(vm, 1), k1);
  EXPECT_EQ(*keystore.data_key(vm, 2), k2);
  EXPECT_EQ(mode_of(tmp.path() / "keys" / "vms" / (vm.to_string() + ".v1.data")), 0600u);
  EXPECT_TRUE(keystore.put_data_key(vm, 1, k1)) << "the same key again (a hand-off)";
  EXPECT_FALSE(keystore.put_data_key(vm, 1, k2)) << "another key for a version";
  EXPECT_EQ(*keystore.data_key(vm, 1), k1);

  ASSERT_TRUE(keystore.create_vm_key(vm));
  ASSERT_TRUE(keystore.remove_vm_key(vm));
  EXPECT_FALSE(keystore.has_vm_key(vm));
  EXPECT_TRUE(keystore.remove_vm_key(vm)) << "removing a key that is not there";
  EXPECT_EQ(*keystore.data_key(vm, 2), k2) << "the history stays readable";
}

}  // namespace
}  // namespace mchain::agent
