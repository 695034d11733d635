#include "agent/handoff.h"

#include <libvirt/libvirt.h>

#include "chain/crypto/hash.h"
#include "chain/crypto/seal.h"
#include "chain/encoding/cbor.h"
#include "chain/file_io.h"
#include "measure/qga/libvirt_glue.h"

namespace mchain::agent {

namespace {

using Json = nlohmann::json;

constexpr std::uint64_t kHandoffVersion = 1;
constexpr std::size_t kMaxPem = 4096;
constexpr std::size_t kMaxDataKeys = 1024;
// The baseline travels in the grant when it fits; a larger one is recorded anew at the
// destination (its first report there then says "baseline created").
constexpr std::size_t kMaxBaseline = 160u << 10;
constexpr std::string_view kAadLabel = "mchain handoff v1";
constexpr TimeUs kRequestPatience = 5'000'000;

std::string read_node_id(cbor::Reader& r, std::string_view field) {
  std::string id(r.text(field, 64));
  if (!valid_id(id)) throw cbor::DecodeError(std::string(field), "not a valid node id", 0);
  return id;
}

}  // namespace

// [version, kind, vm, from, to, nonce, sealed, reason]
Bytes HandoffMessage::encode() const {
  cbor::Writer w;
  w.array(8)
      .uint(kHandoffVersion)
      .uint(static_cast<std::uint64_t>(kind))
      .bytes(vm.bytes)
      .text(from)
      .text(to)
      .bytes(nonce)
      .bytes(sealed)
      .text(reason);
  return w.take();
}

Result<HandoffMessage> HandoffMessage::decode(ByteView encoded) {
  return cbor::decode(encoded, "handoff", [&](cbor::Reader& r) {
    r.array_exact("handoff", 8);
    if (r.uint("handoff.version") != kHandoffVersion) {
      throw cbor::DecodeError("handoff.version", "unknown hand-off version", 0);
    }
    HandoffMessage m;
    const std::uint64_t kind = r.uint("handoff.kind", 3);
    if (kind == 0) throw cbor::DecodeError("handoff.kind", "unknown kind", 0);
    m.kind = static_cast<HandoffKind>(kind);
    m.vm.bytes = r.fixed_bytes<16>("handoff.vm");
    m.from = read_node_id(r, "handoff.from");
    m.to = read_node_id(r, "handoff.to");
    m.nonce = r.fixed_bytes<16>("handoff.nonce");
    const ByteView sealed = r.bytes("handoff.sealed", kMaxSealed);
    m.sealed.assign(sealed.begin(), sealed.end());
    m.reason = std::string(r.text("handoff.reason", 1024));
    return m;
  });
}

// [version, owner, vm key PEM, user key PEM, [[version, key]...], baseline]
Bytes VmSecrets::encode() const {
  cbor::Writer w;
  w.array(6).uint(kHandoffVersion).text(owner).text(vm_key.pem()).text(user_key.pem());
  w.array(data_keys.size());
  for (const auto& [version, key] : data_keys) w.array(2).uint(version).bytes(key);
  w.bytes(baseline);
  return w.take();
}

Result<VmSecrets> VmSecrets::decode(ByteView encoded) {
  struct Raw {
    std::string owner, vm_pem, user_pem;
    std::vector<std::pair<std::uint64_t, crypto::AeadKey>> data_keys;
    Bytes baseline;
  };
  auto raw = cbor::decode(encoded, "secrets", [&](cbor::Reader& r) {
    r.array_exact("secrets", 6);
    if (r.uint("secrets.version") != kHandoffVersion) {
      throw cbor::DecodeError("secrets.version", "unknown version", 0);
    }
    Raw out;
    out.owner = std::string(r.text("secrets.owner", 64));
    out.vm_pem = std::string(r.text("secrets.vm_key", kMaxPem));
    out.user_pem = std::string(r.text("secrets.user_key", kMaxPem));
    const std::size_t n = r.array("secrets.data_keys", kMaxDataKeys);
    for (std::size_t i = 0; i < n; ++i) {
      r.array_exact("secrets.data_keys[]", 2);
      const std::uint64_t version = r.uint("secrets.data_keys[].version");
      out.data_keys.emplace_back(version,
                                 r.fixed_bytes<crypto::kAeadKeySize>("secrets.data_keys[].key"));
    }
    const ByteView baseline = r.bytes("secrets.baseline", kMaxBaseline);
    out.baseline.assign(baseline.begin(), baseline.end());
    return out;
  });
  if (!raw) return std::unexpected(raw.error());
  if (!valid_id(raw->owner)) return fail("secrets.owner: not a valid user id");
  auto vm_key = crypto::PrivateKey::from_pem(raw->vm_pem);
  if (!vm_key) return fail("secrets.vm_key: " + vm_key.error().message);
  auto user_key = crypto::PrivateKey::from_pem(raw->user_pem);
  if (!user_key) return fail("secrets.user_key: " + user_key.error().message);
  return VmSecrets{raw->owner, *std::move(vm_key), *std::move(user_key), std::move(raw->data_keys),
                   std::move(raw->baseline)};
}

Handoff::Handoff(Options options, const Store& view)
    : options_(std::move(options)), keystore_(options_.keystore), view_(view) {
  thread_ = std::thread([this] { run(); });
}

Handoff::~Handoff() { stop(); }

void Handoff::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Handoff::note(const Uuid& vm, std::string state, bool warn) {
  const std::string line = "hand-off of " + vm.to_string() + ": " + state;
  warn ? options_.log->warning(line) : options_.log->info(line);
  std::lock_guard lock(mutex_);
  states_[vm] = std::move(state);
}

Json Handoff::status(const Uuid& vm) const {
  std::lock_guard lock(mutex_);
  auto it = states_.find(vm);
  return it == states_.end() ? Json(nullptr) : Json(it->second);
}

Bytes Handoff::aad(const Uuid& vm, const std::string& source, const std::string& destination,
                   const std::array<std::uint8_t, 16>& nonce) const {
  cbor::Writer w;
  w.array(5).text(kAadLabel).bytes(vm.bytes).text(source).text(destination).bytes(nonce);
  return w.take();
}

void Handoff::request(const Uuid& vm) {
  const auto at = view_.vm_at(vm, now_us());
  if (!at || !at->host || *at->host == options_.node_id) return;  // nothing to hand over
  if (keystore_.has_vm_key(vm)) return;                           // here already
  HandoffMessage m;
  m.kind = HandoffKind::request;
  m.vm = vm;
  m.from = options_.node_id;
  m.to = *at->host;
  crypto::random_bytes(m.nonce);
  const TimeUs now = now_us();
  {
    std::lock_guard lock(mutex_);
    // libvirt calls both `migrate` and `prepare` for one incoming migration: one request
    // answers both, unless it went unanswered for a while.
    auto it = pending_.find(vm);
    if (it != pending_.end() && it->second.source == m.to &&
        now - it->second.asked < kRequestPatience) {
      return;
    }
    pending_[vm] = Pending{m.nonce, m.to, now};
  }
  if (auto sent = options_.send(m.to, m.encode()); !sent) {
    return note(vm, "cannot ask " + m.to + " for its secrets: " + sent.error().message, true);
  }
  note(vm, "asked " + m.to + " for its secrets");
}

void Handoff::receive(const std::string& from, Bytes message) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    inbox_.push_back({from, std::move(message)});
  }
  wake_.notify_all();
}

