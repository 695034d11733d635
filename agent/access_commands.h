// mchainctl's access-control commands (SPEC §8): the cluster's ABE authority and verifiers.
//
//   abe setup --dir DIR                       a new KP-ABE authority: DIR/abe.mpk (public: every
//                                             mchaind's abe.public_key) and DIR/abe.msk (secret)
//   verifier issue --authority DIR --policy EXPR --out FILE
//                                             a verifier key for an access tree over attributes
//   verifier read DOMAIN --key FILE           a VM's reports, decrypted here with the key
//   verifier revoke DOMAIN ATTRIBUTE          a policy revision without ATTRIBUTE: keys that
//                                             need it read nothing written afterwards
#pragma once

#include <filesystem>
#include <ostream>
#include <string>

#include "agent/daemon_commands.h"

namespace mchain::agent {

int abe_setup(const std::filesystem::path& dir, std::ostream& out, std::ostream& err);

int verifier_issue(const std::filesystem::path& authority_dir, const std::string& policy,
                   const std::filesystem::path& key_file, std::ostream& out, std::ostream& err);

// Asks mchaind for the VM's encoded records and opens what the key allows: every report of each
// version it can read, and for the others the part of its policy the version does not meet.
// Exit 0 when every version was readable, 1 when some were refused, as for any failure.
int verifier_read(const DaemonCommandOptions& options, const std::string& domain,
                  const std::filesystem::path& key_file, std::ostream& out, std::ostream& err);

int verifier_revoke(const DaemonCommandOptions& options, const std::string& domain,
                    const std::string& attribute, std::ostream& out, std::ostream& err);

}  // namespace mchain::agent
