#include "chain/node/buffers.h"

#include <algorithm>

namespace mchain {

namespace {

// The version of a waiting policy package (its header names the policy it carries).
std::uint64_t policy_version(const Package& p) { return p.header().policy.version; }

}  // namespace

CandidateBuffers::CandidateBuffers(BufferOptions options) : options_(options) {}

CandidateBuffers::Added CandidateBuffers::add(Package package, TimeUs now) {
  if (ids_.contains(package.id())) return Added::duplicate;
  const std::size_t bytes = package.encode().size();
  const Hash256 id = package.id();
  if (block_type_for(package.header().type) == BlockType::data) {
    auto later = std::upper_bound(
        data_.begin(), data_.end(), package, [](const Package& p, const Waiting& w) {
          const auto& a = p.header();
          const auto& b = w.package.header();
          return a.timestamp != b.timestamp ? a.timestamp < b.timestamp : p.id() < w.package.id();
        });
    data_.insert(later, Waiting{std::move(package), now, bytes});
    data_bytes_ += bytes;
    ids_.insert(id);
    return Added::queued;
  }
  if (package.header().type == PackageType::policy) {
    auto same_vm = std::find_if(policy_.begin(), policy_.end(), [&](const Waiting& w) {
      return w.package.header().type == PackageType::policy &&
             w.package.header().vm == package.header().vm;
    });
    if (same_vm != policy_.end()) {
      if (policy_version(package) <= policy_version(same_vm->package)) return Added::superseded;
      ids_.erase(same_vm->package.id());
      *same_vm = Waiting{std::move(package), now, bytes};
      ids_.insert(id);
      return Added::replaced;
    }
  }
  if (policy_.empty()) policy_opened_ = now;
  policy_.push_back(Waiting{std::move(package), now, bytes});
  ids_.insert(id);
  return Added::queued;
}

bool CandidateBuffers::data_due(TimeUs now) const {
  if (data_.empty()) return false;
  if (data_.size() >= options_.max_data_packages || data_bytes_ >= options_.max_data_bytes) {
    return true;
  }
  auto oldest =
      std::min_element(data_.begin(), data_.end(),
                       [](const Waiting& a, const Waiting& b) { return a.arrived < b.arrived; });
  return now >= oldest->arrived + options_.data_window;
}

bool CandidateBuffers::policy_due(TimeUs now) const {
  if (policy_.empty()) return false;
  return policy_.size() >= options_.max_policy_packages ||
         now >= *policy_opened_ + options_.policy_window;
}

std::optional<std::vector<Package>> CandidateBuffers::take_due(BlockType type, TimeUs now) {
  std::vector<Package> out;
  if (type == BlockType::data) {
    if (!data_due(now)) return std::nullopt;
    std::size_t bytes = 0;
    // At least one package, however large, so that an oversize one cannot block the buffer.
    while (!data_.empty() && out.size() < options_.max_data_packages &&
           (out.empty() || bytes + data_.front().bytes <= options_.max_data_bytes)) {
      bytes += data_.front().bytes;
      data_bytes_ -= data_.front().bytes;
      ids_.erase(data_.front().package.id());
      out.push_back(std::move(data_.front().package));
      data_.pop_front();
    }
    return out;
  }
  if (!policy_due(now)) return std::nullopt;
  const std::size_t n = std::min(policy_.size(), options_.max_policy_packages);
  for (std::size_t i = 0; i < n; ++i) {
    ids_.erase(policy_[i].package.id());
    out.push_back(std::move(policy_[i].package));
  }
  policy_.erase(policy_.begin(), policy_.begin() + static_cast<std::ptrdiff_t>(n));
  policy_opened_ = policy_.empty() ? std::nullopt : std::optional(now);
  return out;
}

void CandidateBuffers::put_back(std::vector<Package> packages, TimeUs arrived) {
  for (Package& p : packages) add(std::move(p), arrived);
  if (!policy_.empty()) policy_opened_ = std::min(policy_opened_.value_or(arrived), arrived);
}

void CandidateBuffers::remove(const std::vector<Hash256>& ids) {
  for (const Hash256& id : ids) {
    if (!ids_.erase(id)) continue;
    auto in_data = std::find_if(data_.begin(), data_.end(),
                                [&](const Waiting& w) { return w.package.id() == id; });
    if (in_data != data_.end()) {
      data_bytes_ -= in_data->bytes;
      data_.erase(in_data);
      continue;
    }
    std::erase_if(policy_, [&](const Waiting& w) { return w.package.id() == id; });
  }
  if (policy_.empty()) policy_opened_.reset();
}

std::optional<TimeUs> CandidateBuffers::next_deadline() const {
  std::optional<TimeUs> deadline;
  auto earliest = [&](TimeUs t) { deadline = deadline ? std::min(*deadline, t) : t; };
  for (const Waiting& w : data_) earliest(w.arrived + options_.data_window);
  if (policy_opened_) earliest(*policy_opened_ + options_.policy_window);
  return deadline;
}

std::size_t CandidateBuffers::size(BlockType type) const {
  return type == BlockType::data ? data_.size() : policy_.size();
}

std::vector<Package> CandidateBuffers::waiting() const {
  std::vector<Package> out;
  out.reserve(policy_.size() + data_.size());
  for (const Waiting& w : policy_) out.push_back(w.package);
  for (const Waiting& w : data_) out.push_back(w.package);
  return out;
}

}  // namespace mchain