void Handoff::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !inbox_.empty(); });
    if (stopping_) return;
    Inbound in = std::move(inbox_.front());
    inbox_.pop_front();
    lock.unlock();
    auto m = HandoffMessage::decode(in.message);
    if (!m) {
      options_.log->warning("hand-off: unreadable message from " + in.from + ": " +
                            m.error().message);
    } else if (m->from != in.from || m->to != options_.node_id) {
      options_.log->warning("hand-off: message from " + in.from + " claims to be from " + m->from +
                            " to " + m->to + ": dropped");
    } else {
      handle(in.from, *m);
    }
    lock.lock();
  }
}

void Handoff::handle(const std::string& from, const HandoffMessage& m) {
  switch (m.kind) {
    case HandoffKind::request: return grant(from, m);
    case HandoffKind::grant: return accept(from, m);
    case HandoffKind::refusal:
      return note(m.vm, from + " refused to hand it over: " + m.reason, true);
  }
}

// Source side.
void Handoff::grant(const std::string& from, const HandoffMessage& m) {
  auto refuse = [&](const std::string& reason) {
    note(m.vm, "refused to " + from + ": " + reason, true);
    HandoffMessage r{HandoffKind::refusal, m.vm, options_.node_id, from, m.nonce, {}, reason};
    (void)options_.send(from, r.encode());
  };
  const TimeUs now = now_us();
  const auto at = view_.vm_at(m.vm, now);
  if (!at || at->host != options_.node_id)
    return refuse("the chain does not have it on " + options_.node_id);
  const auto destination = view_.node_key(from, now);
  if (!destination) return refuse(from + " is not a member of the cluster");
  auto migrating = options_.migrating_out(m.vm);
  if (!migrating)
    return refuse("cannot ask libvirt about its migration: " + migrating.error().message);
  if (!*migrating) return refuse("libvirt here runs no outgoing migration of it");
  auto vm_key = keystore_.vm_key(m.vm);
  if (!vm_key) return refuse(vm_key.error().message);
  auto user_key = keystore_.user_key(at->owner);
  if (!user_key) return refuse(user_key.error().message);
  VmSecrets secrets{at->owner, *std::move(vm_key), *std::move(user_key), {}, {}};
  for (std::uint64_t v = 1; at->policy && v <= at->policy->ref.version; ++v) {
    if (auto key = keystore_.data_key(m.vm, v)) secrets.data_keys.emplace_back(v, *key);
  }
  const auto baseline_file = options_.baselines / (m.vm.to_string() + ".snapshot");
  if (auto bytes = read_small_file(baseline_file, kMaxBaseline, "baseline")) {
    secrets.baseline.assign(bytes->begin(), bytes->end());
  }
  auto sealed =
      crypto::seal(*destination, secrets.encode(), aad(m.vm, options_.node_id, from, m.nonce));
  if (!sealed) return refuse("cannot seal to its node key: " + sealed.error().message);
  HandoffMessage g{HandoffKind::grant, m.vm, options_.node_id, from, m.nonce,
                   *std::move(sealed), {}};
  if (auto sent = options_.send(from, g.encode()); !sent) {
    return note(m.vm, "cannot send the grant to " + from + ": " + sent.error().message, true);
  }
  note(m.vm, "handed to " + from + " (" + std::to_string(secrets.data_keys.size()) + " data keys" +
                 (secrets.baseline.empty() ? "" : ", the baseline") + ")");
}

