#include "agent/daemon_commands.h"

#include <unistd.h>

#include <cstdio>
#include <future>
#include <ostream>
#include <sstream>

#include "agent/control.h"
#include "chain/file_io.h"
#include "chain/types.h"

namespace mchain::agent {

namespace {

using Json = nlohmann::json;

// Sends the request; prints the error and returns the exit status on failure.
std::optional<Json> ask(const DaemonCommandOptions& o, const Json& request, std::ostream& err,
                        int& status) {
  auto response = control_request(o.socket, request, o.timeout);
  if (!response) {
    err << "mchainctl: " << response.error().message << '\n';
    status = kExitUnreachable;
    return std::nullopt;
  }
  if (!response->value("ok", false)) {
    err << "mchainctl: mchaind: " << response->value("error", std::string("request refused"))
        << '\n';
    status = 1;
    return std::nullopt;
  }
  status = 0;
  response->erase("ok");  // said by the exit status
  return *std::move(response);
}

std::string list(const Json& array) {
  std::string out;
  for (const auto& item : array) out += (out.empty() ? "" : ", ") + item.get<std::string>();
  return out.empty() ? "none" : out;
}

}  // namespace

int daemon_status(const DaemonCommandOptions& o, std::ostream& out, std::ostream& err) {
  int status = 0;
  auto r = ask(o, {{"command", "status"}}, err, status);
  if (!r) return status;
  if (o.json) {
    out << r->dump(2) << '\n';
    return 0;
  }
  out << "node:        " << r->value("node", "")
      << (r->value("suspended", false) ? " (suspended)" : "")
      << (r->value("draining", false) ? " (stopping)" : "") << '\n'
      << "chain:       " << r->value("chain", "") << " (genesis "
      << r->value("genesis", "").substr(0, 16) << ")\n"
      << "confirmed:   " << r->value("confirmed", 0) << " semi-finished blocks, main chain height "
      << r->value("height", 0) << '\n'
      << "valid pool:  " << list((*r)["pool"]) << '\n'
      << "linked to:   " << list((*r)["linked"]) << '\n'
      << "waiting:     " << r->value("waiting", 0) << " packages\n"
      << "libvirt:     "
      << ((*r)["libvirt"].is_null() ? "not used" : (*r)["libvirt"].get<std::string>()) << '\n'
      << "TPM:         "
      << ((*r)["tpm"].is_null() ? "none (file key)" : (*r)["tpm"].get<std::string>()) << '\n'
      << "version:     " << r->value("version", "") << ", up " << r->value("uptime_s", 0) << " s\n";
  return 0;
}

int daemon_peers(const DaemonCommandOptions& o, std::ostream& out, std::ostream& err) {
  int status = 0;
  auto r = ask(o, {{"command", "peers"}}, err, status);
  if (!r) return status;
  if (o.json) {
    out << (*r)["peers"].dump(2) << '\n';
    return 0;
  }
  for (const auto& p : (*r)["peers"]) {
    out << p.value("id", "") << '\t' << p.value("address", "") << '\t'
        << (p.value("linked", false) ? "linked" : "not linked") << '\n';
  }
  return 0;
}

int daemon_metrics(const DaemonCommandOptions& o, std::ostream& out, std::ostream& err) {
  int status = 0;
  auto r = ask(o, {{"command", "metrics"}}, err, status);
  if (!r) return status;
  out << r->value("text", "");
  return 0;
}

int daemon_vms(const DaemonCommandOptions& o, std::ostream& out, std::ostream& err) {
  int status = 0;
  auto r = ask(o, {{"command", "vms"}}, err, status);
  if (!r) return status;
  if (o.json) {
    out << r->dump(2) << '\n';
    return 0;
  }
  if ((*r)["libvirt"].is_null()) {
    out << "mchaind runs without libvirt: no VM is followed\n";
    return 0;
  }
  if (!r->value("connected", false)) out << "(libvirt not reachable; the list may be stale)\n";
  out << "UUID                                  NAME             STATE      OWNER        AGENT     "
         " "
         "ON CHAIN\n";
  for (const auto& v : (*r)["vms"]) {
    std::string owner = v["owner"].is_null()
                            ? (v.value("owner_error", "").empty() ? "-" : "(invalid)")
                            : v["owner"].value("user", "");
    const Json& chain = v["chain"];
    const std::string on_chain =
        chain.is_null()
            ? "not bound"
            : (chain["host"].is_null() ? "stopped" : "on " + chain["host"].get<std::string>());
    char line[320];
    std::snprintf(line, sizeof line, "%-37s %-16s %-10s %-12s %-10s %s\n",
                  v.value("uuid", "").c_str(), v.value("name", "").c_str(),
                  v.value("state", "").c_str(), owner.c_str(),
                  v.value("agent", false) ? "connected" : "-", on_chain.c_str());
    out << line;
    if (v["binding"].is_object() && !v["binding"].value("problem", "").empty()) {
      out << "    " << v["binding"].value("problem", "") << '\n';
    }
    // What the measurement agent did last, or is doing.
    if (const Json& m = v["measurement"]; m.is_object()) {
      if (m.value("busy", false)) {
        out << "    measuring: " << m.value("phase", "") << '\n';
      } else if (const Json& last = m["last"]; last.is_object()) {
        out << "    last measured " << last.value("time", "") << " (" << last.value("trigger", "")
            << "): ";
        if (last.value("ok", false)) {
          const Json& r = last["result"];
          if (r.value("baseline_created", false)) {
            out << "baseline recorded, " << r.value("objects", 0) << " objects\n";
          } else {
            out << r.value("added", 0) << " added, " << r.value("removed", 0) << " removed, "
                << r.value("changed", 0) << " changed\n";
          }
        } else {
          out << "failed: " << last.value("error", "") << '\n';
        }
      }
    }
    if (v["handoff"].is_string())
      out << "    hand-off: " << v["handoff"].get<std::string>() << '\n';
  }
  return 0;
}

int daemon_user_add(const DaemonCommandOptions& o, const std::string& name, std::ostream& out,
                    std::ostream& err) {
  DaemonCommandOptions long_wait = o;
  long_wait.timeout = std::max(o.timeout, std::chrono::milliseconds(120'000));
  int status = 0;
  auto r = ask(long_wait, {{"command", "user-add"}, {"name", name}}, err, status);
  if (!r) return status;
  if (o.json) {
    out << r->dump(2) << '\n';
  } else {
    out << "user " << name << " registered in semi-finished block " << r->value("semi_finished", "")
        << "; its key is in this host's keystore\n";
  }
  return 0;
}

std::optional<int> daemon_chain(const DaemonCommandOptions& o, const std::vector<std::string>& args,
                                std::ostream& out, std::ostream& err) {
  if (!std::filesystem::exists(o.socket)) return std::nullopt;
  DaemonCommandOptions long_wait = o;
  long_wait.timeout = std::max(o.timeout, std::chrono::milliseconds(600'000));  // verify
  auto response = control_request(
      o.socket, {{"command", "chain"}, {"args", args}, {"json", o.json}}, long_wait.timeout);
  if (!response) return std::nullopt;  // no daemon there: the store is not locked either
  if (!response->value("ok", false)) {
    err << "mchainctl: mchaind: " << response->value("error", std::string("request refused"))
        << '\n';
    return 1;
  }
  out << response->value("out", "");
  err << response->value("err", "");
  return response->value("exit", 1);
}

int daemon_hooks(const DaemonCommandOptions& o, std::ostream& out, std::ostream& err) {
  int status = 0;
  auto r = ask(o, {{"command", "hooks"}}, err, status);
  if (!r) return status;
  if (o.json) {
    out << (*r)["events"].dump(2) << '\n';
    return 0;
  }
  for (const auto& e : (*r)["events"]) {
    out << e.value("time", "") << ' ' << e.value("domain", "") << ' ' << e.value("operation", "")
        << ' ' << e.value("sub_operation", "") << ' ' << e.value("extra", "")
        << (e.value("owner", "").empty() ? "" : " owner " + e.value("owner", ""))
        << (e.value("allowed", true) ? "" : " REFUSED") << '\n';
  }
  return 0;
}

int daemon_submit(const DaemonCommandOptions& o, const std::filesystem::path& file, bool wait,
                  std::ostream& out, std::ostream& err) {
  auto bytes = read_small_file(file, 64u << 20, "package");
  if (!bytes) {
    err << "mchainctl: " << bytes.error().message << '\n';
    return 1;
  }
  DaemonCommandOptions long_wait = o;
  if (wait) long_wait.timeout = std::max(o.timeout, std::chrono::milliseconds(120'000));
  int status = 0;
  auto r =
      ask(long_wait, {{"command", "submit"}, {"package", to_hex(as_bytes(*bytes))}, {"wait", wait}},
          err, status);
  if (!r) return status;
  if (o.json) {
    out << r->dump(2) << '\n';
  } else if (r->contains("semi_finished")) {
    out << "package " << r->value("package", "") << " confirmed in semi-finished block "
        << r->value("semi_finished", "") << '\n';
  } else {
    out << "package " << r->value("package", "") << " accepted; waiting for a round\n";
  }
  return 0;
}

}  // namespace mchain::agent

namespace mchain::agent {

namespace {

// Long operations (a measurement through a slow guest, a confirmation) may take minutes.
constexpr std::chrono::milliseconds kLongWait{15 * 60 * 1000};

bool on_terminal() { return ::isatty(STDOUT_FILENO) == 1 && ::isatty(STDERR_FILENO) == 1; }

// Sends `request` and waits for its answer; on a terminal, shows what the daemon is doing
// with `domain` meanwhile (its measurement phase), on one line of stderr that is cleared
// before the answer is printed.
std::optional<Json> ask_with_progress(const DaemonCommandOptions& o, const Json& request,
                                      const std::string& domain, const std::string& doing,
                                      std::ostream& err, int& status) {
  DaemonCommandOptions waiting = o;
  waiting.timeout = std::max(o.timeout, kLongWait);
  if (!on_terminal()) return ask(waiting, request, err, status);
  std::ostringstream quiet;  // the worker's errors are printed from here, once
  int worker_status = 0;
  auto answer =
      std::async(std::launch::async, [&] { return ask(waiting, request, quiet, worker_status); });
  const auto started = std::chrono::steady_clock::now();
  while (answer.wait_for(std::chrono::milliseconds(500)) != std::future_status::ready) {
    auto p = control_request(o.socket, {{"command", "progress"}, {"domain", domain}},
                             std::chrono::milliseconds(2000));
    std::string phase;
    if (p && p->value("ok", false) && (*p)["measurement"].is_object()) {
      phase = (*p)["measurement"].value("phase", "");
    }
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started)
            .count();
    err << "\r\033[K" << doing << ' ' << domain << (phase.empty() ? "" : ": " + phase) << " ("
        << seconds << " s)" << std::flush;
  }
  err << "\r\033[K" << std::flush;
  auto result = answer.get();
  err << quiet.str();
  status = worker_status;
  return result;
}

void print_report_summary(const Json& r, std::ostream& out) {
  if (r.value("baseline_created", false)) {
    out << "  baseline recorded: " << r.value("objects", 0) << " objects\n";
  } else {
    out << "  " << r.value("objects", 0) << " objects: " << r.value("added", 0) << " added, "
        << r.value("removed", 0) << " removed, " << r.value("changed", 0) << " changed\n";
  }
  for (const Json& e : r.value("errors", Json::array())) {
    out << "  error: " << e.get<std::string>() << '\n';
  }
}

}  // namespace

int daemon_measure(const DaemonCommandOptions& o, const std::string& domain, bool wait,
                   bool baseline, std::ostream& out, std::ostream& err) {
  const Json request = {
      {"command", "measure"}, {"domain", domain}, {"wait", wait}, {"baseline", baseline}};
  int status = 0;
  auto r = wait || baseline
               ? ask_with_progress(o, request, domain, baseline ? "new baseline of" : "measuring",
                                   err, status)
               : ask(o, request, err, status);
  if (!r) return status;
  if (o.json) {
    out << r->dump(2) << '\n';
    return 0;
  }
  const std::string name = r->value("name", domain);
  if (r->value("queued", false)) {
    out << name << ": measurement queued (mchainctl vms shows how it went)\n";
    return 0;
  }
  const Json& result = (*r)["result"];
  out << name << ": report " << result.value("package", "")
      << "\n  confirmed in semi-finished block " << result.value("semi_finished", "")
      << ", policy v" << result.value("policy_version", 0) << '\n';
  print_report_summary(result, out);
  return 0;
}

int daemon_report(const DaemonCommandOptions& o, const std::string& domain,
                  const std::string& package, std::ostream& out, std::ostream& err) {
  int status = 0;
  Json request = {{"command", "report"}, {"domain", domain}, {"json", o.json}};
  if (!package.empty()) request["package"] = package;
  DaemonCommandOptions waiting = o;
  waiting.timeout = std::max(o.timeout, kLongWait);
  auto r = ask(waiting, request, err, status);
  if (!r) return status;
  if (o.json) {
    out << r->dump(2) << '\n';
  } else {
    out << r->value("text", "");
  }
  return 0;
}

int daemon_verify(const DaemonCommandOptions& o, const std::string& domain, std::ostream& out,
                  std::ostream& err) {
  int status = 0;
  auto r = ask_with_progress(o, {{"command", "verify"}, {"domain", domain}, {"json", o.json}},
                             domain, "verifying", err, status);
  if (!r) return status;
  out << r->value("out", "");
  err << r->value("err", "");
  return r->value("exit", 1);
}

int daemon_policy_show(const DaemonCommandOptions& o, const std::string& domain, std::ostream& out,
                       std::ostream& err) {
  int status = 0;
  auto r = ask(o, {{"command", "policy-show"}, {"domain", domain}}, err, status);
  if (!r) return status;
  if (o.json) {
    out << r->dump(2) << '\n';
    return 0;
  }
  out << r->value("name", domain) << " (" << r->value("vm", "") << "), owner "
      << r->value("owner", "") << '\n';
  const Json& p = (*r)["policy"];
  if (p.is_null()) {
    out << "  no policy yet: the first measurement sets the default (readable by its owner)\n";
    return 0;
  }
  out << "  policy v" << p.value("version", 0) << " (" << p.value("scheme", "") << "), since "
      << p.value("since", "") << "\n  readable by: " << p.value("expression", "")
      << "\n  attributes:  " << list(p["attributes"]) << "\n  hash:        " << p.value("hash", "")
      << "\n  data key:    ";
  if (!p.value("sealed_for_verifiers", false)) {
    out << "not sealed for verifiers (mchaind has no abe.public_key): this host only\n";
  } else if (p.contains("sealed_system_version")) {
    out << "sealed for verifiers (CP-ABE, system version " << p.value("sealed_system_version", 0)
        << ", under the expression above)\n";
  } else {
    out << "sealed for verifiers (KP-ABE, to the attributes above)\n";
  }
  if (const Json& cp = (*r)["abe"]["cp_system_version"]; cp.is_number()) {
    out << "  CP-ABE:      mchaind seals at system version " << cp.get<std::uint64_t>() << '\n';
  }
  return 0;
}

int daemon_policy_set(const DaemonCommandOptions& o, const std::string& domain,
                      const std::string& expression, const std::vector<std::string>& attributes,
                      std::optional<AbeScheme> scheme, std::ostream& out, std::ostream& err) {
  int status = 0;
  Json request = {{"command", "policy-set"},
                  {"domain", domain},
                  {"expression", expression},
                  {"attributes", attributes}};
  if (scheme) request["scheme"] = std::string(to_string(*scheme));
  auto r = ask_with_progress(o, request, domain, "revising the policy of", err, status);
  if (!r) return status;
  if (o.json) {
    out << r->dump(2) << '\n';
    return 0;
  }
  const Json& result = (*r)["result"];
  out << r->value("name", domain) << ": policy v" << result.value("policy_version", 0)
      << " in force (package " << result.value("package", "") << ")\n";
  if (result.contains("cp_system_version")) {
    out << "  sealed under " << result.value("expression", "") << " at CP-ABE system version "
        << result.value("cp_system_version", 0) << '\n';
  }
  if (result.contains("key_link")) {
    out << "  key link to v" << result.value("policy_version", 0) - 1 << ": "
        << result.value("key_link", "") << '\n';
  }
  return 0;
}

}  // namespace mchain::agent
