// Collectors measure the paths a policy names inside a guest, through its guest agent.
//
//   bulk     one guest-exec of a POSIX-sh script per batch of trees (find, stat, sha256sum,
//            sha512sum): every property, any number of files, a few round trips.
//   content  guest-file-open/read/close: for guests that block guest-exec. Hashes stream on
//            the host; only content hashes and size can be known, and directories cannot be
//            listed, so only the paths the policy names are measured.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "measure/collect/bulk_script.h"
#include "measure/collect/snapshot.h"
#include "measure/policy/policy.h"
#include "measure/qga/client.h"

namespace mchain::measure {

class Collector {
 public:
  virtual ~Collector() = default;
  virtual std::string_view name() const = 0;
  // The properties this collector can know at all.
  virtual PropertySet collectable() const = 0;
  // Measures every path `policy` governs. Fails only when the run as a whole cannot be
  // trusted (agent gone, guest rebooted, a reply that cannot be parsed); per-file problems
  // are recorded in FileRecord::error and Snapshot::warnings.
  virtual qga::Result<Snapshot> collect(const Policy& policy) = 0;

 protected:
  // An empty snapshot of `policy` by this collector, started now.
  Snapshot new_snapshot(const Policy& policy) const {
    Snapshot snap;
    snap.collector = std::string(name());
    snap.collectable = collectable();
    snap.policy_hash = policy.hash();
    snap.started = now_us();
    return snap;
  }
};

struct BulkOptions {
  // Where the guest's find, stat, sha256sum… are looked up (PATH syntax), and the shell that
  // runs the script; tests point both at a busybox to check that tool flavour too.
  std::string path{bulk::kDefaultGuestPath};
  std::string shell = "/bin/sh";
  // Upper bound on one script's output; 0 = derive from the transport's reply cap and
  // qemu-ga's 16 MiB capture cap. Output beyond it means: split the batch and retry.
  std::size_t max_output_bytes = 0;
};

struct ContentOptions {
  // Bytes per guest-file-read; 0 = the default. At most qga::kMaxFileChunk, and less when
  // the transport's reply cap demands it.
  std::size_t chunk_bytes = 0;
};

std::unique_ptr<Collector> make_bulk_collector(qga::Client& client, BulkOptions options = {});
std::unique_ptr<Collector> make_content_collector(qga::Client& client, ContentOptions options = {});

// The best collector the guest allows, from guest-info: bulk when guest-exec and
// guest-exec-status are enabled, content when the guest-file commands are, else
// kCommandDisabled naming what is missing.
qga::Result<std::unique_ptr<Collector>> choose_collector(qga::Client& client,
                                                         BulkOptions bulk = {});

}  // namespace mchain::measure
