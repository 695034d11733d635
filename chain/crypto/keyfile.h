// PEM key files. Private keys are written with mode 0600 (atomically: temp file, fsync,
// rename) and refused on read when the group or others may read them.
#pragma once

#include "chain/crypto/sign.h"

#include <filesystem>

namespace mchain::crypto {

Status write_private_key_file(const std::filesystem::path& path, const PrivateKey& key);
Result<PrivateKey> read_private_key_file(const std::filesystem::path& path);

Status write_public_key_file(const std::filesystem::path& path, const PublicKey& key);
Result<PublicKey> read_public_key_file(const std::filesystem::path& path);

}  // namespace mchain::crypto
