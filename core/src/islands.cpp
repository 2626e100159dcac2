#include "mixcast/core/islands.hpp"

#include <algorithm>

namespace mixcast {

std::optional<Reachability::Gap> Reachability::heard(NodeId sender, std::uint64_t mseq, Micros now) {
  Heard& h = heard_[sender];
  std::optional<Gap> gap;
  // Gaps only count once we have heard this sender recently; a stranger's history is not ours to repair.
  if (h.highest > 0 && mseq > h.highest + 1 && now - h.last_heard <= expiry_) gap = Gap{h.highest + 1, mseq - 1};
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
  if (!dirty_ && !islands_.empty()) return;
  dirty_ = false;
  islands_.clear();
  rank_of_.clear();
  std::unordered_map<NodeId, NodeId> leader_of;
  for (const auto& [leader, c] : claims_)  // ascending leaders: the lowest claim wins
    for (NodeId m : c.members)
      if (view.contains(m)) leader_of.try_emplace(m, leader);
  std::map<NodeId, std::vector<NodeId>> groups;  // keyed by lowest member: a stable order
  std::map<NodeId, NodeId> group_key;            // leader -> lowest member
  for (NodeId m : view.members()) {              // ascending ids
    auto it = leader_of.find(m);
    if (it == leader_of.end()) {
      groups[m].push_back(m);
      continue;
    }
    auto [k, inserted] = group_key.try_emplace(it->second, m);
    groups[k->second].push_back(m);
  }
  std::uint64_t h = 0xcbf29ce484222325ULL ^ view.hash();
  auto mix = [&h](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 0x100000001b3ULL;
    }
  };
  for (auto& [key, members] : groups) {
    mix(members.size());
    for (NodeId m : members) {
      mix(m);
      rank_of_[m] = static_cast<std::uint32_t>(islands_.size());
    }
    islands_.push_back(std::move(members));
  }
  hash_ = h;
}

std::uint32_t IslandView::island_of(NodeId n) const {
  auto it = rank_of_.find(n);
  return it == rank_of_.end() ? 0 : it->second;
}

}  // namespace mixcast
