#include "agent/daemon.h"

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "abe/kpabe/kpabe.h"
#include "agent/abe_files.h"
#include "agent/bindings.h"
#include "agent/chain_commands.h"
#include "agent/control.h"
#include "agent/domain_metadata.h"
#include "agent/handoff.h"
#include "agent/keystore.h"
#include "agent/libvirt_monitor.h"
#include "agent/measurements.h"
#include "agent/tasks.h"
#include "agent/version.h"
#include "agent/vm_commands.h"
#include "agent/vm_policy.h"
#include "chain/file_io.h"
#include "chain/net/peer_network.h"
#include "chain/node/runtime.h"
#include "chain/package/records.h"
#include "chain/store/store.h"
#include "measure/policy/policy.h"
#include "measure/report/report.h"

namespace mchain::agent {

namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kLoopPeriod = 100ms;
// How long a submission without --wait waits for a refusal before it answers "buffered".
constexpr auto kRefusalWindow = 500ms;
constexpr std::size_t kHookEventsKept = 256;

// The operations that put a VM on this host, as libvirt's qemu hook names them ("begin").
bool brings_a_vm_here(const std::string& operation) {
  return operation == "prepare" || operation == "start" || operation == "migrate" ||
         operation == "restore";
}

Json error(std::string message) { return {{"ok", false}, {"error", std::move(message)}}; }

}  // namespace

struct Daemon::State {
  DaemonConfig config;
  const Logger* log = nullptr;
  TimeUs started = 0;
  std::unique_ptr<NodeRuntime> node;
  std::unique_ptr<ControlServer> control;
  // The cluster ABE authority's public key, when configured: data keys are sealed under it.
  std::optional<abe::kp::MasterPublicKey> abe_authority;
  std::atomic<bool> draining{false};

  // Requests waiting for a confirmation, each answered by a thread of its own; joined on
  // stop (the service fails them with "stopped").
  Tasks waiters;

  // The libvirt hook's calls, newest last (control thread only).
  std::deque<Json> hook_events;

  // What libvirt says runs here, kept by the monitor's consumer (its thread) and read by
  // control commands.
  struct Vm {
    DomainInfo domain;
    bool agent = false;            // the guest agent is connected
    std::string last_event;        // e.g. "started (booted)"
    std::uint64_t connection = 0;  // the monitor connection that last saw it
  };
  mutable std::mutex vms_mutex;
  std::map<Uuid, Vm> vms;
  bool libvirt_connected = false;
  std::unique_ptr<LibvirtMonitor> monitor;
  std::unique_ptr<BindingAgent> bindings;
  std::unique_ptr<MeasurementAgent> measurements;
  std::unique_ptr<Handoff> handoff;
  // What the network thread hands agent messages to, once it exists.
  std::atomic<Handoff*> handoff_inbox{nullptr};
  std::unique_ptr<VmCommands> vm_commands;

  // A domain by name, UUID or libvirt id among those libvirt has here.
  std::optional<NamedVm> lookup(const std::string& domain) const {
    const auto uuid = Uuid::parse(domain);
    const auto id = parse_u64(domain);
    std::lock_guard lock(vms_mutex);
    for (const auto& [u, vm] : vms) {
      if (vm.domain.name == domain || (uuid && *uuid == u) ||
          (id && vm.domain.id > 0 && static_cast<std::uint64_t>(vm.domain.id) == *id)) {
        return NamedVm{u, vm.domain.name};
      }
    }
    return std::nullopt;
  }

  std::filesystem::path keystore_dir() const { return config.state_dir / "keys"; }

