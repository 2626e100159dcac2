#include "mixcast/core/islands.hpp"

#include <algorithm>

namespace mixcast {

Reachability::HeardResult Reachability::heard(NodeId sender, std::uint64_t incarnation, std::uint64_t mseq,
                                              Micros now) {
  Heard& h = heard_[sender];
  if (incarnation < h.incarnation) return HeardResult{false, std::nullopt};  // a late datagram of a past life
  if (incarnation > h.incarnation) h = Heard{incarnation};  // it restarted: a new stream, a new streak
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
  return HeardResult{true, gap};
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

namespace {

constexpr std::uint32_t kNone = UINT32_MAX;

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::uint64_t hash_ids(const std::vector<NodeId>& ids) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (NodeId id : ids) h = (h ^ id) * 0x100000001b3ULL;
  return splitmix(h ^ ids.size());
}

}  // namespace

// ---------------------------------------------------------------- IslandPartition

IslandPartition IslandPartition::build(const View& view,
                                       const std::vector<std::pair<NodeId, const ClaimMembers*>>& claims) {
  const std::size_t n = view.size();
  std::vector<std::uint32_t> leader_rank(n, kNone);  // by member rank: rank of the lowest leader claiming it
  for (const auto& [leader, c] : claims) {  // ascending leaders: the lowest claim wins
    const auto lr = view.rank_of(leader);
    if (!lr) continue;
    for (NodeId m : c->ids)
      if (auto r = view.rank_of(m); r && leader_rank[*r] == kNone) leader_rank[*r] = *lr;
  }
  // Islands ordered by their lowest member: walk the members in ascending order.
  IslandPartition p;
  p.island_by_rank_.assign(n, kNone);
  std::vector<std::uint32_t> island_of_leader(n, kNone);  // by leader rank
  std::vector<std::uint32_t> sizes;
  for (std::uint32_t r = 0; r < n; ++r) {
    std::uint32_t island;
    if (leader_rank[r] == kNone) {  // unclaimed: an island of one
      island = static_cast<std::uint32_t>(sizes.size());
      sizes.push_back(0);
    } else if (island_of_leader[leader_rank[r]] == kNone) {  // the claim's lowest member opens it
      island = island_of_leader[leader_rank[r]] = static_cast<std::uint32_t>(sizes.size());
      sizes.push_back(0);
    } else {
      island = island_of_leader[leader_rank[r]];
    }
    p.island_by_rank_[r] = island;
    ++sizes[island];
  }
  p.offsets_.assign(sizes.size() + 1, 0);
  for (std::size_t i = 0; i < sizes.size(); ++i) p.offsets_[i + 1] = p.offsets_[i] + sizes[i];
  p.members_.resize(n);
  std::vector<std::uint32_t> cursor(p.offsets_.begin(), p.offsets_.end() - 1);
  for (std::uint32_t r = 0; r < n; ++r) p.members_[cursor[p.island_by_rank_[r]]++] = view.at(r);
  return p;
}

// ---------------------------------------------------------------- IslandCache

template <class Table>
void IslandCache::sweep(Table& t, std::size_t& next) {
  for (auto it = t.begin(); it != t.end();) it = it->second.expired() ? t.erase(it) : std::next(it);
  next = std::max<std::size_t>(next / 2, 2 * t.size());
}

std::shared_ptr<const ClaimMembers> IslandCache::members(std::vector<NodeId> ids) {
  const std::uint64_t h = hash_ids(ids);
  auto [lo, hi] = members_.equal_range(h);
  for (auto it = lo; it != hi; ++it)
    if (auto held = it->second.lock(); held && held->ids == ids) return held;
  auto made = std::make_shared<const ClaimMembers>(ClaimMembers{std::move(ids), h});
  members_.emplace(h, made);
  if (members_.size() >= members_sweep_at_) sweep(members_, members_sweep_at_);
  return made;
}

std::shared_ptr<const IslandPartition> IslandCache::partition(const Key& key) const {
  auto it = partitions_.find(key);
  return it == partitions_.end() ? nullptr : it->second.lock();
}

void IslandCache::remember(const Key& key, const std::shared_ptr<const IslandPartition>& p) {
  partitions_[key] = p;
  if (partitions_.size() >= partitions_sweep_at_) sweep(partitions_, partitions_sweep_at_);
}

// ---------------------------------------------------------------- IslandView

IslandView::IslandView(std::shared_ptr<const View> view, std::shared_ptr<IslandCache> cache)
    : view_(std::move(view)), cache_(cache ? std::move(cache) : std::make_shared<IslandCache>()) {}

IslandView::Slot* IslandView::find(NodeId leader) {
  if (slots_.empty()) return nullptr;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = splitmix(leader) & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (!s.members) return nullptr;
    if (s.leader == leader) return &s;
  }
}

