// The migration hand-off (SPEC §4, §10): a VM's secrets move with it from the host that runs
// it (the source) to the host it migrates to (the destination), over the peer network.
//
//   destination                                   source
//   hook "migrate|prepare begin" for a VM the
//   chain has on another node:  request ───────▶  grants only while libvirt here runs an
//                                                  outgoing migration of that VM, and only to
//                                                  a member of the valid pool:
//   stores the secrets (keystore,  ◀─────── grant  VM key, owner's user key, data keys and the
//   baseline); "Started Migrated" makes           measurement baseline, sealed to the
//   the binding agent submit `migrated`           destination's node key (chain/crypto/seal.h)
//                                                  "Stopped Migrated": forgets the VM key and
//                                                  stops signing for the VM
//
// The grant is bound (as the seal's associated data) to the VM, both node ids and the
// request's nonce, so it opens only at the node that asked, for that request. A migration that
// fails midway leaves the binding with the source: only a VM running at the destination makes
// it submit `migrated`, and a grant that was not used is dropped when the domain goes away.
// Links are TLS between admitted members, so `from` is the peer's authenticated node id.
#pragma once

#include <array>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/keystore.h"
#include "agent/systemd.h"
#include "chain/store/store.h"

namespace mchain::agent {

enum class HandoffKind : std::uint8_t { request = 1, grant = 2, refusal = 3 };

// One peer message of the hand-off: canonical CBOR, strictly decoded.
struct HandoffMessage {
  HandoffKind kind = HandoffKind::request;
  Uuid vm;
  std::string from;                      // the sender's node id
  std::string to;                        // the addressee's
  std::array<std::uint8_t, 16> nonce{};  // chosen by the requester, echoed by the answer
  Bytes sealed;                          // grant: the sealed secrets
  std::string reason;                    // refusal: why

  static constexpr std::size_t kMaxSealed = 200u << 10;
  Bytes encode() const;
  static Result<HandoffMessage> decode(ByteView encoded);
};

// What a grant carries, sealed.
struct VmSecrets {
  std::string owner;
  crypto::PrivateKey vm_key;
  crypto::PrivateKey user_key;
  std::vector<std::pair<std::uint64_t, crypto::AeadKey>> data_keys;  // by policy version
  Bytes baseline;  // the measurement baseline snapshot; empty if none (or too large to send)

  Bytes encode() const;
  static Result<VmSecrets> decode(ByteView encoded);
};

class Handoff {
 public:
  struct Options {
    std::string node_id;
    const crypto::PrivateKey* node_key = nullptr;
    std::filesystem::path keystore;
    std::filesystem::path baselines;  // <uuid>.snapshot, as the measurement agent keeps them
    const Logger* log = nullptr;
    // Sends an agent message to a linked peer (NodeRuntime::send_agent).
    std::function<Status(const std::string& to, Bytes message)> send;
    // Whether libvirt on this host runs an outgoing migration of the VM now.
    std::function<Result<bool>(const Uuid& vm)> migrating_out;
    // The destination stored a VM's secrets: its binding may follow once it runs here.
    std::function<void(const Uuid& vm)> on_received;
  };

  Handoff(Options options, const Store& view);
  ~Handoff();  // stop()
  Handoff(const Handoff&) = delete;
  Handoff& operator=(const Handoff&) = delete;

  // Destination: asks the VM's host on the chain for its secrets, unless this host holds
  // them already or the chain has the VM here. Never blocks.
  void request(const Uuid& vm);
  // An agent message from a peer (the network thread): queued, handled on our own thread.
  void receive(const std::string& from, Bytes message);
  // Source: the VM left this host by migration; its VM key is forgotten here.
  void released(const Uuid& vm);
  // Destination: the VM went away here without running (a failed migration): the secrets
  // received for it are dropped.
  void abandoned(const Uuid& vm);

  // Destination: whether this host received the VM's secrets by a hand-off that its binding
  // has not used yet. Only such a VM may be bound here as `migrated`: the source, which still
  // holds the key while the migration runs, never claims the VM for itself.
  bool awaits_binding(const Uuid& vm) const;
  // The `migrated` binding is confirmed: the hand-off is complete.
  void bound(const Uuid& vm);

  // What happened to the VM's hand-off, for `mchainctl vms`; null if nothing.
  nlohmann::json status(const Uuid& vm) const;
  void stop();

 private:
  struct Inbound {
    std::string from;
    Bytes message;
  };
  void run();
  void handle(const std::string& from, const HandoffMessage& m);
  void grant(const std::string& from, const HandoffMessage& m);
  void accept(const std::string& from, const HandoffMessage& m);
  void note(const Uuid& vm, std::string state, bool warn = false);
  Bytes aad(const Uuid& vm, const std::string& source, const std::string& destination,
            const std::array<std::uint8_t, 16>& nonce) const;

  Options options_;
  Keystore keystore_;
  const Store& view_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Inbound> inbox_;
  // Requests this node sent, by VM: the nonce its grant must echo, and whom it asked.
  struct Pending {
    std::array<std::uint8_t, 16> nonce{};
    std::string source;
    TimeUs asked = 0;
  };
  std::map<Uuid, Pending> pending_;
  std::map<Uuid, std::string> states_;
  std::set<Uuid> received_;  // secrets stored here, `migrated` binding not confirmed yet
  bool stopping_ = false;
  std::thread thread_;
};

// Whether libvirt at `uri` runs an outgoing migration of `vm` now (virDomainGetJobStats).
Result<bool> libvirt_migrating_out(const std::string& uri, const Uuid& vm);

}  // namespace mchain::agent
