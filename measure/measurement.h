// One measurement of one guest, end to end: open a session with its agent, pick the
// collector the guest allows, collect, compare with the baseline. This is what
// `mchainctl measure` and the agent's scheduler call.
#pragma once

#include <optional>
#include <string>

#include "measure/collect/collector.h"
#include "measure/collect/snapshot.h"
#include "measure/policy/policy.h"
#include "measure/qga/client.h"
#include "measure/report/report.h"

namespace mchain::measure {

enum class CollectorChoice { kAuto, kBulk, kContent };

struct MeasureOptions {
  std::string vm;  // for the report: the VM's UUID or name
  CollectorChoice collector = CollectorChoice::kAuto;
  BulkOptions bulk;
  ContentOptions content;
};

struct Measurement {
  Report report;
  // The new snapshot; absent when the run failed (then the report carries the error and the
  // baseline must stay as it was).
  std::optional<Snapshot> snapshot;
};

Measurement measure_guest(qga::Client& client, const Policy& policy, const Snapshot* baseline,
                          const MeasureOptions& options);

}  // namespace mchain::measure
