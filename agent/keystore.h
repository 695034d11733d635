// The host's keystore (SPEC §4): the private keys this node signs with besides its own — the
// VM keys of the VMs it hosts and the user keys of their owners — as files of mode 0600 in
// directories of mode 0700 under the state directory:
//   DIR/users/<user>.key    DIR/vms/<vm uuid>.key    DIR/vms/<vm uuid>.v<N>.data
// The last are the VM's data keys K_uv(N), one per policy version N (SPEC §8): this host
// encrypts the VM's reports with the newest and reads older ones with the rest.
// A key sealed to a TPM replaces these files when TPM support lands (the TPM issue).
#pragma once

#include <filesystem>
#include <string>

#include "chain/crypto/aead.h"
#include "chain/crypto/sign.h"
#include "chain/error.h"
#include "chain/types.h"

namespace mchain::agent {

class Keystore {
 public:
  explicit Keystore(std::filesystem::path directory) : dir_(std::move(directory)) {}
  const std::filesystem::path& directory() const { return dir_; }

  // The user's private key, if this host holds it.
  Result<crypto::PrivateKey> user_key(const std::string& user) const;
  Status put_user_key(const std::string& user, const crypto::PrivateKey& key) const;

  bool has_vm_key(const Uuid& vm) const;
  Result<crypto::PrivateKey> vm_key(const Uuid& vm) const;
  // A new ECDSA P-256 key for a VM seen for the first time; refuses to replace one.
  Result<crypto::PrivateKey> create_vm_key(const Uuid& vm) const;
  // Stores a key handed over on migration; refuses to replace a different one.
  Status put_vm_key(const Uuid& vm, const crypto::PrivateKey& key) const;
  // Removes a VM's private key (the VM left this host, or is gone): this host stops signing
  // for it. Its data keys stay, so that its history remains readable here.
  Status remove_vm_key(const Uuid& vm) const;

  // K_uv(version), if this host holds it.
  Result<crypto::AeadKey> data_key(const Uuid& vm, std::uint64_t version) const;
  // Stores K_uv(version); refuses to replace a different key of the same version.
  Status put_data_key(const Uuid& vm, std::uint64_t version, const crypto::AeadKey& key) const;

 private:
  std::filesystem::path user_path(const std::string& user) const;
  std::filesystem::path vm_path(const Uuid& vm) const;
  std::filesystem::path data_key_path(const Uuid& vm, std::uint64_t version) const;
  Status make_private_dir(const std::filesystem::path& dir) const;
  Status put(const std::filesystem::path& path, const crypto::PrivateKey& key) const;

  std::filesystem::path dir_;
};

}  // namespace mchain::agent