  void on_libvirt(const MonitorEvent& e) {
    std::lock_guard lock(vms_mutex);
    switch (e.kind) {
      case MonitorEventKind::kResync: {
        Vm& vm = vms[e.domain.uuid];
        vm.domain = e.domain;
        vm.connection = e.connection;
        if (vm.last_event.empty()) vm.last_event = "seen at resync";
        bindings->observe(e.domain);
        // Whether its agent is up is not part of a resync: a VM found running is measured
        // as if its agent had just connected (a failure backs off).
        measurements->track(e.domain.uuid, e.domain.name, runs_here(e.domain.state),
                            runs_here(e.domain.state));
        return;
      }
      case MonitorEventKind::kResyncComplete:
        // Whatever the resync did not list went away while libvirt was out of reach.
        std::erase_if(vms, [&](const auto& entry) {
          if (entry.second.connection == e.connection) return false;
          measurements->forget(entry.first);
          handoff->abandoned(entry.first);
          return true;
        });
        libvirt_connected = true;
        log->info("libvirt: connected to " + monitor->uri() + ", " + std::to_string(e.domains) +
                  " domains");
        return;
      case MonitorEventKind::kDisconnected:
        libvirt_connected = false;
        log->warning("libvirt: connection lost (" + e.reason + "); reconnecting");
        return;
      case MonitorEventKind::kLifecycle: {
        const std::string what =
            std::string(lifecycle_name(e.lifecycle)) + (e.migration ? " (migration)" : "");
        log->info("libvirt: " + e.domain.name + " " + what);
        if (e.lifecycle == Lifecycle::kUndefined) {
          vms.erase(e.domain.uuid);
          bindings->observe(e.domain, /*undefined=*/true);
          measurements->forget(e.domain.uuid);
          handoff->abandoned(e.domain.uuid);
          return;
        }
        Vm& vm = vms[e.domain.uuid];
        vm.domain = e.domain;
        vm.connection = e.connection;
        vm.last_event = what;
        const bool migrated_away = e.lifecycle == Lifecycle::kStopped && e.migration;
        if (e.lifecycle == Lifecycle::kStopped) vm.agent = false;
        if (migrated_away) handoff->released(e.domain.uuid);
        bindings->observe(e.domain, /*undefined=*/false, migrated_away);
        measurements->track(e.domain.uuid, e.domain.name, runs_here(e.domain.state), vm.agent);
        return;
      }
      case MonitorEventKind::kAgentLifecycle: {
        // The event names the domain only (state and owner are not read while it starts):
        // what is known of it stays, and an agent that connects is in a running guest.
        Vm& vm = vms[e.domain.uuid];
        if (vm.domain.name.empty()) vm.domain = e.domain;
        vm.domain.id = e.domain.id;
        vm.connection = e.connection;
        vm.agent = e.agent_connected;
        log->info("libvirt: " + e.domain.name + " guest agent " +
                  (e.agent_connected ? "connected" : "disconnected"));
        measurements->track(e.domain.uuid, e.domain.name,
                            e.agent_connected || runs_here(vm.domain.state), vm.agent);
        return;
      }
      case MonitorEventKind::kMetadataChange: {
        Vm& vm = vms[e.domain.uuid];
        vm.domain = e.domain;
        vm.connection = e.connection;
        bindings->observe(e.domain);  // an owner set on a VM not bound yet
        return;
      }
    }
  }

  bool libvirt_up() const {
    std::lock_guard lock(vms_mutex);
    return libvirt_connected;
  }

  Json vm_list() const {
    Json out = Json::array();
    std::lock_guard lock(vms_mutex);
    for (const auto& [uuid, vm] : vms) {
      const DomainInfo& d = vm.domain;
      Json owner = nullptr;
      if (d.owner)
        owner = {{"user", d.owner->user},
                 {"source", std::string(owner_source_name(d.owner->source))}};
      Json chain = nullptr;
      if (auto at = node->store().vm_at(uuid, now_us())) {
        chain = {{"owner", at->owner},
                 {"host", at->host ? Json(*at->host) : Json(nullptr)},
                 {"policy_version", at->policy ? at->policy->ref.version : 0}};
      }
      Json binding = nullptr;
      if (auto b = bindings->state(uuid)) {
        binding = {{"last", b->binding}, {"problem", b->problem}, {"package", b->package}};
      }
      out.push_back({{"uuid", uuid.to_string()},
                     {"chain", chain},
                     {"binding", binding},
                     {"measurement", measurements->status(uuid)},
                     {"handoff", handoff->status(uuid)},
                     {"name", d.name},
                     {"id", d.id},
                     {"state", d.state ? std::string(domain_state_name(*d.state)) : "unknown"},
                     {"owner", owner},
                     {"owner_error", d.owner_error},
                     {"agent", vm.agent},
                     {"last_event", vm.last_event},
                     {"host", config.node_id}});
    }
    return {{"ok", true},
            {"libvirt", config.libvirt_uri ? Json(*config.libvirt_uri) : Json(nullptr)},
            {"connected", libvirt_connected},
            {"vms", out}};
  }

