// The ABE authority's files and verifier keys on disk: what `mchainctl abe …` and
// `mchainctl verifier …` write and read, and what mchaind's "abe" section points at.
//
// An authority directory holds either scheme or both:
//   abe.mpk, abe.msk        KP-ABE (GPSW): the public key every mchaind seals under, and the
//                           master secret key that issues verifier keys (0600)
//   cpabe.pk, cpabe.mk      versioned CP-ABE at the system's current version (mk 0600)
//   cpabe.vN-vM.rk          the re-key of each `abe rekey` (0600): brings the remaining
//                           verifier keys from system version N to M
//   cpabe.revoked           the attribute set each re-key revoked: one line "M FLAGS" per
//                           re-key to version M, FLAGS one 0/1 per universe attribute
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string_view>

#include "abe/cpabe/cpabe.h"
#include "abe/kpabe/kpabe.h"
#include "agent/key_chain.h"
#include "chain/error.h"

namespace mchain::agent {

inline constexpr std::string_view kKpPublicKeyFile = "abe.mpk";
inline constexpr std::string_view kKpMasterKeyFile = "abe.msk";
inline constexpr std::string_view kCpPublicKeyFile = "cpabe.pk";
inline constexpr std::string_view kCpMasterKeyFile = "cpabe.mk";
inline constexpr std::string_view kCpRevocationsFile = "cpabe.revoked";

// dir/cpabe.v<from>-v<to>.rk
std::filesystem::path cp_rekey_file(const std::filesystem::path& dir, std::uint32_t from,
                                    std::uint32_t to);

// Each reads and fully validates one file; errors name the file.
Result<abe::kp::MasterPublicKey> read_kp_public_key(const std::filesystem::path& file);
Result<abe::kp::MasterSecretKey> read_kp_master_key(const std::filesystem::path& file);
Result<abe::cpabe::PublicKey> read_cp_public_key(const std::filesystem::path& file);
Result<abe::cpabe::ReKey> read_cp_rekey(const std::filesystem::path& file);
// A verifier key of either scheme.
Result<VerifierKey> read_verifier_key(const std::filesystem::path& file);

// A CP-ABE authority directory's public and master key, checked to belong to one system at one
// version. A write_cp_authority cut short after its master key moved in is completed here.
struct CpAuthority {
  abe::cpabe::PublicKey pk;
  abe::cpabe::MasterKey mk;
};
Result<CpAuthority> read_cp_authority(const std::filesystem::path& dir);

// The attribute set revoked by the re-key to each system version (none if no file).
using CpRevocations = std::map<std::uint32_t, abe::cpabe::AttributeFlags>;
Result<CpRevocations> read_cp_revocations(const std::filesystem::path& dir);
// Adds the re-key to `version` (written before the re-key itself, so none goes unrecorded).
Status record_cp_revocation(const std::filesystem::path& dir, std::uint32_t version,
                            const abe::cpabe::AttributeFlags& revoked);

// Replaces the authority's keys (setup, rekey) so that a crash at any point leaves either the old
// pair or one read_cp_authority can complete: both are staged as <file>.next, then renamed,
// master key first.
Status write_cp_authority(const std::filesystem::path& dir, const CpAuthority& authority);

}  // namespace mchain::agent
