#include "mixcast/core/view.hpp"

#include <algorithm>

namespace mixcast {

View::View(std::vector<NodeId> members, std::vector<NodeId> behind_nat, std::vector<std::uint32_t> nat_domains)
    : members_(std::move(members)) {
  std::sort(members_.begin(), members_.end());
  members_.erase(std::unique(members_.begin(), members_.end()), members_.end());
  nat_.assign(members_.size(), 0);
  for (std::size_t i = 0; i < behind_nat.size(); ++i)
    if (auto r = rank_of(behind_nat[i]))
      nat_[*r] = 1 + (i < nat_domains.size() ? nat_domains[i] : (std::uint64_t{1} << 32) + *r);
  // FNV-1a over the count and every id (little endian): cheap, stable across platforms.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 0x100000001b3ULL;
    }
  };
  mix(members_.size());
  for (std::size_t r = 0; r < members_.size(); ++r) {
    mix(members_[r]);
    mix(nat_[r]);
  }
  hash_ = h;
}

std::optional<std::uint32_t> View::rank_of(NodeId id) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), id);
  if (it == members_.end() || *it != id) return std::nullopt;
  return static_cast<std::uint32_t>(it - members_.begin());
}

}  // namespace mixcast

namespace mixcast {

bool View::behind_nat(NodeId id) const {
  auto r = rank_of(id);
  return r && nat_[*r] != 0;
}

bool View::same_nat(NodeId a, NodeId b) const {
  auto ra = rank_of(a), rb = rank_of(b);
  return ra && rb && nat_[*ra] != 0 && nat_[*ra] == nat_[*rb];
}

std::vector<NodeId> View::gateways(NodeId natted, std::size_t k) const {
  std::vector<NodeId> out;
  auto r = rank_of(natted);
  if (!r) return out;
  for (std::size_t i = 1; i < members_.size() && out.size() < k; ++i) {
    const std::size_t j = (*r + i) % members_.size();
    if (nat_[j] == 0) out.push_back(members_[j]);
  }
  return out;
}

}  // namespace mixcast