  Json status() const {
    const NodeSnapshot s = node->service().snapshot();
    const net::NetMetrics m = node->network().snapshot();
    Json peers = Json::array();
    for (const std::string& p : m.connected) peers.push_back(p);
    Json pool = Json::array();
    for (const std::string& p : s.pool) pool.push_back(p);
    return {{"ok", true},
            {"node", config.node_id},
            {"version", std::string(version())},
            {"chain", node->genesis().chain},
            {"genesis", to_hex(node->genesis().hash())},
            {"uptime_s", (now_us() - started) / 1'000'000},
            {"confirmed", s.confirmed},
            {"height", s.height},
            {"pool", pool},
            {"suspended", s.suspended},
            {"attempt", s.attempt},
            {"waiting", s.waiting},
            {"linked", peers},
            {"libvirt", config.libvirt_uri ? Json(*config.libvirt_uri) : Json(nullptr)},
            {"libvirt_connected", libvirt_up()},
            {"tpm", config.tpm_device ? Json(config.tpm_device->string()) : Json(nullptr)},
            {"draining", draining.load()}};
  }

  Json peers() const {
    const net::NetMetrics m = node->network().snapshot();
    Json out = Json::array();
    for (const GenesisNode& n : node->genesis().nodes) {
      if (n.id == config.node_id) continue;
      out.push_back(
          {{"id", n.id}, {"address", address_text(n)}, {"linked", m.connected.contains(n.id)}});
    }
    return {{"ok", true}, {"peers", out}};
  }

  Json chain_tip() const {
    Json out = {{"ok", true}, {"confirmed", node->service().snapshot().confirmed}};
    if (auto last = node->store().last_confirmed()) out["last_confirmed"] = to_hex(*last);
    if (auto tip = node->store().tip()) {
      out["height"] = tip->height;
      out["hash"] = to_hex(tip->hash);
      out["work"] = to_hex(tip->work.big_endian());
    }
    return out;
  }

  std::string metrics() const {
    const NodeSnapshot s = node->service().snapshot();
    const net::NetMetrics m = node->network().snapshot();
    std::ostringstream out;
    auto metric = [&](const char* name, const char* type, const char* help, auto value) {
      out << "# HELP mchain_" << name << ' ' << help << "\n# TYPE mchain_" << name << ' ' << type
          << "\nmchain_" << name << ' ' << value << '\n';
    };
    metric("confirmed_blocks", "gauge", "Semi-finished blocks confirmed here.", s.confirmed);
    metric("main_chain_height", "gauge", "Height of the main chain's tip.", s.height);
    metric("valid_pool_nodes", "gauge", "Nodes in the valid pool.", s.pool.size());
    metric("waiting_packages", "gauge", "Packages in the candidate buffers.", s.waiting);
    metric("linked_peers", "gauge", "Peers with an established link.", m.connected.size());
    metric("proposals_total", "counter", "Candidates this node proposed.", s.counters.proposals);
    metric("marks_total", "counter", "Valid marks this node gave.", s.counters.marks);
    metric("round_timeouts_total", "counter", "Rounds that timed out.", s.counters.timeouts);
    metric("accusations_total", "counter", "Accusations made or accepted.", s.counters.accusations);
    metric("offences_total", "counter", "Bad data peers sent.", s.counters.offences);
    metric("bad_blocks_total", "counter", "Mature blocks refused.", s.counters.bad_blocks);
    metric("peer_frames_in_total", "counter", "Frames received from peers.", m.frames_in);
    metric("peer_frames_out_total", "counter", "Frames sent to peers.", m.frames_out);
    metric("peer_refusals_total", "counter", "Peer links refused at admission.",
           m.refused_unknown + m.refused_wrong_key + m.refused_handshake);
    return out.str();
  }

  void submit(const Json& request, const ControlServer::Reply& reply) {
    if (draining) return reply(error("mchaind is stopping: no new packages"));
    const auto hex = request.find("package");
    if (hex == request.end() || !hex->is_string()) {
      return reply(error("submit: expected \"package\": the encoded package in hex"));
    }
    auto bytes = from_hex(hex->get<std::string>());
    if (!bytes) return reply(error("submit: \"package\" is not hex"));
    auto package = Package::decode(*bytes);
    if (!package) return reply(error("submit: " + package.error().message));
    const Hash256 id = package->id();
    auto confirmed = node->service().submit(*std::move(package));
    const bool wait = request.value("wait", false);
    // Answered off the control thread: with wait, once the block is durable; without, as
    // soon as a refusal comes back or the package has been buffered for a moment.
    waiters.spawn([reply, id, wait, f = std::move(confirmed)]() mutable {
      if (!wait && f.wait_for(kRefusalWindow) != std::future_status::ready) {
        return reply({{"ok", true}, {"package", to_hex(id)}, {"buffered", true}});
      }
      auto r = f.get();
      if (!r) return reply(error(r.error().message));
      reply({{"ok", true}, {"package", to_hex(id)}, {"semi_finished", to_hex(*r)}});
    });
  }