void IslandView::insert(Slot s) {
  if (5 * (count_ + 1) > 4 * slots_.size()) {  // load above 0.8: double
    std::vector<Slot> old(std::max<std::size_t>(16, 2 * slots_.size()));
    old.swap(slots_);
    count_ = 0;
    for (auto& o : old)
      if (o.members) insert(std::move(o));
  }
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = splitmix(s.leader) & mask;
  while (slots_[i].members) i = (i + 1) & mask;
  slots_[i] = std::move(s);
  ++count_;
}

void IslandView::account(const Slot& s, bool add) {
  // Two independent hashes of (leader, members), summed: the same claims in any order give the same sums.
  const std::uint64_t t1 = splitmix(s.members->hash ^ (std::uint64_t{s.leader} << 32));
  const std::uint64_t t2 = splitmix(s.members->hash + 0x632BE59BD9B4E019ULL * (std::uint64_t{s.leader} + 1));
  if (add) {
    sum1_ += t1;
    sum2_ += t2;
  } else {
    sum1_ -= t1;
    sum2_ -= t2;
  }
}

IslandView::Claimed IslandView::claim(NodeId leader, std::uint64_t incarnation, std::uint64_t version,
                                      std::vector<NodeId> members, Micros now) {
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  Slot* s = find(leader);
  if (!s) {
    if (count_ == 0 || now < oldest_at_) oldest_at_ = now;
    Slot made{leader, incarnation, version, now, cache_->members(std::move(members))};
    account(made, true);
    insert(std::move(made));
    dirty_ = true;
    return Claimed::changed;
  }
  const auto mine = std::make_pair(incarnation, version), held = std::make_pair(s->incarnation, s->version);
  if (mine < held) return Claimed::older;
  if (mine == held) return Claimed::duplicate;
  s->incarnation = incarnation;
  s->version = version;
  s->at = now;
  if (s->members->ids == members) return Claimed::refreshed;
  account(*s, false);
  s->members = cache_->members(std::move(members));
  account(*s, true);
  dirty_ = true;
  return Claimed::changed;
}

bool IslandView::expire(Micros now, Micros max_age) {
  // Leaders refresh their claims well within max_age: most ticks find nothing old enough to scan for.
  if (count_ == 0 || now - oldest_at_ <= max_age) return false;
  std::vector<Slot> kept;
  bool dropped = false;
  Micros oldest = now;
  for (auto& s : slots_) {
    if (!s.members) continue;
    if (now - s.at > max_age) {
      account(s, false);
      dropped = true;
    } else {
      oldest = std::min(oldest, s.at);
      kept.push_back(std::move(s));
    }
  }
  oldest_at_ = oldest;
  if (!dropped) return false;
  // Open addressing has no cheap erase: re-insert the survivors.
  slots_.assign(slots_.size(), Slot{});
  count_ = 0;
  for (auto& s : kept) insert(std::move(s));
  dirty_ = true;
  return true;
}

void IslandView::rebuild() const {
  if (!dirty_ && partition_) return;
  dirty_ = false;
  const IslandCache::Key k = key();
  if ((partition_ = cache_->partition(k))) return;
  std::vector<std::pair<NodeId, const ClaimMembers*>> claims;
  claims.reserve(count_);
  for (const auto& s : slots_)
    if (s.members) claims.emplace_back(s.leader, s.members.get());
  std::sort(claims.begin(), claims.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  partition_ = std::make_shared<const IslandPartition>(IslandPartition::build(*view_, claims));
  cache_->remember(k, partition_);
}

std::uint64_t IslandView::hash() const {
  std::uint64_t h = splitmix(view_->hash() ^ 0x15A4D5EEDULL);
  h = splitmix(h ^ sum1_);
  return splitmix(h + count_);
}

std::uint32_t IslandView::island_of(NodeId n) const {
  if (!partition_) return 0;
  auto r = view_->rank_of(n);
  return r ? partition_->island_of_rank(*r) : 0;
}

}  // namespace mixcast
