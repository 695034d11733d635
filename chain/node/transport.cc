#include "chain/node/transport.h"

namespace mchain {

void LocalTransport::attach(std::string node, Deliver deliver) {
  nodes_[std::move(node)] = std::move(deliver);
}

void LocalTransport::broadcast(const std::string& from, const Bytes& message) {
  if (observer_) observer_(from, message);
  for (const auto& [to, deliver] : nodes_) {
    if (to == from || (filter_ && !filter_(from, to))) continue;
    queue_.push_back(Envelope{from, to, message});
  }
}

void LocalTransport::send_to(const std::string& from, const std::string& to, const Bytes& message) {
  if (to == from || !nodes_.contains(to) || (filter_ && !filter_(from, to))) return;
  queue_.push_back(Envelope{from, to, message});
}

std::size_t LocalTransport::pump() {
  std::size_t delivered = 0;
  while (!queue_.empty()) {
    Envelope next = std::move(queue_.front());
    queue_.pop_front();
    auto node = nodes_.find(next.to);
    if (node == nodes_.end()) continue;
    node->second(next.from, next.message);
    ++delivered;
  }
  return delivered;
}

}  // namespace mchain
