// Reports: what changed in a guest since its baseline, in Tripwire's terms. A report is the
// measurement data D_uv that goes, encrypted, into a data package.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chain/error.h"
#include "chain/types.h"
#include "measure/collect/snapshot.h"
#include "measure/policy/policy.h"

namespace mchain::measure {

struct PropertyChange {
  Property property;
  std::string old_value;
  std::string new_value;
  bool operator==(const PropertyChange&) const = default;
};

enum class ChangeKind : std::uint8_t { kAdded, kRemoved, kChanged };
std::string_view change_kind_name(ChangeKind k);  // "added", "removed", "changed"

struct ObjectChange {
  ChangeKind kind;
  std::string path;
  std::string rule;  // rulename of the governing rule
  std::uint32_t severity = 0;
  std::vector<PropertyChange> changes;  // kChanged only
  bool operator==(const ObjectChange&) const = default;
};

struct Report {
  // Run metadata.
  std::string vm;
  Hash256 policy_hash{};
  std::string collector;
  TimeUs started = 0;
  TimeUs finished = 0;
  bool baseline_created = false;  // first run of this policy: nothing to compare yet
  std::uint64_t objects_scanned = 0;
  // Properties some rule asked for that the collector could not know.
  PropertySet not_collected;

  std::vector<ObjectChange> changes;  // sorted by path
  std::vector<std::string> errors;    // the run failed or was partial; the snapshot's warnings

  std::size_t count(ChangeKind k) const;
  // Tripwire's check exit status: 1 added, 2 removed, 4 changed, 8 error, or-ed together.
  int exit_code() const;

  bool operator==(const Report&) const = default;
};

// Compares `current` against `baseline` under `policy`. With no baseline, the report only
// records that one was created. Properties are compared when the rule's mask asks for them
// and both runs collected them; a growing ('l') file is flagged only when it shrinks.
Report compare(const Policy& policy, const Snapshot* baseline, const Snapshot& current);
// A report for a run that could not be completed (agent gone, guest rebooted…).
Report failed_run(const Policy& policy, std::string vm, std::string collector, TimeUs started,
                  std::string error);

// Canonical CBOR (the package payload D_uv) and back.
Bytes encode_report(const Report& report);
Result<Report> decode_report(ByteView bytes);

nlohmann::json report_to_json(const Report& report);

// Text like twprint's: kSummary lists counts and the objects by kind; kDetail adds every
// changed property with its old and new value. Guest paths are printed with control
// characters escaped, so a file name cannot forge report lines.
enum class ReportLevel { kSummary, kDetail };
std::string report_to_text(const Report& report, const Policy& policy, ReportLevel level);

}  // namespace mchain::measure
