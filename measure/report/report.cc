#include "measure/report/report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "chain/encoding/cbor.h"

namespace mchain::measure {

namespace {

constexpr std::uint64_t kReportVersion = 1;
constexpr std::size_t kMaxChanges = 10'000'000;
constexpr std::size_t kMaxText = 1 << 16;
constexpr std::size_t kMaxErrors = 100'000;

constexpr Property kAllProperties[] = {
    Property::kPermissions, Property::kInode,   Property::kLinks,  Property::kUid,
    Property::kGid,         Property::kType,    Property::kSize,   Property::kDevice,
    Property::kRdev,        Property::kBlocks,  Property::kMtime,  Property::kCtime,
    Property::kAtime,       Property::kGrowing, Property::kSha256, Property::kSha512,
};

// Guest file names are untrusted bytes: escape anything that could end a line, move the
// cursor or break the surrounding quotes.
std::string display(std::string_view s) {
  bool utf8 = valid_utf8(s);
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == '\\' || c == '"' || (c >= 0x80 && !utf8)) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

// twprint's names for the properties, for the text report (JSON uses property_name()).
std::string_view display_name(Property p) {
  static constexpr std::string_view kNames[kPropertyCount] = {
      "Permissions", "Inode Number", "Num Links", "User ID", "Group ID",    "Object Type",
      "Size",        "Device",       "Rdev",      "Blocks",  "Modify Time", "Change Time",
      "Access Time", "Growing Size", "SHA-256",   "SHA-512"};
  return kNames[static_cast<std::size_t>(p)];
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

const std::string kRuler(79, '=');
const std::string kThinRuler(79, '-');

}  // namespace

std::string_view change_kind_name(ChangeKind k) {
  switch (k) {
    case ChangeKind::kAdded: return "added";
    case ChangeKind::kRemoved: return "removed";
    case ChangeKind::kChanged: return "changed";
  }
  return "?";
}

std::size_t Report::count(ChangeKind k) const {
  return static_cast<std::size_t>(std::count_if(
      changes.begin(), changes.end(), [k](const ObjectChange& c) { return c.kind == k; }));
}

int Report::exit_code() const {
  int code = 0;
  if (count(ChangeKind::kAdded)) code |= 1;
  if (count(ChangeKind::kRemoved)) code |= 2;
  if (count(ChangeKind::kChanged)) code |= 4;
  if (!errors.empty()) code |= 8;
  return code;
}

Report compare(const Policy& policy, const Snapshot* baseline, const Snapshot& current) {
  Report report;
  report.vm = current.vm;
  report.policy_hash = current.policy_hash;
  report.collector = current.collector;
  report.started = current.started;
  report.finished = current.finished;
  report.objects_scanned = current.files.size();
  PropertySet asked;
  for (const Rule& r : policy.rules()) asked = asked | r.mask;
  report.not_collected =
      asked.without(current.collectable).without(PropertySet().add(Property::kGrowing));
  report.errors = current.warnings;
  for (const auto& [path, record] : current.files) {
    if (!record.error.empty()) report.errors.push_back(display(path) + ": " + record.error);
  }
  if (current.policy_hash != policy.hash()) {
    report.errors.push_back("the measurement was taken under another policy than the one given");
    return report;
  }
  if (!baseline) {
    report.baseline_created = true;
    return report;
  }
  if (baseline->policy_hash != current.policy_hash) {
    report.errors.push_back("the baseline was recorded under another policy (" +
                            to_hex(baseline->policy_hash) + "); record a new baseline");
    return report;
  }
  if (baseline->collector != current.collector) {
    report.errors.push_back("the baseline was recorded by the " + baseline->collector +
                            " collector and this run used the " + current.collector +
                            " collector; record a new baseline");
    return report;
  }

  auto object = [&](ChangeKind kind, const std::string& path) -> ObjectChange* {
    const Rule* rule = policy.governing_rule(path);
    if (!rule) return nullptr;
    report.changes.push_back(ObjectChange{kind, path, rule->name, rule->severity, {}});
    return &report.changes.back();
  };

  auto b = baseline->files.begin();
  auto c = current.files.begin();
  while (b != baseline->files.end() || c != current.files.end()) {
    if (c == current.files.end() || (b != baseline->files.end() && b->first < c->first)) {
      object(ChangeKind::kRemoved, b->first);
      ++b;
      continue;
    }
    if (b == baseline->files.end() || c->first < b->first) {
      object(ChangeKind::kAdded, c->first);
      ++c;
      continue;
    }
    const Rule* rule = policy.governing_rule(c->first);
    if (rule) {
      const FileRecord& old_r = b->second;
      const FileRecord& new_r = c->second;
      PropertySet both = rule->mask & old_r.collected & new_r.collected;
      std::vector<PropertyChange> diffs;
      for (Property p : kAllProperties) {
        if (!both.has(p)) continue;
        if (p == Property::kGrowing) {
          if (!both.has(Property::kSize) && new_r.size < old_r.size) {
            diffs.push_back({p, property_text(old_r, p), property_text(new_r, p)});
          }
          continue;
        }
        std::string before = property_text(old_r, p);
        std::string after = property_text(new_r, p);
        if (before != after) diffs.push_back({p, std::move(before), std::move(after)});
      }
      if (!diffs.empty()) {
        report.changes.push_back(ObjectChange{ChangeKind::kChanged, c->first, rule->name,
                                              rule->severity, std::move(diffs)});
      }
    }
    ++b;
    ++c;
  }
  // The merge above visits paths in order, so the changes are sorted by path already.
  return report;
}

Report failed_run(const Policy& policy, std::string vm, std::string collector, TimeUs started,
                  std::string error) {
  Report report;
  report.vm = std::move(vm);
  report.policy_hash = policy.hash();
  report.collector = std::move(collector);
  report.started = started;
  report.finished = now_us();
  report.errors.push_back(std::move(error));
  return report;
}

Bytes encode_report(const Report& r) {
  cbor::Writer w;
  w.array(12)
      .uint(kReportVersion)
      .text(r.vm)
      .bytes(r.policy_hash)
      .text(r.collector)
      .uint(r.started)
      .uint(r.finished)
      .uint(r.baseline_created ? 1 : 0)
      .uint(r.objects_scanned)
      .uint(r.not_collected.bits())
      .array(r.changes.size());
  for (const ObjectChange& c : r.changes) {
    w.array(5)
        .uint(static_cast<std::uint64_t>(c.kind))
        .bytes(as_bytes(c.path))
        .text(c.rule)
        .uint(c.severity)
        .array(c.changes.size());
    for (const PropertyChange& p : c.changes) {
      w.array(3).uint(static_cast<std::uint64_t>(p.property)).text(p.old_value).text(p.new_value);
    }
  }
  w.array(r.errors.size());
  for (const std::string& e : r.errors) w.bytes(as_bytes(e));
  w.uint(0);  // reserved
  return w.take();
}

Result<Report> decode_report(ByteView bytes) {
  return cbor::decode(bytes, "report", [](cbor::Reader& in) {
    in.array_exact("report", 12);
    if (in.uint("report.version") != kReportVersion) {
      throw cbor::DecodeError("report.version", "unsupported version", 0);
    }
    Report r;
    r.vm = std::string(in.text("report.vm", kMaxText));
    r.policy_hash = in.fixed_bytes<32>("report.policy_hash");
    r.collector = std::string(in.text("report.collector", 64));
    r.started = in.uint("report.started");
    r.finished = in.uint("report.finished");
    r.baseline_created = in.uint("report.baseline_created", 1) == 1;
    r.objects_scanned = in.uint("report.objects_scanned");
    r.not_collected = PropertySet::from_bits(
        static_cast<std::uint16_t>(in.uint("report.not_collected", (1u << kPropertyCount) - 1)));
    std::size_t n = in.array("report.changes", kMaxChanges);
    for (std::size_t i = 0; i < n; ++i) {
      in.array_exact("change", 5);
      ObjectChange c;
      c.kind = static_cast<ChangeKind>(
          in.uint("change.kind", static_cast<std::uint64_t>(ChangeKind::kChanged)));
      ByteView path = in.bytes("change.path", 4096);
      c.path.assign(path.begin(), path.end());
      c.rule = std::string(in.text("change.rule", kMaxText));
      c.severity = static_cast<std::uint32_t>(in.uint("change.severity", 1'000'000));
      std::size_t props = in.array("change.properties", kPropertyCount);
      for (std::size_t k = 0; k < props; ++k) {
        in.array_exact("property", 3);
        PropertyChange p;
        p.property = static_cast<Property>(in.uint("property.id", kPropertyCount - 1));
        p.old_value = std::string(in.text("property.old", 256));
        p.new_value = std::string(in.text("property.new", 256));
        c.changes.push_back(std::move(p));
      }
      r.changes.push_back(std::move(c));
    }
    std::size_t errors = in.array("report.errors", kMaxErrors);
    for (std::size_t i = 0; i < errors; ++i) {
      ByteView e = in.bytes("report.error", kMaxText);
      r.errors.emplace_back(e.begin(), e.end());
    }
    in.uint("report.reserved", 0);
    return r;
  });
}

nlohmann::json report_to_json(const Report& r) {
  using nlohmann::json;
  json changes = json::array();
  for (const ObjectChange& c : r.changes) {
    json o = {{"kind", change_kind_name(c.kind)}, {"rule", c.rule}, {"severity", c.severity}};
    if (valid_utf8(c.path)) {
      o["path"] = c.path;
    } else {
      o["path"] = display(c.path);
      o["path_escaped"] = true;
    }
    if (c.kind == ChangeKind::kChanged) {
      json props = json::array();
      for (const PropertyChange& p : c.changes) {
        props.push_back({{"property", property_name(p.property)},
                         {"code", property_code(p.property)},
                         {"old", p.old_value},
                         {"new", p.new_value}});
      }
      o["properties"] = std::move(props);
    }
    changes.push_back(std::move(o));
  }
  json errors = json::array();
  for (const std::string& e : r.errors) errors.push_back(display(e));
  json not_collected = json::array();
  for (Property p : kAllProperties) {
    if (r.not_collected.has(p)) not_collected.push_back(property_code(p));
  }
  return {{"vm", r.vm},
          {"policy_hash", to_hex(r.policy_hash)},
          {"collector", r.collector},
          {"started", format_time(r.started)},
          {"finished", format_time(r.finished)},
          {"baseline_created", r.baseline_created},
          {"objects_scanned", r.objects_scanned},
          {"added", r.count(ChangeKind::kAdded)},
          {"removed", r.count(ChangeKind::kRemoved)},
          {"changed", r.count(ChangeKind::kChanged)},
          {"violations", r.changes.size()},
          {"not_collected", std::move(not_collected)},
          {"changes", std::move(changes)},
          {"errors", std::move(errors)},
          {"exit_code", r.exit_code()}};
}

std::string report_to_text(const Report& r, const Policy& policy, ReportLevel level) {
  std::ostringstream out;
  out << "mchain Integrity Check Report\n\n";
  out << pad("VM:", 30) << display(r.vm) << "\n";
  out << pad("Policy (SHA-256):", 30) << to_hex(r.policy_hash) << "\n";
  out << pad("Collector:", 30) << r.collector << "\n";
  out << pad("Check started:", 30) << format_time(r.started) << "\n";
  out << pad("Check finished:", 30) << format_time(r.finished) << "\n";
  if (!r.not_collected.empty()) {
    out << pad("Properties not collected:", 30);
    for (Property p : kAllProperties) {
      if (r.not_collected.has(p)) out << property_code(p) << ' ';
    }
    out << "(the collector cannot know them)\n";
  }
  out << "\n" << kRuler << "\nReport Summary:\n" << kRuler << "\n\n";
  out << pad("Total objects scanned:", 30) << r.objects_scanned << "\n";
  out << pad("Total violations found:", 30) << r.changes.size() << "\n";
  if (r.baseline_created) out << "\nBaseline recorded: this is the first run of this policy.\n";

  // Per rule: counts of added, removed and modified objects; '*' marks rules with violations.
  struct Counts {
    std::size_t added = 0, removed = 0, changed = 0;
  };
  std::map<std::string, Counts> by_rule;
  for (const ObjectChange& c : r.changes) {
    Counts& n = by_rule[c.rule];
    (c.kind == ChangeKind::kAdded     ? n.added
     : c.kind == ChangeKind::kRemoved ? n.removed
                                      : n.changed)++;
  }
  out << "\n" << kRuler << "\nRule Summary:\n" << kRuler << "\n\n";
  out << "  " << pad("Rule Name", 32) << pad("Severity Level", 18) << pad("Added", 9)
      << pad("Removed", 9) << "Modified\n";
  out << "  " << pad("---------", 32) << pad("--------------", 18) << pad("-----", 9)
      << pad("-------", 9) << "--------\n";
  for (const Rule& rule : policy.rules()) {
    auto it = by_rule.find(rule.name);
    Counts n = it == by_rule.end() ? Counts{} : it->second;
    bool flagged = n.added + n.removed + n.changed > 0;
    out << (flagged ? "* " : "  ") << pad(display(rule.name), 32)
        << pad(std::to_string(rule.severity), 18) << pad(std::to_string(n.added), 9)
        << pad(std::to_string(n.removed), 9) << n.changed << "\n";
    out << "  (" << display(rule.path) << ")\n";
  }

  if (!r.changes.empty()) {
    // Grouped by the rule each change names, from the report alone: a verifier printing a
    // report from the chain need not hold the policy.
    out << "\n" << kRuler << "\nObject Summary:\n" << kRuler << "\n";
    std::map<std::string, std::vector<const ObjectChange*>> by_rule_name;
    for (const ObjectChange& c : r.changes) by_rule_name[c.rule].push_back(&c);
    for (const auto& [name, changes] : by_rule_name) {
      out << "\n"
          << kThinRuler << "\nRule Name: " << display(name)
          << "\nSeverity Level: " << changes.front()->severity << "\n"
          << kThinRuler << "\n";
      for (ChangeKind kind : {ChangeKind::kAdded, ChangeKind::kRemoved, ChangeKind::kChanged}) {
        bool kind_header = false;
        for (const ObjectChange* c : changes) {
          if (c->kind != kind) continue;
          if (!kind_header) {
            out << "\n"
                << (kind == ChangeKind::kAdded     ? "Added:"
                    : kind == ChangeKind::kRemoved ? "Removed:"
                                                   : "Modified:")
                << "\n";
            kind_header = true;
          }
          out << "\"" << display(c->path) << "\"\n";
        }
      }
    }
  }

  if (level == ReportLevel::kDetail && r.count(ChangeKind::kChanged) > 0) {
    out << "\n" << kRuler << "\nObject Detail:\n" << kRuler << "\n";
    for (const ObjectChange& c : r.changes) {
      if (c.kind != ChangeKind::kChanged) continue;
      out << "\n"
          << kThinRuler << "\nModified Object: \"" << display(c.path) << "\"\n"
          << "Rule: " << display(c.rule) << "   Severity: " << c.severity << "\n"
          << kThinRuler << "\n\n";
      out << "  " << pad("Property:", 21) << "Expected / Observed\n";
      out << "  " << pad("-------------", 21) << "-------------------\n";
      for (const PropertyChange& p : c.changes) {
        out << "* " << pad(std::string(display_name(p.property)), 21) << p.old_value << "\n";
        out << "  " << pad("", 21) << p.new_value << "\n";
      }
    }
  }

  out << "\n" << kRuler << "\nError Report:\n" << kRuler << "\n\n";
  if (r.errors.empty()) {
    out << "No Errors\n";
  } else {
    for (std::size_t i = 0; i < r.errors.size(); ++i) {
      out << (i + 1) << ".  " << display(r.errors[i]) << "\n";
    }
  }
  out << "\n" << kThinRuler << "\n*** End of report ***\n";
  return out.str();
}

}  // namespace mchain::measure
