// `mchainctl measure`: one measurement of one guest through its agent, without the daemon.
// Exit status follows Tripwire's check bitmask: 1 added, 2 removed, 4 changed, 8 error.
#pragma once

#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>

#include "measure/measurement.h"

namespace mchain::agent {

struct MeasureCommandOptions {
  // Exactly one way to reach the agent: a QGA unix socket, or a libvirt domain.
  std::optional<std::filesystem::path> qga_socket;
  std::optional<std::string> domain;
  std::string libvirt_uri = "qemu:///system";

  std::filesystem::path policy;
  // Compared against when it exists; written from this run when it does not. With
  // update_baseline, replaced by this run's snapshot after a successful run.
  std::optional<std::filesystem::path> baseline;
  bool update_baseline = false;
  // Where the report's canonical CBOR (the package payload) goes, if anywhere.
  std::optional<std::filesystem::path> report_out;

  measure::MeasureOptions measure;
  std::chrono::milliseconds command_timeout{5000};
  bool json = false;
  measure::ReportLevel level = measure::ReportLevel::kDetail;
};

inline constexpr int kMeasureError = 8;

int run_measure(const MeasureCommandOptions& options, std::ostream& out, std::ostream& err);

}  // namespace mchain::agent
