// mchainctl's access-control commands (SPEC §8): the cluster's ABE authorities and verifiers.
// The authority directory's files are described in agent/abe_files.h.
//
// KP-ABE (GPSW): keys hold access trees, policy versions seal to attribute sets.
//   abe setup --dir DIR                       DIR/abe.mpk (every mchaind's abe.public_key) and
//                                             DIR/abe.msk (secret)
//   verifier issue --authority DIR --policy EXPR --out FILE
//   verifier revoke DOMAIN ATTRIBUTE          a policy revision without ATTRIBUTE: keys that
//                                             need it read nothing written afterwards
//
// Versioned CP-ABE: keys hold attribute sets, policy versions seal under AND expressions.
//   abe setup --scheme cp-versioned --universe NAMES --dir DIR
//                                             DIR/cpabe.pk (abe.cp_public_key) and cpabe.mk
//   verifier issue --authority DIR --attributes NAMES --out FILE
//   abe rekey --authority DIR --revoke FILE   system version v -> v+1 without FILE's key
//   verifier update --authority DIR --key FILE
//                                             brings a remaining key to the current version
//   verifier revoke DOMAIN                    a policy revision sealed under the new version
//
// Either scheme:
//   verifier read DOMAIN --key FILE           a VM's reports, decrypted here with the key
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

#include "agent/daemon_commands.h"

namespace mchain::agent {

int abe_setup(const std::filesystem::path& dir, std::ostream& out, std::ostream& err);
// `universe`: the attribute names, comma-separated, in the order the system keeps for ever.
int abe_setup_cp(const std::filesystem::path& dir, const std::string& universe, std::ostream& out,
                 std::ostream& err);

int verifier_issue(const std::filesystem::path& authority_dir, const std::string& policy,
                   const std::filesystem::path& key_file, std::ostream& out, std::ostream& err);
// `attributes`: comma-separated names of the authority's universe.
int verifier_issue_cp(const std::filesystem::path& authority_dir, const std::string& attributes,
                      const std::filesystem::path& key_file, std::ostream& out, std::ostream& err);

// Re-keys every attribute occurrence the revoked key holds: writes the re-key file, then the new
// master and public key. Keys left at the old version open nothing sealed afterwards.
int abe_rekey(const std::filesystem::path& authority_dir,
              const std::filesystem::path& revoked_key_file, std::ostream& out, std::ostream& err);
// Applies the authority's re-keys, in order, from the key's version to the current one. The
// re-keys stay with the authority: one applied to the revoked key would restore it.
int verifier_update(const std::filesystem::path& authority_dir,
                    const std::filesystem::path& key_file, std::ostream& out, std::ostream& err);

// Asks mchaind for the VM's encoded records and opens what the key allows: every report of each
// version it can read, and for the others the part of its policy the version does not meet.
// Exit 0 when every version was readable, 1 when some were refused, as for any failure.
int verifier_read(const DaemonCommandOptions& options, const std::string& domain,
                  const std::filesystem::path& key_file, std::ostream& out, std::ostream& err);

// KP-ABE policies: the next version without `attribute`. CP-ABE policies (no attribute): the next
// version under the same expression, sealed at the authority's new system version; refused while
// mchaind's public key is still at the version the policy was sealed under.
int verifier_revoke(const DaemonCommandOptions& options, const std::string& domain,
                    const std::optional<std::string>& attribute, std::ostream& out,
                    std::ostream& err);

}  // namespace mchain::agent