  // A libvirt hook call (hooks/qemu through mchainctl hook): recorded, and with enforcement
  // on, a VM that this node could not bind is refused before it starts or arrives here.
  void hook(const Json& request, const ControlServer::Reply& reply) {
    std::array<std::string, 5> f;
    const std::array<const char*, 5> names = {"domain", "operation", "sub_operation", "extra",
                                              "xml"};
    for (std::size_t i = 0; i < names.size(); ++i) {
      auto it = request.find(names[i]);
      if (it == request.end() || !it->is_string()) {
        return reply(error(std::string("hook: expected the string \"") + names[i] + "\""));
      }
      f[i] = it->get<std::string>();
    }
    const auto& [domain, operation, sub, extra, xml] = f;
    auto owner = owner_from_domain_xml(xml);
    std::string refusal;
    if (config.enforce_hooks && sub == "begin" && brings_a_vm_here(operation)) {
      const NodeSnapshot s = node->service().snapshot();
      if (std::find(s.pool.begin(), s.pool.end(), config.node_id) == s.pool.end()) {
        refusal = config.node_id + " is not in the valid pool" +
                  (s.suspended ? " (suspended)" : "") + ": it cannot sign for a VM now";
      } else if (!owner) {
        refusal = "its owner metadata is unusable: " + owner.error().message;
      } else if (!*owner) {
        refusal = "it names no owner (<mchain:owner> in namespace " +
                  std::string(kMetadataNamespace) + ", or Nova's <nova:owner>)";
      }
    }
    // A VM arriving by migration: its secrets are asked of its host now, so that they are
    // here when it starts (the answer comes on the network; the hook does not wait for it).
    if (handoff && sub == "begin" && (operation == "migrate" || operation == "prepare")) {
      if (auto uuid = uuid_from_domain_xml(xml)) handoff->request(*uuid);
    }
    const std::string owner_text = owner ? (*owner ? (*owner)->user : std::string())
                                         : "(invalid: " + owner.error().message + ")";
    log->info("hook: " + domain + " " + operation + " " + sub + " " + extra +
              (owner_text.empty() ? "" : ", owner " + owner_text) +
              (refusal.empty() ? "" : "; refused: " + refusal));
    hook_events.push_back({{"time", format_time(now_us())},
                           {"domain", domain},
                           {"operation", operation},
                           {"sub_operation", sub},
                           {"extra", extra},
                           {"owner", owner_text},
                           {"allowed", refusal.empty()}});
    if (hook_events.size() > kHookEventsKept) hook_events.pop_front();
    Json response = {{"ok", true}, {"allow", refusal.empty()}};
    if (!refusal.empty()) response["reason"] = refusal;
    reply(response);
  }

  // Registers a user: a new key in this host's keystore and a register-user package signed
  // by it and this node, answered once confirmed.
  void user_add(const Json& request, const ControlServer::Reply& reply) {
    if (draining) return reply(error("mchaind is stopping"));
    const auto name = request.find("name");
    if (name == request.end() || !name->is_string() || !valid_id(name->get<std::string>())) {
      return reply(error("user-add: expected \"name\": a valid user id"));
    }
    const std::string user = name->get<std::string>();
    const Keystore keystore(keystore_dir());
    if (keystore.user_key(user)) return reply(error("user '" + user + "' already has a key here"));
    auto key = crypto::PrivateKey::generate(crypto::SigAlg::ecdsa_p256_sha256);
    if (!key) return reply(error(key.error().message));
    auto package = make_membership_package(
        {Uuid{}, user, config.node_id, now_us()},
        MembershipRecord{MembershipAction::register_user, user, key->public_key()},
        PackageSigners{nullptr, &*key, &node->key()});
    if (!package) return reply(error(package.error().message));
    if (auto stored = keystore.put_user_key(user, *key); !stored) {
      return reply(error(stored.error().message));
    }
    auto confirmed = node->service().submit(*std::move(package));
    waiters.spawn([this, reply, user, f = std::move(confirmed)]() mutable {
      auto r = f.get();
      if (!r) return reply(error("registering " + user + ": " + r.error().message));
      reobserve_vms();  // VMs of this user that could not be bound without its key
      reply({{"ok", true}, {"user", user}, {"semi_finished", to_hex(*r)}});
    });
  }

