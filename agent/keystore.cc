#include "agent/keystore.h"

#include <sys/stat.h>

#include "chain/crypto/keyfile.h"
#include "chain/file_io.h"

namespace mchain::agent {

namespace fs = std::filesystem;

fs::path Keystore::user_path(const std::string& user) const {
  return dir_ / "users" / (user + ".key");
}

fs::path Keystore::vm_path(const Uuid& vm) const {
  return dir_ / "vms" / (vm.to_string() + ".key");
}

fs::path Keystore::data_key_path(const Uuid& vm, std::uint64_t version) const {
  return dir_ / "vms" / (vm.to_string() + ".v" + std::to_string(version) + ".data");
}

Status Keystore::make_private_dir(const fs::path& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail("keystore: cannot create " + dir.string() + ": " + ec.message());
  // Only this user may list or enter the key directories.
  for (const fs::path& d : {dir_, dir}) {
    if (::chmod(d.c_str(), 0700) != 0) return fail("keystore: cannot restrict " + d.string());
  }
  return {};
}

Status Keystore::put(const fs::path& path, const crypto::PrivateKey& key) const {
  if (auto made = make_private_dir(path.parent_path()); !made) return made;
  return crypto::write_private_key_file(path, key);  // mode 0600
}

Result<crypto::PrivateKey> Keystore::user_key(const std::string& user) const {
  if (!valid_id(user)) return fail("keystore: invalid user name '" + user + "'");
  const fs::path path = user_path(user);
  if (!fs::exists(path)) {
    return fail("this host holds no key for user '" + user + "' (" + path.string() + ")");
  }
  return crypto::read_private_key_file(path);
}

Status Keystore::put_user_key(const std::string& user, const crypto::PrivateKey& key) const {
  if (!valid_id(user)) return fail("keystore: invalid user name '" + user + "'");
  if (fs::exists(user_path(user))) return fail("keystore: user '" + user + "' already has a key");
  return put(user_path(user), key);
}

bool Keystore::has_vm_key(const Uuid& vm) const { return fs::exists(vm_path(vm)); }

Result<crypto::PrivateKey> Keystore::vm_key(const Uuid& vm) const {
  if (!has_vm_key(vm)) return fail("this host holds no key for VM " + vm.to_string());
  return crypto::read_private_key_file(vm_path(vm));
}

Result<crypto::PrivateKey> Keystore::create_vm_key(const Uuid& vm) const {
  if (has_vm_key(vm)) return fail("keystore: VM " + vm.to_string() + " already has a key");
  auto key = crypto::PrivateKey::generate(crypto::SigAlg::ecdsa_p256_sha256);
  if (!key) return key;
  if (auto stored = put(vm_path(vm), *key); !stored) return std::unexpected(stored.error());
  return key;
}

Status Keystore::put_vm_key(const Uuid& vm, const crypto::PrivateKey& key) const {
  if (has_vm_key(vm)) {
    auto held = vm_key(vm);
    if (held && held->public_key() == key.public_key()) return {};
    return fail("keystore: VM " + vm.to_string() + " already has a different key");
  }
  return put(vm_path(vm), key);
}

Status Keystore::remove_vm_key(const Uuid& vm) const {
  std::error_code ec;
  fs::remove(vm_path(vm), ec);
  if (ec)
    return fail("keystore: cannot remove the key of VM " + vm.to_string() + ": " + ec.message());
  return {};
}

Result<crypto::AeadKey> Keystore::data_key(const Uuid& vm, std::uint64_t version) const {
  const fs::path path = data_key_path(vm, version);
  if (!fs::exists(path)) {
    return fail("this host holds no data key for policy v" + std::to_string(version) + " of VM " +
                vm.to_string());
  }
  auto text = read_small_file(path, 64, "data key");
  if (!text) return std::unexpected(text.error());
  crypto::AeadKey key{};
  if (text->size() != key.size()) return fail("data key " + path.string() + ": not 32 bytes");
  std::copy(text->begin(), text->end(), key.begin());
  return key;
}

Status Keystore::put_data_key(const Uuid& vm, std::uint64_t version,
                              const crypto::AeadKey& key) const {
  if (auto held = data_key(vm, version)) {
    if (*held == key) return {};
    return fail("keystore: VM " + vm.to_string() + " already has a different data key for v" +
                std::to_string(version));
  }
  const fs::path path = data_key_path(vm, version);
  if (auto made = make_private_dir(path.parent_path()); !made) return made;
  return write_file_atomically(path, as_chars(key), 0600, "data key");
}

}  // namespace mchain::agent
