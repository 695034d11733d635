#include "agent/config.h"

#include <grp.h>

#include <initializer_list>
#include <nlohmann/json.hpp>

#include "chain/file_io.h"
#include "chain/node/genesis.h"

namespace mchain::agent {

namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxConfigBytes = 1 << 20;

// Thrown inside this file only, with the JSON path of the offending key.
struct ConfigError {
  std::string path;
  std::string reason;
};

[[noreturn]] void bad(const std::string& path, std::string reason) {
  throw ConfigError{path, std::move(reason)};
}

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// An object whose keys are taken one by one; done() refuses any key nobody took.
class Object {
 public:
  Object(const Json& json, std::string path) : json_(json), path_(std::move(path)) {
    if (!json_.is_object()) bad(path_.empty() ? "(top level)" : path_, "expected an object");
  }

  // The member `key`, or nullptr if absent.
  const Json* take(std::string_view key) {
    taken_.emplace_back(key);
    auto it = json_.find(key);
    return it == json_.end() ? nullptr : &*it;
  }
  const Json& require(std::string_view key) {
    const Json* value = take(key);
    if (value == nullptr) bad(join(path_, key), "missing");
    return *value;
  }
  std::string path(std::string_view key) const { return join(path_, key); }

  void done() const {
    for (const auto& [key, value] : json_.items()) {
      if (std::find(taken_.begin(), taken_.end(), key) == taken_.end()) {
        bad(join(path_, key), "unknown key");
      }
    }
  }

