// The bulk collector: one guest-exec per batch of trees, split when the output is cut.
#include <algorithm>
#include <deque>

#include "chain/crypto/hash.h"
#include "measure/collect/bulk_script.h"
#include "measure/collect/collector.h"

namespace mchain::measure {

namespace {

// qemu-ga cuts captured output at 16 MiB; a reply carries it base64-encoded (4/3) next to
// stderr (capped at 64 KiB by the script) and a little JSON.
constexpr std::size_t kAgentCaptureCap = 16u << 20;
constexpr std::size_t kReplyOverhead = 128u << 10;
// More roots in one script would make the command itself large (libvirt caps a request
// string at 4 MiB); the work queue splits them.
constexpr std::size_t kMaxRootsPerScript = 256;
// Guest diagnostics kept per run: enough to see what went wrong, bounded against a guest
// that floods stderr.
constexpr std::size_t kMaxWarnings = 1000;

std::string text_of(const Bytes& b) { return std::string(b.begin(), b.end()); }

class BulkCollector final : public Collector {
 public:
  BulkCollector(qga::Client& client, BulkOptions options)
      : client_(client), options_(std::move(options)) {}

  std::string_view name() const override { return "bulk"; }
  PropertySet collectable() const override { return PropertySet::all(); }

  qga::Result<Snapshot> collect(const Policy& policy) override {
    Snapshot snap = new_snapshot(policy);

    std::deque<std::vector<bulk::WalkRoot>> work;
    std::vector<bulk::WalkRoot> all = bulk::plan(policy);
    for (std::size_t i = 0; i < all.size(); i += kMaxRootsPerScript) {
      auto end =
          all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), i + kMaxRootsPerScript));
      work.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(i), end);
    }
    while (!work.empty()) {
      std::vector<bulk::WalkRoot> group = std::move(work.front());
      work.pop_front();
      auto run = run_script(group);
      if (!run) return std::unexpected(run.error());
      if (!run->parsed.complete) {
        if (group.size() > 1) {
          auto mid = group.begin() + static_cast<std::ptrdiff_t>(group.size() / 2);
          work.emplace_front(mid, group.end());
          work.emplace_front(group.begin(), mid);
        } else {
          auto parts = split_tree(group.front());
          if (!parts) return std::unexpected(parts.error());
          for (auto& part : *parts) work.push_front({std::move(part)});
        }
        continue;
      }
      for (std::size_t r = 0; r < group.size(); ++r) {
        add_root(policy, group[r], run->parsed.roots[r], snap);
      }
      for (std::string& w : run->warnings) snap.warnings.push_back(std::move(w));
    }
    snap.finished = now_us();
    if (auto same = client_.check_same_boot(); !same) return std::unexpected(same.error());
    return snap;
  }

 private:
  std::size_t output_cap() const {
    if (options_.max_output_bytes) return options_.max_output_bytes;
    std::size_t reply = client_.transport().max_reply_bytes();
    std::size_t by_reply = reply > kReplyOverhead ? (reply - kReplyOverhead) / 4 * 3 : 4096;
    return std::min(kAgentCaptureCap - 1, by_reply);
  }

  struct ExecOutput {
    std::string out;
    std::string err;
    bool truncated = false;
  };

  qga::Result<ExecOutput> exec_script(const std::string& script) {
    auto result = client_.exec(options_.shell, {"-s"}, as_bytes(script));
    if (!result) return std::unexpected(result.error());
    if (result->signal || result->exit_code != 0) {
      std::string why = result->signal ? "was killed by signal " + std::to_string(*result->signal)
                                       : "exited with status " + std::to_string(result->exit_code);
      return qga::fail(qga::Errc::kCommandFailed,
                       "the measurement script in the guest " + why + ": " + text_of(result->err));
    }
    return ExecOutput{text_of(result->out), text_of(result->err), result->out_truncated};
  }

  struct Run {
    bulk::ParsedOutput parsed;
    std::vector<std::string> warnings;  // the guest tools' stderr, line by line
  };

  qga::Result<Run> run_script(const std::vector<bulk::WalkRoot>& group) {
    std::size_t cap = output_cap();
    auto out = exec_script(bulk::script(group, cap, options_.path));
    if (!out) return std::unexpected(out.error());
    auto parsed = bulk::parse(group, out->out);
    if (!parsed) return qga::fail(qga::Errc::kMalformedReply, parsed.error().message);
    Run run{std::move(*parsed), {}};
    if (out->truncated) run.parsed.complete = false;
    // A cut run is repeated in parts, which say the same again.
    if (run.parsed.complete) {
      for_each_line(out->err, [&run](std::string_view line) {
        if (run.warnings.size() < kMaxWarnings)
          run.warnings.push_back("guest: " + std::string(line));
      });
    }
    return run;
  }

  // A single tree too large for one output: the root alone, plus each entry below it as a
  // tree of its own (one level less deep).
  qga::Result<std::vector<bulk::WalkRoot>> split_tree(const bulk::WalkRoot& root) {
    if (root.depth == 0) {
      return qga::fail(qga::Errc::kOversizeReply,
                       "the record of " + root.path + " alone does not fit in the output cap");
    }
    auto out = exec_script(bulk::children_script(root, output_cap(), options_.path));
    if (!out) return std::unexpected(out.error());
    auto children = bulk::parse_children(root, out->out);
    if (!children) return qga::fail(qga::Errc::kMalformedReply, children.error().message);
    if (!*children || out->truncated) {
      return qga::fail(qga::Errc::kOversizeReply,
                       "the listing of " + root.path + " alone does not fit in the output cap");
    }
    std::vector<bulk::WalkRoot> parts;
    bulk::WalkRoot self = root;
    self.depth = 0;
    self.prunes.clear();
    parts.push_back(std::move(self));
    for (std::string& child : **children) {
      bulk::WalkRoot part = root;
      part.path = std::move(child);
      part.depth = root.depth < 0 ? -1 : root.depth - 1;
      part.prunes.clear();
      for (const std::string& p : root.prunes) {
        if (p.size() > part.path.size() && p.starts_with(part.path) && p[part.path.size()] == '/') {
          part.prunes.push_back(p);
        }
      }
      parts.push_back(std::move(part));
    }
    return parts;
  }

  template <class F>
  static void for_each_line(std::string_view text, F&& f) {
    while (!text.empty()) {
      std::size_t nl = std::min(text.find('\n'), text.size());
      if (nl > 0) f(text.substr(0, nl));
      text.remove_prefix(std::min(nl + 1, text.size()));
    }
  }

  static void add_root(const Policy& policy, const bulk::WalkRoot& root, bulk::RootOutput& out,
                       Snapshot& snap) {
    if (out.find_status != 0 && !out.entries.empty()) {
      snap.warnings.push_back("find exited with status " + std::to_string(out.find_status) +
                              " while walking " + root.path + "; part of the tree may be missing");
    }
    for (bulk::RawEntry& e : out.entries) {
      const Rule* rule = policy.governing_rule(e.path);
      if (!rule) continue;  // beyond the rule's depth or under a stop point
      if (!e.stat_ok) {
        snap.warnings.push_back(e.path + " vanished while it was being measured");
        continue;
      }
      FileRecord& r = e.record;
      PropertySet want = rule->mask;
      if (want.has(Property::kGrowing)) want.add(Property::kSize);
      bool hashable = r.type == FileType::kRegular || r.type == FileType::kSymlink;
      if (!hashable) want.remove(Property::kSha256).remove(Property::kSha512);
      if (r.type == FileType::kSymlink && r.link_target.empty()) {
        // Linux has no empty link targets: readlink found it gone after stat saw it.
        r.error = "link target could not be read";
        want.remove(Property::kSha256).remove(Property::kSha512);
      } else if (r.type == FileType::kSymlink) {
        // The link's content is its target text.
        if (want.has(Property::kSha256)) r.sha256 = crypto::sha256(as_bytes(r.link_target));
        if (want.has(Property::kSha512)) r.sha512 = crypto::sha512(as_bytes(r.link_target));
      } else if (r.type == FileType::kRegular) {
        if ((want.has(Property::kSha256) && !e.has_sha256) ||
            (want.has(Property::kSha512) && !e.has_sha512)) {
          r.error = "content could not be read";
          want.remove(Property::kSha256).remove(Property::kSha512);
        }
      }
      if (r.type != FileType::kSymlink) r.link_target.clear();
      restrict_to(r, want);
      snap.files.insert_or_assign(std::move(e.path), std::move(r));
    }
  }

  qga::Client& client_;
  BulkOptions options_;
};

}  // namespace

std::unique_ptr<Collector> make_bulk_collector(qga::Client& client, BulkOptions options) {
  return std::make_unique<BulkCollector>(client, std::move(options));
}

}  // namespace mchain::measure