// Destination side.
void Handoff::accept(const std::string& from, const HandoffMessage& m) {
  Pending pending;
  {
    std::lock_guard lock(mutex_);
    auto it = pending_.find(m.vm);
    if (it == pending_.end() || it->second.nonce != m.nonce || it->second.source != from) {
      options_.log->warning("hand-off: a grant for " + m.vm.to_string() + " from " + from +
                            " that answers no request of ours: dropped");
      return;
    }
    pending = it->second;
    pending_.erase(it);
  }
  auto opened = crypto::open_sealed(*options_.node_key, m.sealed,
                                    aad(m.vm, from, options_.node_id, pending.nonce));
  if (!opened)
    return note(m.vm, "the grant from " + from + " does not open: " + opened.error().message, true);
  auto secrets = VmSecrets::decode(*opened);
  if (!secrets)
    return note(m.vm, "the grant from " + from + " is malformed: " + secrets.error().message, true);
  // What the chain says of the VM must match what arrived: the key it registered, its owner.
  const auto at = view_.vm_at(m.vm, now_us());
  if (!at || !(at->key == secrets->vm_key.public_key()) || at->owner != secrets->owner) {
    return note(m.vm, "the grant from " + from + " does not match the VM on the chain", true);
  }
  if (auto stored = keystore_.put_vm_key(m.vm, secrets->vm_key); !stored) {
    return note(m.vm, stored.error().message, true);
  }
  if (!keystore_.user_key(secrets->owner)) {
    if (auto stored = keystore_.put_user_key(secrets->owner, secrets->user_key); !stored) {
      return note(m.vm, stored.error().message, true);
    }
  }
  for (const auto& [version, key] : secrets->data_keys) {
    if (auto stored = keystore_.put_data_key(m.vm, version, key); !stored) {
      return note(m.vm, stored.error().message, true);
    }
  }
  if (!secrets->baseline.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.baselines, ec);
    auto written = write_file_atomically(options_.baselines / (m.vm.to_string() + ".snapshot"),
                                         as_chars(secrets->baseline), 0600, "baseline");
    if (!written) options_.log->warning("hand-off: " + written.error().message);
  }
  {
    std::lock_guard lock(mutex_);
    received_.insert(m.vm);
  }
  note(m.vm, "received from " + from + ": VM key, " + secrets->owner + "'s key, " +
                 std::to_string(secrets->data_keys.size()) + " data keys" +
                 (secrets->baseline.empty() ? "" : ", the baseline"));
  if (options_.on_received) options_.on_received(m.vm);
}