 private:
  const Json& json_;
  std::string path_;
  std::vector<std::string> taken_;
};

std::string text(const Json& value, const std::string& path, bool allow_empty = false) {
  if (!value.is_string()) bad(path, "expected a string");
  std::string s = value.get<std::string>();
  if (!allow_empty && s.empty()) bad(path, "must not be empty");
  if (s.find('\0') != std::string::npos) bad(path, "must not contain NUL");
  return s;
}

std::filesystem::path absolute_path(const Json& value, const std::string& path) {
  std::filesystem::path p = text(value, path);
  if (!p.is_absolute()) bad(path, "expected an absolute path");
  return p;
}

std::uint64_t integer(const Json& value, const std::string& path, std::uint64_t min,
                      std::uint64_t max) {
  if (!value.is_number_unsigned() &&
      !(value.is_number_integer() && value.get<std::int64_t>() >= 0)) {
    bad(path, "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  const auto n = value.get<std::uint64_t>();
  if (n < min || n > max) {
    bad(path, "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return n;
}

// Milliseconds in the file, microseconds inside.
TimeUs millis(const Json& value, const std::string& path, std::uint64_t min, std::uint64_t max) {
  return static_cast<TimeUs>(integer(value, path, min, max)) * 1000;
}

std::pair<std::string, std::uint16_t> address(const Json& value, const std::string& path) {
  auto parsed = parse_host_port(text(value, path));
  if (!parsed) bad(path, parsed.error().message);
  return *std::move(parsed);
}

void read_node(Object node, DaemonConfig& c) {
  c.node_id = text(node.require("id"), node.path("id"));
  if (!valid_id(c.node_id)) bad(node.path("id"), "not a valid node id");
  c.key_file = absolute_path(node.require("key"), node.path("key"));
  c.genesis_file = absolute_path(node.require("genesis"), node.path("genesis"));
  if (const Json* v = node.take("listen")) c.listen_host = text(*v, node.path("listen"));
  if (const Json* v = node.take("join")) c.join_at = address(*v, node.path("join"));
  node.done();
}

void read_consensus(Object o, DaemonConfig& c) {
  if (const Json* v = o.take("round_timeout_ms")) {
    c.round_timeout = millis(*v, o.path("round_timeout_ms"), 100, 600'000);
  }
  if (const Json* v = o.take("silence_ms"))
    c.silence = millis(*v, o.path("silence_ms"), 100, 3'600'000);
  if (const Json* v = o.take("window_ms")) c.window = millis(*v, o.path("window_ms"), 1, 60'000);
  if (const Json* v = o.take("mode")) {
    const std::string mode = text(*v, o.path("mode"));
    if (mode == "concurrent") {
      c.mode = ValidationMode::concurrent;
    } else if (mode == "inorder") {
      c.mode = ValidationMode::in_order;
    } else {
      bad(o.path("mode"), "expected \"concurrent\" or \"inorder\"");
    }
  }
  if (const Json* v = o.take("verify_threads")) {
    c.verify_threads = static_cast<unsigned>(integer(*v, o.path("verify_threads"), 0, 1024));
  }
  o.done();
  if (c.silence < c.round_timeout) {
    bad(o.path("silence_ms"), "must not be shorter than round_timeout_ms");
  }
}

void read_measurement(Object o, DaemonConfig& c) {
  if (const Json* v = o.take("policy")) c.measure_policy = absolute_path(*v, o.path("policy"));
  if (const Json* v = o.take("interval_s")) {
    c.measure_interval = std::chrono::seconds(integer(*v, o.path("interval_s"), 0, 31'536'000));
  }
  if (const Json* v = o.take("retry_s")) {
    c.measure_retry = std::chrono::seconds(integer(*v, o.path("retry_s"), 1, 86'400));
  }
  if (const Json* v = o.take("command_timeout_ms")) {
    c.measure_command_timeout =
        std::chrono::milliseconds(integer(*v, o.path("command_timeout_ms"), 100, 600'000));
  }
  if (const Json* v = o.take("workers")) {
    c.measure_workers = static_cast<unsigned>(integer(*v, o.path("workers"), 1, 64));
  }
  o.done();
}

DaemonConfig read_config(const Json& json) {
  DaemonConfig c;
  Object top(json, "");
  read_node(Object(top.require("node"), "node"), c);
  if (const Json* v = top.take("state_dir")) c.state_dir = absolute_path(*v, "state_dir");
  if (const Json* v = top.take("control")) {
    Object control(*v, "control");
    if (const Json* s = control.take("socket")) {
      c.control_socket = absolute_path(*s, "control.socket");
      // sockaddr_un holds 108 bytes, NUL included.
      if (c.control_socket.native().size() > 107) bad("control.socket", "longer than 107 bytes");
    }
    if (const Json* g = control.take("group")) {
      c.control_group = text(*g, "control.group");
      if (::getgrnam(c.control_group.c_str()) == nullptr) {
        bad("control.group", "no group named \"" + c.control_group + "\" on this host");
      }
    }
    control.done();
  }
  if (const Json* v = top.take("libvirt")) {
    if (v->is_null()) {
      c.libvirt_uri.reset();
    } else {
      Object libvirt(*v, "libvirt");
      if (const Json* u = libvirt.take("uri")) c.libvirt_uri = text(*u, "libvirt.uri");
      libvirt.done();
    }
  }
  if (const Json* v = top.take("tpm"); v != nullptr && !v->is_null()) {
    Object tpm(*v, "tpm");
    c.tpm_device = absolute_path(tpm.require("device"), "tpm.device");
    tpm.done();
  }
  if (const Json* v = top.take("abe"); v != nullptr && !v->is_null()) {
    Object abe(*v, "abe");
    if (const Json* k = abe.take("public_key")) {
      c.abe_public_key = absolute_path(*k, "abe.public_key");
    }
    if (const Json* k = abe.take("cp_public_key")) {
      c.abe_cp_public_key = absolute_path(*k, "abe.cp_public_key");
    }
    if (!c.abe_public_key && !c.abe_cp_public_key) {
      bad("abe", "give public_key (KP-ABE), cp_public_key (versioned CP-ABE) or both");
    }
    abe.done();
  }
  if (const Json* v = top.take("consensus")) read_consensus(Object(*v, "consensus"), c);
  if (const Json* v = top.take("mining")) {
    Object mining(*v, "mining");
    if (const Json* t = mining.take("threads")) {
      c.miner_threads = static_cast<unsigned>(integer(*t, "mining.threads", 0, 1024));
    }
    mining.done();
  }
  if (const Json* v = top.take("alarm_command")) {
    if (!v->is_array() || v->empty()) bad("alarm_command", "expected a non-empty array of strings");
    for (std::size_t i = 0; i < v->size(); ++i) {
      c.alarm_command.push_back(text((*v)[i], "alarm_command[" + std::to_string(i) + "]"));
    }
    if (!std::filesystem::path(c.alarm_command[0]).is_absolute()) {
      bad("alarm_command[0]", "expected an absolute path (no shell, no PATH look-up)");
    }
  }
  if (const Json* v = top.take("hook")) {
    Object hook(*v, "hook");
    if (const Json* e = hook.take("enforce")) {
      if (!e->is_boolean()) bad("hook.enforce", "expected true or false");
      c.enforce_hooks = e->get<bool>();
    }
    hook.done();
  }
  if (const Json* v = top.take("drain_timeout_ms")) {
    c.drain_timeout = millis(*v, "drain_timeout_ms", 0, 600'000);
  }
  if (const Json* v = top.take("measurement")) read_measurement(Object(*v, "measurement"), c);
  top.done();
  return c;
}

}  // namespace

Result<DaemonConfig> parse_config(std::string_view json_text, std::string_view file_name) {
  Json json;
  try {
    json = Json::parse(json_text);
  } catch (const Json::parse_error& e) {
    return fail(std::string(file_name) + ": not JSON: " + e.what());
  }
  try {
    return read_config(json);
  } catch (const ConfigError& e) {
    return fail(std::string(file_name) + ": " + e.path + ": " + e.reason);
  } catch (const Json::exception& e) {
    return fail(std::string(file_name) + ": " + e.what());
  }
}

Result<DaemonConfig> load_config(const std::filesystem::path& file) {
  auto text = read_small_file(file, kMaxConfigBytes, "configuration");
  if (!text) return std::unexpected(text.error());
  return parse_config(*text, file.string());
}

}  // namespace mchain::agent
