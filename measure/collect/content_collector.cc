// The content collector: guest-file-open/read/close, hashing on the host as chunks arrive.
#include <algorithm>

#include "chain/crypto/hash.h"
#include "measure/collect/collector.h"

namespace mchain::measure {

namespace {


PropertySet content_properties() {
  return PropertySet().add(Property::kSize).add(Property::kSha256).add(Property::kSha512);
}

class ContentCollector final : public Collector {
 public:
  ContentCollector(qga::Client& client, ContentOptions options)
      : client_(client), options_(options) {}

  std::string_view name() const override { return "content"; }
  PropertySet collectable() const override { return content_properties(); }

  qga::Result<Snapshot> collect(const Policy& policy) override {
    Snapshot snap = new_snapshot(policy);
    for (const Rule& rule : policy.rules()) {
      if (policy.is_stopped(rule.path)) continue;
      auto measured = measure(rule, snap);
      if (!measured) return std::unexpected(measured.error());
    }
    snap.finished = now_us();
    if (auto same = client_.check_same_boot(); !same) return std::unexpected(same.error());
    return snap;
  }

 private:
  std::size_t chunk_size() const {
    const std::size_t most = client_.max_read_chunk();
    return std::max<std::size_t>(1, options_.chunk_bytes ? std::min(options_.chunk_bytes, most)
                                                          : most);
  }

  // Per-file failures are recorded; only failures of the agent or the guest end the run.
  static bool fatal(const qga::Error& e) { return e.code != qga::Errc::kCommandFailed; }

  qga::Status measure(const Rule& rule, Snapshot& snap) {
    PropertySet want = rule.mask & content_properties();
    // A growing file is judged by its size alone, which reading gives.
    if (rule.mask.has(Property::kGrowing)) want.add(Property::kGrowing).add(Property::kSize);
    auto file = client_.open_file(rule.path);
    if (!file) {
      if (fatal(file.error())) return std::unexpected(file.error());
      // Absent: a removal when the baseline had it. Anything else is worth a record.
      if (file.error().message.find("No such file") != std::string::npos) return {};
      FileRecord r;
      r.error = file.error().message;
      snap.files.insert_or_assign(rule.path, std::move(r));
      return {};
    }
    crypto::Sha256 h256;
    crypto::Sha512 h512;
    auto size = file->read_to_end(chunk_size(), [&](ByteView piece) {
      if (want.has(Property::kSha256)) h256.update(piece);
      if (want.has(Property::kSha512)) h512.update(piece);
    });
    if (!size) {
      if (fatal(size.error())) return std::unexpected(size.error());
      FileRecord r;
      r.error = size.error().message;
      if (r.error.find("Is a directory") != std::string::npos) {
        r.error = "a directory: its entries cannot be listed without guest-exec";
      }
      snap.files.insert_or_assign(rule.path, std::move(r));
      return close(*file);
    }
    if (auto closed = close(*file); !closed) return closed;
    FileRecord r;
    r.size = *size;
    if (want.has(Property::kSha256)) r.sha256 = h256.finish();
    if (want.has(Property::kSha512)) r.sha512 = h512.finish();
    restrict_to(r, want);
    snap.files.insert_or_assign(rule.path, std::move(r));
    return {};
  }

  static qga::Status close(qga::GuestFile& file) {
    auto closed = file.close();
    if (!closed && fatal(closed.error())) return closed;
    return {};
  }

  qga::Client& client_;
  ContentOptions options_;
};

}  // namespace

std::unique_ptr<Collector> make_content_collector(qga::Client& client, ContentOptions options) {
  return std::make_unique<ContentCollector>(client, options);
}

qga::Result<std::unique_ptr<Collector>> choose_collector(qga::Client& client, BulkOptions bulk) {
  auto info = client.info();
  if (!info) return std::unexpected(info.error());
  if (info->allows("guest-exec") && info->allows("guest-exec-status")) {
    return make_bulk_collector(client, std::move(bulk));
  }
  if (info->allows("guest-file-open") && info->allows("guest-file-read") &&
      info->allows("guest-file-close")) {
    return make_content_collector(client);
  }
  return qga::fail(qga::Errc::kCommandDisabled,
                   "the guest agent (version " + info->version +
                       ") allows neither guest-exec nor the guest-file commands");
}

}  // namespace mchain::measure