bool Handoff::awaits_binding(const Uuid& vm) const {
  std::lock_guard lock(mutex_);
  return received_.contains(vm);
}

void Handoff::bound(const Uuid& vm) {
  {
    std::lock_guard lock(mutex_);
    if (received_.erase(vm) == 0) return;
  }
  note(vm, "complete: bound here");
}

void Handoff::released(const Uuid& vm) {
  if (!keystore_.has_vm_key(vm)) return;
  if (auto removed = keystore_.remove_vm_key(vm); !removed) {
    return note(vm, removed.error().message, true);
  }
  note(vm, "migrated away: this host no longer holds its key");
}

void Handoff::abandoned(const Uuid& vm) {
  {
    std::lock_guard lock(mutex_);
    pending_.erase(vm);
    received_.erase(vm);
  }
  const auto at = view_.vm_at(vm, now_us());
  if (at && at->host == options_.node_id) return;  // it is ours after all
  if (!keystore_.has_vm_key(vm)) return;
  if (auto removed = keystore_.remove_vm_key(vm); !removed) {
    return note(vm, removed.error().message, true);
  }
  note(vm, "the migration here did not complete: its key is dropped, the source keeps it");
}

Result<bool> libvirt_migrating_out(const std::string& uri, const Uuid& vm) {
  namespace qga = measure::qga;
  qga::initialize_libvirt();
  qga::Connection connection(virConnectOpen(uri.c_str()));
  if (!connection)
    return fail("cannot connect to " + uri + ": " + qga::take_last_libvirt_error().message);
  virConnSetErrorFunc(connection.get(), nullptr, qga::ignore_libvirt_error);
  qga::Domain domain(virDomainLookupByUUIDString(connection.get(), vm.to_string().c_str()));
  if (!domain) return false;
  int type = VIR_DOMAIN_JOB_NONE;
  virTypedParameterPtr params = nullptr;
  int count = 0;
  if (virDomainGetJobStats(domain.get(), &type, &params, &count, 0) != 0) {
    return fail("job stats: " + qga::take_last_libvirt_error().message);
  }
  int operation = 0;
  const bool known = virTypedParamsGetInt(params, count, VIR_DOMAIN_JOB_OPERATION, &operation) == 1;
  virTypedParamsFree(params, count);
  return type != VIR_DOMAIN_JOB_NONE && known &&
         operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT;
}

}  // namespace mchain::agent