  // mchainctl's chain tip / show / verify and history, on this daemon's open store (LevelDB
  // lets one process open it): the same code as on a stopped node's store, its output and
  // exit status handed back. Off the control thread: verify reads the whole chain.
  void chain(const Json& request, const ControlServer::Reply& reply) {
    const auto args = request.find("args");
    if (args == request.end() || !args->is_array() || args->empty()) {
      return reply(
          error("chain: expected \"args\": [\"tip\"], [\"show\", X], [\"verify\"] or "
                "[\"history\", UUID, FROM_US, TO_US]"));
    }
    std::vector<std::string> words;
    for (const Json& a : *args) {
      if (!a.is_string()) return reply(error("chain: every argument is a string"));
      words.push_back(a.get<std::string>());
    }
    ChainCommandOptions o;
    o.store = config.store_dir();
    o.open = &node->store();
    o.json = request.value("json", false);
    o.describe_data = [this](const Package& p) { return vm_commands->describe_data(p); };
    waiters.spawn([this, reply, o, words] {
      std::ostringstream out, err;
      int exit = 2;
      if (words[0] == "tip" && words.size() == 1) {
        exit = agent::chain_tip(o, out, err);
      } else if (words[0] == "verify" && words.size() == 1) {
        exit = chain_verify(o, out, err);
      } else if (words[0] == "show" && words.size() == 2) {
        exit = chain_show(o, words[1], out, err);
      } else if (words[0] == "history" && words.size() == 4) {
        auto vm = vm_commands->resolve(words[1]);
        auto from = parse_u64(words[2]);
        auto to = parse_u64(words[3]);
        if (!vm || !from || !to) return reply(error("chain: history wants DOMAIN FROM_US TO_US"));
        exit = vm_history(o, vm->uuid, *from, *to, out, err);
      } else {
        return reply(error("chain: unknown request"));
      }
      reply({{"ok", true}, {"exit", exit}, {"out", out.str()}, {"err", err.str()}});
    });
  }

  void reobserve_vms() {
    if (!bindings) return;
    std::lock_guard lock(vms_mutex);
    for (const auto& [uuid, vm] : vms) bindings->observe(vm.domain);
  }

  void handle(const ControlPeer&, const Json& request, const ControlServer::Reply& reply) {
    const std::string command = request["command"].get<std::string>();
    if (command == "status") return reply(status());
    if (command == "peers") return reply(peers());
    if (command == "chain-tip") return reply(chain_tip());
    if (command == "metrics") return reply({{"ok", true}, {"text", metrics()}});
    if (command == "submit") return submit(request, reply);
    if (command == "hook") return hook(request, reply);
    if (command == "vms") return reply(vm_list());
    if (command == "user-add") return user_add(request, reply);
    if (command == "chain") return chain(request, reply);
    if (command == "measure") return vm_commands->measure(request, reply);
    if (command == "progress") return vm_commands->progress(request, reply);
    if (command == "report") return vm_commands->report(request, reply);
    if (command == "verify") return vm_commands->verify(request, reply);
    if (command == "policy-show") return vm_commands->policy_show(request, reply);
    if (command == "vm-records") return vm_commands->records(request, reply);
    if (command == "policy-set") return vm_commands->policy_set(request, reply);
    if (command == "hooks") {
      Json events = Json::array();
      for (const Json& e : hook_events) events.push_back(e);
      return reply({{"ok", true}, {"events", events}});
    }
    reply(error("unknown command \"" + command + "\""));
  }
};

