// Multicast reachability learning and the cluster-wide island view.
//
// Reachability: every multicast carries (sender, mseq). A receiver remembers, per sender, the highest
// mseq heard and confirms to the senders now and then (a multicast list naming every sender heard,
// about once per beacon interval; a TCP Confirm to a sender that does not hear those lists). A sender counts a node as multicast-reachable only while that node's
// confirmations are fresh: reachability is never assumed symmetric, and it expires.
//
// Islands: a node X whose mutual set M(X) = {confirmed hearing X} ∩ {heard by X} holds no lower id
// is a leader and announces the island {X} ∪ M(X) cluster-wide (a control broadcast). Every node
// derives the same partition from the same announcements: nodes go to the lowest leader claiming
// them, everyone unclaimed is an island of one. The claims have a hash, so delegations name
// island ranges in O(1) bytes; a delegate with other claims gets the islands listed.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "mixcast/core/flat_map.hpp"
#include "mixcast/core/types.hpp"
#include "mixcast/core/view.hpp"

namespace mixcast {

class Reachability {
 public:
  struct Heard {  // what this node hears from a sender (its latest incarnation)
    std::uint64_t incarnation = 0;
    std::uint64_t highest = 0;
    std::uint32_t since_confirm = 0;
    Micros last_heard = 0;
    Micros streak_since = 0;  // heard without a gap longer than the expiry since then
    bool listed = false;      // named in one of our heard lists during this streak
    // Repair from peers, when this sender falls silent (see Node::tick):
    Micros silence_noticed = -1;  // the last_heard whose silence was already told to the island
    std::uint64_t asked_from = 0;  // lowest mseq asked of the sender since asked_at
    Micros asked_at = 0;          // when a gap was last asked of the sender (0: never)
    Micros peer_asked_for = -1;   // the last_heard whose silence we already asked a member about
    std::uint64_t peer_asked_to = 0;  // and up to which mseq (a teller that heard more is asked again)
    Micros tell_at = -1;          // when we tell its silence, unless another member told first
  };
  struct Hearer {  // what a receiver confirmed hearing from this node
    std::uint64_t highest = 0;
    Micros last_confirm = 0;
    std::uint64_t repaired_to = 0;  // no tail repair needed up to this mseq: confirmed, or resent
    // The last tail repair actually resent, [resent_from, resent_to]. A repair request is trimmed by
    // this alone: a confirmation says the hearer heard or asked, and its request may be on the way.
    std::uint64_t resent_from = 0, resent_to = 0;
  };

  explicit Reachability(Micros expiry) : expiry_(expiry) {}

  // A multicast from `sender` arrived; returns the gap [first, last] of mseqs that went missing, if any.
  // A higher incarnation restarts the sender's stream; a datagram of an older one is ignored (false).
  struct Gap {
    std::uint64_t first = 0, last = 0;
  };
  struct HeardResult {
    bool current = true;  // of the sender's latest incarnation known here
    std::optional<Gap> gap;
  };
  HeardResult heard(NodeId sender, std::uint64_t incarnation, std::uint64_t mseq, Micros now);
  void confirmed(NodeId receiver, std::uint64_t highest, Micros now);

  bool hears_me(NodeId n, Micros now) const;  // n confirmed hearing this node recently
  bool i_hear(NodeId n, Micros now) const;
  std::vector<NodeId> mutual(Micros now) const;  // sorted
  FlatMap<NodeId, Heard>& heard_from() { return heard_; }  // ascending sender ids
  FlatMap<NodeId, Hearer>& hearers() { return hearers_; }

 private:
  Micros expiry_;
  FlatMap<NodeId, Heard> heard_;  // both hold about one entry per member of our island
  FlatMap<NodeId, Hearer> hearers_;
};

// The members one island claim names. Immutable; interned by an IslandCache, so every node (of one
// process) that holds the same claim shares one copy.
struct ClaimMembers {
  std::vector<NodeId> ids;  // sorted, unique, leader included
  std::uint64_t hash = 0;   // of ids
};

// A read-only run of node ids (the members of one island), valid while its partition is held.
class IdRange {
 public:
  IdRange(const NodeId* b, const NodeId* e) : b_(b), e_(e) {}
  const NodeId* begin() const { return b_; }
  const NodeId* end() const { return e_; }
  std::size_t size() const { return static_cast<std::size_t>(e_ - b_); }
  NodeId operator[](std::size_t i) const { return b_[i]; }
  std::vector<NodeId> to_vector() const { return {b_, e_}; }

 private:
  const NodeId* b_;
  const NodeId* e_;
};

// A partition of a view into islands, ordered by their lowest member. Immutable; shared by every
// node (of one process) that holds the same claims over the same view.
class IslandPartition {
 public:
  std::size_t size() const { return offsets_.empty() ? 0 : offsets_.size() - 1; }
  // Members of the island of rank `rank`, ascending.
  IdRange island(std::size_t rank) const {
    return {members_.data() + offsets_[rank], members_.data() + offsets_[rank + 1]};
  }
  std::uint32_t island_of_rank(std::uint32_t view_rank) const { return island_by_rank_[view_rank]; }

