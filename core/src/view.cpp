#include "mixcast/core/view.hpp"

#include <algorithm>

namespace mixcast {

View::View(std::vector<NodeId> members) : members_(std::move(members)) {
  std::sort(members_.begin(), members_.end());
  members_.erase(std::unique(members_.begin(), members_.end()), members_.end());
  // FNV-1a over the count and every id (little endian): cheap, stable across platforms.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 0x100000001b3ULL;
    }
  };
  mix(members_.size());
  for (NodeId id : members_) mix(id);
  hash_ = h;
}

std::optional<std::uint32_t> View::rank_of(NodeId id) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), id);
  if (it == members_.end() || *it != id) return std::nullopt;
  return static_cast<std::uint32_t>(it - members_.begin());
}

}  // namespace mixcast
