// Package validation (paper Algorithm 1, with fine-grained results).
#pragma once

#include <string>

#include "chain/package/package.h"
#include "chain/package/view.h"

namespace mchain {

class SignatureCache;

enum class Verdict : std::uint8_t {
  ok = 0,
  malformed,
  unknown_vm,
  unknown_user,
  unknown_node,
  policy_hash_mismatch,
  stale_policy,  // the package names an older policy than the one in force at t
  bad_vm_signature,
  bad_user_signature,
  bad_node_signature,
  node_not_hosting_vm_at_t,
  user_not_owner_at_t,
  duplicate,
  timestamp_skew,
};
// Kebab-case names used in logs, metrics and the CLI ("node-not-hosting-vm-at-t").
std::string_view to_string(Verdict verdict);

struct ValidationResult {
  Verdict verdict = Verdict::ok;
  std::string detail;  // why, for the log and the alarm; empty when ok

  bool ok() const { return verdict == Verdict::ok; }
};

struct ValidationOptions {
  // Freshness applies to packages arriving now; history re-validated from blocks skips it.
  bool check_timestamp = true;
  TimeUs now = 0;  // 0: the system clock
  TimeUs max_skew = 120'000'000;
  // Signature checks that passed before (on arrival) are skipped; passing ones are added.
  // Every other check still runs, since the view may have changed since. Not owned.
  SignatureCache* signature_cache = nullptr;
};

// Checks one package against the view. Returns ok or exactly one failure; cheap checks run
// before the three signature verifications.
ValidationResult validate(const Package& package, const View& view,
                          const ValidationOptions& options = {});
// Decodes, then validates: any decoding failure is `malformed` with the decoder's message.
ValidationResult validate_encoded(ByteView encoded, const View& view,
                                  const ValidationOptions& options = {},
                                  const PackageLimits& limits = {});

}  // namespace mchain