  // Nodes go to the lowest leader claiming them; everyone unclaimed is an island of one.
  // `claims` are sorted by leader. Linear in the view plus the claimed members.
  static IslandPartition build(const View& view, const std::vector<std::pair<NodeId, const ClaimMembers*>>& claims);

 private:
  std::vector<NodeId> members_;           // island after island
  std::vector<std::uint32_t> offsets_;    // island r is members_[offsets_[r], offsets_[r+1])
  std::vector<std::uint32_t> island_by_rank_;  // view rank -> island
};

// Shares claim member lists and island partitions between the nodes of one process, so n nodes
// that agree on S islands hold them once instead of n times (the model engine runs 10^5 nodes).
// Entries live as long as some node holds them. Not thread-safe: the nodes sharing one cache
// must run on one thread (an engine's event loop); a node given none makes its own.
class IslandCache {
 public:
  // What identifies a set of claims over a view (order-independent, see IslandView).
  struct Key {
    std::uint64_t view_hash = 0, sum1 = 0, sum2 = 0, count = 0;
    friend bool operator==(const Key& a, const Key& b) {
      return a.view_hash == b.view_hash && a.sum1 == b.sum1 && a.sum2 == b.sum2 && a.count == b.count;
    }
  };
  // `ids` sorted and unique.
  std::shared_ptr<const ClaimMembers> members(std::vector<NodeId> ids);
  std::shared_ptr<const IslandPartition> partition(const Key& key) const;  // nullptr if none is held
  void remember(const Key& key, const std::shared_ptr<const IslandPartition>& p);
  std::size_t member_lists() const { return members_.size(); }
  std::size_t partitions() const { return partitions_.size(); }

 private:
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept { return static_cast<std::size_t>(k.sum1 ^ k.view_hash); }
  };
  template <class Table>
  static void sweep(Table& t, std::size_t& next);  // drops entries nobody holds any more
  std::unordered_multimap<std::uint64_t, std::weak_ptr<const ClaimMembers>> members_;  // by content hash
  std::unordered_map<Key, std::weak_ptr<const IslandPartition>, KeyHash> partitions_;
  std::size_t members_sweep_at_ = 1024, partitions_sweep_at_ = 64;
};

// The island view of one node: the leaders' claims it holds and the partition they make.
class IslandView {
 public:
  // `cache` may be shared with other nodes of this process (same thread); nullptr: a private one.
  explicit IslandView(std::shared_ptr<const View> view, std::shared_ptr<IslandCache> cache = nullptr);

  enum class Claimed : std::uint8_t { changed, refreshed, duplicate, older };
  // Records a leader's announcement number `version` (its control seq). `changed`: the partition
  // may differ now; `refreshed`: a newer announcement of the same members; `duplicate`: this
  // version again; `older`: an older version than the one held (a late repair), ignored.
  // Versions order by the leader's incarnation first: a restarted leader numbers its claims anew.
  Claimed claim(NodeId leader, std::uint64_t incarnation, std::uint64_t version, std::vector<NodeId> members,
                Micros now);
  // Drops announcements older than `max_age`; returns true if the partition changed.
  bool expire(Micros now, Micros max_age);
  // Makes the partition match the claims (shared through the cache when another node built it).
  void rebuild() const;

  // Equal on two nodes when they hold the same claims (leaders and members, not versions) over the
  // same view, so they plan with the same partition. Needs no rebuild: cheap to compare on every
  // delegation.
  std::uint64_t hash() const;

  // The partition of the last rebuild.
  std::size_t size() const { return partition_ ? partition_->size() : 0; }
  IdRange island(std::size_t rank) const { return partition_->island(rank); }
  const IslandPartition& partition() const { return *partition_; }  // valid after rebuild()
  std::uint32_t island_of(NodeId n) const;  // rank; valid after rebuild for view members
  std::size_t claims() const { return count_; }

 private:
  struct Slot {  // open addressing by leader; members == nullptr: empty
    NodeId leader = 0;
    std::uint64_t incarnation = 0;
    std::uint64_t version = 0;
    Micros at = 0;
    std::shared_ptr<const ClaimMembers> members;
  };
  Slot* find(NodeId leader);
  void insert(Slot s);  // leader not present
  void account(const Slot& s, bool add);  // keeps the order-independent sums
  IslandCache::Key key() const { return {view_->hash(), sum1_, sum2_, count_}; }

  std::shared_ptr<const View> view_;
  std::shared_ptr<IslandCache> cache_;
  // Claims in a flat table: O(1) per announcement, 40 bytes per island per node.
  std::vector<Slot> slots_;
  std::size_t count_ = 0;
  std::uint64_t sum1_ = 0, sum2_ = 0;  // sums of two independent hashes of (leader, members)
  Micros oldest_at_ = 0;  // no claim is older than this: expire() has nothing to do before
  mutable std::shared_ptr<const IslandPartition> partition_;
  mutable bool dirty_ = true;
};

}  // namespace mixcast