Result<std::unique_ptr<Daemon>> Daemon::start(DaemonConfig config, const Logger& log) {
  auto state = std::make_unique<State>();
  state->config = std::move(config);
  state->log = &log;
  state->started = now_us();
  const DaemonConfig& c = state->config;
  std::error_code ec;
  std::filesystem::create_directories(c.state_dir, ec);
  if (ec) return fail("state directory " + c.state_dir.string() + ": " + ec.message());
  if (c.abe_public_key) {
    auto key = read_kp_public_key(*c.abe_public_key);
    if (!key) return std::unexpected(key.error());
    state->abe_authority = *std::move(key);
  }
  // Read again at each sealing; a key that does not load now is a configuration error.
  if (c.abe_cp_public_key) {
    if (auto key = read_cp_public_key(*c.abe_cp_public_key); !key) {
      return std::unexpected(key.error());
    }
  }

  NodeRuntimeOptions o;
  o.genesis_file = c.genesis_file;
  o.node_id = c.node_id;
  o.key_file = c.key_file;
  o.store_dir = c.store_dir();
  o.join_at = c.join_at;
  o.listen_host = c.listen_host;
  o.round_timeout = c.round_timeout;
  o.silence = c.silence;
  o.window = c.window;
  o.mode = c.mode;
  o.verify_threads = c.verify_threads;
  o.miner_threads = c.miner_threads;
  o.alarm_command = c.alarm_command;
  o.log = [&log](const std::string& line) { log.info("consensus: " + line); };
  o.net_log = [&log](const std::string& line) { log.info(line); };
  o.on_accusation = [&log](const Accusation& a) {
    log.warning("ALARM: leader " + a.proposal.candidate.leader + " accused by " + a.accuser +
                ": package " + std::to_string(a.package_index) + " is " +
                std::string(to_string(a.verdict)));
  };
  o.on_misbehaviour = [&log](const Misbehaviour& m) {
    log.warning("ALARM: peer " + m.node + " sent " + std::string(to_string(m.offence)) + ": " +
                m.detail);
  };
  State* raw = state.get();
  o.on_agent_message = [raw, &log](const std::string& from, Bytes message) {
    if (Handoff* h = raw->handoff_inbox.load()) return h->receive(from, std::move(message));
    log.warning("agent message from " + from + " dropped: this node follows no libvirt");
  };
  auto node = NodeRuntime::start(std::move(o));
  if (!node) return std::unexpected(node.error());
  state->node = *std::move(node);

  if (c.libvirt_uri) {
    MeasurementAgentOptions measure;
    measure.node_id = c.node_id;
    measure.node_key = &state->node->key();
    measure.keystore = state->keystore_dir();
    measure.baselines = c.state_dir / "baselines";
    measure.libvirt_uri = *c.libvirt_uri;
    measure.policy_file = c.measure_policy;
    measure.interval = c.measure_interval;
    measure.retry = c.measure_retry;
    measure.command_timeout = c.measure_command_timeout;
    measure.workers = c.measure_workers;
    measure.abe_authority = state->abe_authority ? &*state->abe_authority : nullptr;
    if (c.abe_cp_public_key) measure.cp_public_key = *c.abe_cp_public_key;
    measure.log = &log;
    state->measurements =
        std::make_unique<MeasurementAgent>(measure, state->node->store(), state->node->service());
    Handoff::Options handoff;
    handoff.node_id = c.node_id;
    handoff.node_key = &state->node->key();
    handoff.keystore = state->keystore_dir();
    handoff.baselines = measure.baselines;
    handoff.log = &log;
    handoff.send = [raw](const std::string& to, Bytes message) {
      return raw->node->send_agent(to, std::move(message));
    };
    handoff.migrating_out = [uri = *c.libvirt_uri](const Uuid& vm) {
      return libvirt_migrating_out(uri, vm);
    };
    handoff.on_received = [raw](const Uuid&) { raw->reobserve_vms(); };
    state->handoff = std::make_unique<Handoff>(handoff, state->node->store());
    state->handoff_inbox = state->handoff.get();
    BindingAgent::Options binding;
    binding.node_id = c.node_id;
    binding.node_key = &state->node->key();
    binding.keystore = state->keystore_dir();
    binding.log = &log;
    binding.on_bound = [raw](const Uuid& vm) {
      raw->handoff->bound(vm);
      raw->measurements->bound(vm);
    };
    binding.handed_over = [raw](const Uuid& vm) { return raw->handoff->awaits_binding(vm); };
    // The new owner's policy: readable by them from now on, and, through the key link, the
    // VM's history before them (the newest policy decides, paper §IV.D).
    binding.on_transferred = [raw](const Uuid& vm, const std::string& owner) {
      const PolicyRecord policy = default_policy(vm, owner);
      (void)raw->measurements->set_policy(vm, policy.scheme, policy.attributes, policy.expression);
    };
    state->bindings =
        std::make_unique<BindingAgent>(binding, state->node->store(), state->node->service());
  }
  state->vm_commands = std::make_unique<VmCommands>(
      state->node->store(), state->keystore_dir(), c.measure_policy, state->measurements.get(),
      [raw](const std::string& domain) { return raw->lookup(domain); });

  ControlServer::Options control;
  control.socket = c.control_socket;
  control.group = c.control_group;
  control.log = [&log](const std::string& line) { log.warning(line); };
  auto server = ControlServer::start(
      control, [raw](const ControlPeer& peer, const Json& request, ControlServer::Reply reply) {
        raw->handle(peer, request, reply);
      });
  if (!server) return std::unexpected(server.error());
  state->control = *std::move(server);

  if (c.libvirt_uri) {
    LibvirtMonitorOptions monitor;
    monitor.uri = *c.libvirt_uri;
    monitor.log = [&log](std::string_view line) { log.info("libvirt: " + std::string(line)); };
    state->monitor = std::make_unique<LibvirtMonitor>(
        monitor, [raw](const MonitorEvent& e) { raw->on_libvirt(e); });
    // Connecting happens on the monitor's thread, with backoff: a libvirtd that is not up yet
    // is waited for, not fatal.
    if (auto started = state->monitor->start(); !started) return std::unexpected(started.error());
  }

  log.info("mchaind " + std::string(version()) + ": node " + c.node_id + " of chain \"" +
           state->node->genesis().chain + "\" (" +
           to_hex(state->node->genesis().hash()).substr(0, 16) + "), listening for peers on port " +
           std::to_string(state->node->port()) + ", control socket " + c.control_socket.string());
  log.info(c.libvirt_uri ? "libvirt: following " + *c.libvirt_uri
                         : "running without libvirt (\"libvirt\": null): no VM is followed");
  log.info(c.tpm_device ? "TPM: " + c.tpm_device->string() + " (not used yet: file key)"
                        : "running without a TPM: the node key is the file " + c.key_file.string());
  return std::unique_ptr<Daemon>(new Daemon(std::move(state)));
}

