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
// them, everyone unclaimed is an island of one. The partition has a hash, so delegations name
// island ranges in O(1) bytes.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "mixcast/core/types.hpp"
#include "mixcast/core/view.hpp"

namespace mixcast {

class Reachability {
 public:
  struct Heard {  // what this node hears from a sender
    std::uint64_t highest = 0;
    std::uint32_t since_confirm = 0;
    Micros last_heard = 0;
    Micros streak_since = 0;  // heard without a gap longer than the expiry since then
    bool listed = false;      // named in one of our heard lists during this streak
  };
  struct Hearer {  // what a receiver confirmed hearing from this node
    std::uint64_t highest = 0;
    Micros last_confirm = 0;
    std::uint64_t repaired_to = 0;  // tail repairs already sent up to this mseq
  };

  explicit Reachability(Micros expiry) : expiry_(expiry) {}

  // A multicast from `sender` arrived; returns the gap [first, last] of mseqs that went missing, if any.
  struct Gap {
    std::uint64_t first = 0, last = 0;
  };
  std::optional<Gap> heard(NodeId sender, std::uint64_t mseq, Micros now);
  void confirmed(NodeId receiver, std::uint64_t highest, Micros now);

  bool hears_me(NodeId n, Micros now) const;  // n confirmed hearing this node recently
  bool i_hear(NodeId n, Micros now) const;
  std::vector<NodeId> mutual(Micros now) const;  // sorted
  std::unordered_map<NodeId, Heard>& heard_from() { return heard_; }
  std::unordered_map<NodeId, Hearer>& hearers() { return hearers_; }

 private:
  Micros expiry_;
  std::unordered_map<NodeId, Heard> heard_;
  std::unordered_map<NodeId, Hearer> hearers_;
};

class IslandView {
 public:
  IslandView() = default;
  // Records a leader's announcement number `version` (its control seq); returns true if the
  // partition changed. Announcements can arrive out of order (a repair of an old one after a newer
  // one): an older version than the one held is ignored.
  bool claim(NodeId leader, std::uint64_t version, std::vector<NodeId> members, Micros now);
  // Drops announcements older than `max_age`; returns true if the partition changed.
  bool expire(Micros now, Micros max_age);
  // Rebuilds the partition over `view` if claims changed since the last call.
  void rebuild(const View& view);

  std::size_t size() const { return islands_.size(); }
  std::uint64_t hash() const { return hash_; }
  const std::vector<NodeId>& island(std::size_t rank) const { return islands_[rank]; }
  std::uint32_t island_of(NodeId n) const;  // rank; valid after rebuild for view members
  std::size_t claims() const { return claims_.size(); }

 private:
  struct Claim {
    std::vector<NodeId> members;  // sorted, leader included
    std::uint64_t version = 0;
    Micros at = 0;
  };
  std::map<NodeId, Claim> claims_;  // by leader, ascending
  bool dirty_ = true;
  const View* view_ = nullptr;  // of the last rebuild
  std::vector<std::vector<NodeId>> islands_;
  std::vector<std::uint32_t> island_by_rank_;  // view rank -> island
  std::uint64_t hash_ = 0;
};

}  // namespace mixcast
