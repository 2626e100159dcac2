#include "mixcast/core/islands.hpp"

#include <algorithm>

namespace mixcast {

std::optional<Reachability::Gap> Reachability::heard(NodeId sender, std::uint64_t mseq, Micros now) {
  Heard& h = heard_[sender];
  std::optional<Gap> gap;
  // Gaps only count once we have heard this sender recently; a stranger's history is not ours to repair.
  const bool recent = h.highest > 0 && now - h.last_heard <= expiry_;
  if (recent && mseq > h.highest + 1) gap = Gap{h.highest + 1, mseq - 1};
  if (!recent) {
    h.streak_since = now;
    h.listed = false;
  }
  if (mseq > h.highest) h.highest = mseq;
  ++h.since_confirm;
  h.last_heard = now;
  return gap;
}

void Reachability::confirmed(NodeId receiver, std::uint64_t highest, Micros now) {
  Hearer& h = hearers_[receiver];
  h.highest = std::max(h.highest, highest);
  h.repaired_to = std::max(h.repaired_to, h.highest);
  h.last_confirm = now;
}

bool Reachability::hears_me(NodeId n, Micros now) const {
  auto it = hearers_.find(n);
  return it != hearers_.end() && now - it->second.last_confirm <= expiry_;
}

bool Reachability::i_hear(NodeId n, Micros now) const {
  auto it = heard_.find(n);
  return it != heard_.end() && now - it->second.last_heard <= expiry_;
}

std::vector<NodeId> Reachability::mutual(Micros now) const {
  std::vector<NodeId> out;
  for (const auto& [n, h] : hearers_)
    if (now - h.last_confirm <= expiry_ && i_hear(n, now)) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

bool IslandView::claim(NodeId leader, std::uint64_t version, std::vector<NodeId> members, Micros now) {
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  auto& c = claims_[leader];
  if (version < c.version) return false;
  c.version = version;
  c.at = now;
  if (c.members == members) return false;
  c.members = std::move(members);
  dirty_ = true;
  return true;
}

bool IslandView::expire(Micros now, Micros max_age) {
  bool changed = false;
  for (auto it = claims_.begin(); it != claims_.end();) {
    if (now - it->second.at > max_age) {
      it = claims_.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  dirty_ |= changed;
  return changed;
}

void IslandView::rebuild(const View& view) {
  if (!dirty_ && view_ == &view && !islands_.empty()) return;
  dirty_ = false;
  view_ = &view;
  // Runs on every node at every change of the claims: linear in the view, vectors only.
  constexpr std::uint32_t kNone = UINT32_MAX;
  const std::size_t n = view.size();
  std::vector<std::uint32_t> leader_rank(n, kNone);  // by member rank: rank of the lowest leader claiming it
  for (const auto& [leader, c] : claims_) {  // ascending leaders: the lowest claim wins
    const auto lr = view.rank_of(leader);
    if (!lr) continue;
    for (NodeId m : c.members)
      if (auto r = view.rank_of(m); r && leader_rank[*r] == kNone) leader_rank[*r] = *lr;
  }
  // Islands ordered by their lowest member: walk the members in ascending order.
  islands_.clear();
  island_by_rank_.assign(n, kNone);
  std::vector<std::uint32_t> island_of_leader(n, kNone);  // by leader rank
  for (std::uint32_t r = 0; r < n; ++r) {
    std::uint32_t island;
    if (leader_rank[r] == kNone) {
      island = static_cast<std::uint32_t>(islands_.size());
      islands_.emplace_back();
    } else if (island_of_leader[leader_rank[r]] == kNone) {
      island = island_of_leader[leader_rank[r]] = static_cast<std::uint32_t>(islands_.size());
      islands_.emplace_back();
    } else {
      island = island_of_leader[leader_rank[r]];
    }
    islands_[island].push_back(view.at(r));
    island_by_rank_[r] = island;
  }
  std::uint64_t h = 0xcbf29ce484222325ULL ^ view.hash();
  auto mix = [&h](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 0x100000001b3ULL;
    }
  };
  for (const auto& members : islands_) {
    mix(members.size());
    for (NodeId m : members) mix(m);
  }
  hash_ = h;
}

std::uint32_t IslandView::island_of(NodeId n) const {
  if (!view_) return 0;
  auto r = view_->rank_of(n);
  return r && *r < island_by_rank_.size() ? island_by_rank_[*r] : 0;
}

}  // namespace mixcast
