#include "measure/measurement.h"

namespace mchain::measure {

namespace {

qga::Result<std::unique_ptr<Collector>> pick(qga::Client& client, const MeasureOptions& options) {
  switch (options.collector) {
    case CollectorChoice::kAuto: return choose_collector(client, options.bulk);
    case CollectorChoice::kBulk: return make_bulk_collector(client, options.bulk);
    case CollectorChoice::kContent: return make_content_collector(client, options.content);
  }
  return qga::fail(qga::Errc::kCommandDisabled, "no collector");
}

std::string collector_name(CollectorChoice c) {
  return c == CollectorChoice::kContent ? "content" : c == CollectorChoice::kBulk ? "bulk" : "";
}

}  // namespace

Measurement measure_guest(qga::Client& client, const Policy& policy, const Snapshot* baseline,
                          const MeasureOptions& options) {
  const TimeUs started = now_us();
  auto failed = [&](const qga::Error& e, std::string collector) {
    return Measurement{failed_run(policy, options.vm, std::move(collector), started,
                                  std::string(qga::errc_name(e.code)) + ": " + e.message),
                       std::nullopt};
  };
  if (auto session = client.begin_session(); !session) {
    return failed(session.error(), collector_name(options.collector));
  }
  auto collector = pick(client, options);
  if (!collector) return failed(collector.error(), collector_name(options.collector));
  auto snapshot = (*collector)->collect(policy);
  if (!snapshot) return failed(snapshot.error(), std::string((*collector)->name()));
  snapshot->vm = options.vm;
  Report report = compare(policy, baseline, *snapshot);
  return Measurement{std::move(report), std::move(*snapshot)};
}

}  // namespace mchain::measure
