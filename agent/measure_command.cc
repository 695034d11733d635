#include "agent/measure_command.h"

#include <ostream>

#include "chain/file_io.h"

namespace mchain::agent {

namespace {

constexpr std::size_t kMaxBaselineBytes = 1u << 30;

measure::qga::Result<std::unique_ptr<measure::qga::Transport>> connect(
    const MeasureCommandOptions& o) {
  if (o.qga_socket) return measure::qga::connect_unix_socket(*o.qga_socket);
  return measure::qga::connect_libvirt(o.libvirt_uri, *o.domain);
}

}  // namespace

int run_measure(const MeasureCommandOptions& options, std::ostream& out, std::ostream& err) {
  namespace qga = measure::qga;
  auto policy = measure::load_policy(options.policy);
  if (!policy) {
    err << "mchainctl measure: " << policy.error().message << '\n';
    return kMeasureError;
  }
  std::optional<measure::Snapshot> baseline;
  if (options.baseline && std::filesystem::exists(*options.baseline)) {
    auto bytes = read_small_file(*options.baseline, kMaxBaselineBytes, "baseline");
    if (!bytes) {
      err << "mchainctl measure: " << bytes.error().message << '\n';
      return kMeasureError;
    }
    auto decoded = measure::decode_snapshot(as_bytes(*bytes));
    if (!decoded) {
      err << "mchainctl measure: baseline '" << options.baseline->string()
          << "' is not a baseline file: " << decoded.error().message << '\n';
      return kMeasureError;
    }
    baseline = std::move(*decoded);
  }

  measure::Measurement m;
  if (auto transport = connect(options); !transport) {
    m.report = measure::failed_run(
        *policy, options.measure.vm, "", now_us(),
        std::string(qga::errc_name(transport.error().code)) + ": " + transport.error().message);
  } else {
    qga::ClientOptions client_options;
    client_options.command_timeout = options.command_timeout;
    qga::Client client(std::move(*transport), client_options);
    m = measure::measure_guest(client, *policy, baseline ? &*baseline : nullptr, options.measure);
  }

  // The baseline changes only after a run that completed: a failed run must not replace
  // good evidence with nothing.
  if (options.baseline && m.snapshot && (!baseline || options.update_baseline)) {
    auto written = write_file_atomically(
        *options.baseline, as_chars(measure::encode_snapshot(*m.snapshot)), 0600, "baseline");
    if (!written) m.report.errors.push_back(written.error().message);
  }
  if (options.report_out) {
    auto written = write_file_atomically(
        *options.report_out, as_chars(measure::encode_report(m.report)), 0600, "report");
    if (!written) m.report.errors.push_back(written.error().message);
  }

  if (options.json) {
    out << measure::report_to_json(m.report).dump(2) << '\n';
  } else {
    out << measure::report_to_text(m.report, *policy, options.level);
  }
  return m.report.exit_code();
}

}  // namespace mchain::agent
