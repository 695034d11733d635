#include "agent/abe_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <string>
#include <system_error>

#include "chain/file_io.h"

namespace mchain::agent {

namespace {

namespace fs = std::filesystem;
namespace cp = abe::cpabe;

// The largest CP-ABE objects (n = 1024 attributes of 255 characters) are under 1 MiB.
constexpr std::size_t kMaxAbeFile = 4 << 20;

Result<std::string> read_abe_file(const fs::path& file, std::string_view what) {
  return read_small_file(file, kMaxAbeFile, what);
}

// Decodes with a CP-ABE from_bytes, whose errors are codes.
template <class T>
Result<T> decode_cp(const fs::path& file, std::string_view what,
                    std::expected<T, cp::CpAbeError> (*decode)(ByteView)) {
  auto text = read_abe_file(file, what);
  if (!text) return std::unexpected(text.error());
  auto value = decode(as_bytes(*text));
  if (!value) {
    return fail(file.string() + ": not a " + std::string(what) + " (" +
                cp::describe(value.error()) + ")");
  }
  return *std::move(value);
}

template <class T>
Result<T> decode_kp(const fs::path& file, std::string_view what, Result<T> (*decode)(ByteView)) {
  auto text = read_abe_file(file, what);
  if (!text) return std::unexpected(text.error());
  auto value = decode(as_bytes(*text));
  if (!value) return fail(file.string() + ": " + value.error().message);
  return value;
}

fs::path staged_file(const fs::path& dir, std::string_view name) {
  return dir / (std::string(name) + ".next");
}

// rename(2), then fsync of the directory so that the rename survives a crash.
Status rename_durably(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return fail("rename " + from.string() + " -> " + to.string() + ": " +
                std::generic_category().message(errno));
  }
  Fd dir(::open(to.parent_path().empty() ? "." : to.parent_path().c_str(),
                O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir || ::fsync(dir.get()) != 0) {
    return fail("fsync of directory " + to.parent_path().string() + ": " +
                std::generic_category().message(errno));
  }
  return {};
}

}  // namespace

fs::path cp_rekey_file(const fs::path& dir, std::uint32_t from, std::uint32_t to) {
  return dir / ("cpabe.v" + std::to_string(from) + "-v" + std::to_string(to) + ".rk");
}

Result<abe::kp::MasterPublicKey> read_kp_public_key(const fs::path& file) {
  return decode_kp<abe::kp::MasterPublicKey>(file, "KP-ABE public key",
                                             &abe::kp::MasterPublicKey::decode);
}

Result<abe::kp::MasterSecretKey> read_kp_master_key(const fs::path& file) {
  return decode_kp<abe::kp::MasterSecretKey>(file, "KP-ABE master secret key",
                                             &abe::kp::MasterSecretKey::decode);
}

Result<cp::PublicKey> read_cp_public_key(const fs::path& file) {
  return decode_cp<cp::PublicKey>(file, "CP-ABE public key", &cp::PublicKey::from_bytes);
}

Result<cp::ReKey> read_cp_rekey(const fs::path& file) {
  return decode_cp<cp::ReKey>(file, "CP-ABE re-key", &cp::ReKey::from_bytes);
}

Result<VerifierKey> read_verifier_key(const fs::path& file) {
  auto text = read_abe_file(file, "verifier key");
  if (!text) return std::unexpected(text.error());
  const ByteView bytes = as_bytes(*text);
  auto kp = abe::kp::UserKey::decode(bytes);
  if (kp) return VerifierKey{*std::move(kp)};
  auto cpk = cp::UserKey::from_bytes(bytes);
  if (cpk) return VerifierKey{*std::move(cpk)};
  return fail(file.string() + ": not a verifier key (as KP-ABE: " + kp.error().message +
              "; as CP-ABE: " + cp::describe(cpk.error()) + ")");
}

Result<CpAuthority> read_cp_authority(const fs::path& dir) {
  auto pk = read_cp_public_key(dir / kCpPublicKeyFile);
  if (!pk) return std::unexpected(pk.error());
  auto mk = decode_cp<cp::MasterKey>(dir / kCpMasterKeyFile, "CP-ABE master key",
                                     &cp::MasterKey::from_bytes);
  if (!mk) return std::unexpected(mk.error());
  if (pk->sys_id != mk->sys_id || pk->n() != mk->n() || pk->w() != mk->w()) {
    return fail(dir.string() + ": " + std::string(kCpPublicKeyFile) + " and " +
                std::string(kCpMasterKeyFile) + " belong to different CP-ABE systems");
  }
  if (pk->version < mk->version) {
    // write_cp_authority stopped between its renames: its staged public key finishes it.
    const fs::path staged = staged_file(dir, kCpPublicKeyFile);
    auto next = read_cp_public_key(staged);
    if (next && next->sys_id == mk->sys_id && next->version == mk->version) {
      if (auto moved = rename_durably(staged, dir / kCpPublicKeyFile); !moved) {
        return std::unexpected(moved.error());
      }
      pk = std::move(next);
    }
  }
  if (pk->version != mk->version) {
    return fail(dir.string() + ": " + std::string(kCpPublicKeyFile) + " is at system version " +
                std::to_string(pk->version) + ", " + std::string(kCpMasterKeyFile) + " at " +
                std::to_string(mk->version) + ": the two files are from different backups");
  }
  return CpAuthority{*std::move(pk), *std::move(mk)};
}

Result<CpRevocations> read_cp_revocations(const fs::path& dir) {
  const fs::path file = dir / kCpRevocationsFile;
  std::error_code ec;
  if (!fs::exists(file, ec)) return CpRevocations{};
  auto text = read_abe_file(file, "CP-ABE revocation list");
  if (!text) return std::unexpected(text.error());
  CpRevocations out;
  std::istringstream lines(*text);
  std::string line;
  for (std::size_t number = 1; std::getline(lines, line); ++number) {
    std::istringstream fields(line);
    std::uint32_t version = 0;
    std::string flags;
    std::string rest;
    if (!(fields >> version >> flags) || (fields >> rest) || version < 2 ||
        flags.find_first_not_of("01") != std::string::npos) {
      return fail(file.string() + ":" + std::to_string(number) + ": expected \"VERSION FLAGS\"");
    }
    cp::AttributeFlags s;
    for (const char c : flags) s.push_back(c == '1');
    out[version] = std::move(s);
  }
  return out;
}

Status record_cp_revocation(const fs::path& dir, std::uint32_t version,
                            const cp::AttributeFlags& revoked) {
  auto known = read_cp_revocations(dir);
  if (!known) return std::unexpected(known.error());
  (*known)[version] = revoked;
  std::string text;
  for (const auto& [v, s] : *known) {
    text += std::to_string(v) + ' ';
    for (const bool bit : s) text += bit ? '1' : '0';
    text += '\n';
  }
  return write_file_atomically(dir / kCpRevocationsFile, text, 0600, "CP-ABE revocation list");
}

Status write_cp_authority(const fs::path& dir, const CpAuthority& authority) {
  // Both staged and synced first; then the master key moves in before the public key, so a
  // crash leaves the old pair, or a new master key with its public key staged beside it
  // (read_cp_authority completes that), never a public key without its master key.
  const fs::path mk_next = staged_file(dir, kCpMasterKeyFile);
  const fs::path pk_next = staged_file(dir, kCpPublicKeyFile);
  const Bytes mk = authority.mk.to_bytes();
  const Bytes pk = authority.pk.to_bytes();
  if (auto s = write_file_atomically(mk_next, as_chars(mk), 0600, "CP-ABE master key"); !s) {
    return s;
  }
  if (auto s = write_file_atomically(pk_next, as_chars(pk), 0644, "CP-ABE public key"); !s) {
    return s;
  }
  if (auto s = rename_durably(mk_next, dir / kCpMasterKeyFile); !s) return s;
  return rename_durably(pk_next, dir / kCpPublicKeyFile);
}

}  // namespace mchain::agent