Daemon::Daemon(std::unique_ptr<State> state) : state_(std::move(state)) {}

Daemon::~Daemon() {
  if (state_->monitor) state_->monitor->stop();
  if (state_->control) state_->control->stop();
  if (state_->node) state_->node->stop();  // a binding waiting for its block is told "stopped"
  if (state_->bindings) state_->bindings->stop();
  if (state_->handoff) state_->handoff->stop();
  if (state_->measurements) state_->measurements->stop();
  if (state_->vm_commands) state_->vm_commands->stop();
  state_->waiters.join_all();  // every waiter's future is resolved by the stop
}

int Daemon::run(const std::atomic<bool>& stop) {
  State& s = *state_;
  notify_systemd("READY=1");
  notify_systemd("STATUS=serving");
  const auto watchdog = watchdog_interval();
  auto next_ping = std::chrono::steady_clock::now();
  std::uint64_t last_ticks = 0;
  while (!stop) {
    std::this_thread::sleep_for(kLoopPeriod);
    if (watchdog && std::chrono::steady_clock::now() >= next_ping) {
      // Pinged only while the consensus loop goes round: a stuck node gets restarted.
      const std::uint64_t ticks = s.node->service().snapshot().ticks;
      if (ticks != last_ticks) notify_systemd("WATCHDOG=1");
      last_ticks = ticks;
      next_ping = std::chrono::steady_clock::now() + *watchdog / 2;
    }
  }
  notify_systemd("STOPPING=1");
  s.draining = true;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::microseconds(s.config.drain_timeout);
  for (;;) {
    const NodeSnapshot snap = s.node->service().snapshot();
    if (snap.waiting == 0 && !snap.round_open) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      s.log->warning("stopping with " + std::to_string(snap.waiting) +
                     " packages unconfirmed after the drain timeout; they stay with the peers");
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  if (s.monitor) s.monitor->stop();
  s.control->stop();
  s.node->stop();
  if (s.bindings) s.bindings->stop();
  if (s.handoff) s.handoff->stop();
  if (s.measurements) s.measurements->stop();
  s.vm_commands->stop();
  s.log->info("stopped cleanly after " + std::to_string(s.node->service().snapshot().confirmed) +
              " confirmed blocks");
  return 0;
}

}  // namespace mchain::agent
