// A set of nodes a broadcast's holder is responsible for, kept in the cheapest form: a range of
// positions in the shared view (rotated so the origin is position 0), or explicit ids when the
// peer's view differs. Sets over islands are a range of island ranks of the holder's island view,
// or the islands' members listed. Splitting a set never copies ids for the range forms.
#pragma once
#include <cstdint>
#include <vector>

#include "mixcast/core/islands.hpp"
#include "mixcast/core/types.hpp"
#include "mixcast/core/view.hpp"
#include "mixcast/core/wire.hpp"

namespace mixcast {

class TargetSet {
 public:
  static TargetSet range(std::uint32_t origin_rank, std::uint32_t lo, std::uint32_t count) {
    TargetSet s;
    s.is_range_ = true;
    s.origin_rank_ = origin_rank;
    s.lo_ = lo;
    s.count_ = count;
    return s;
  }
  // A range of island ranks (of `islands` islands) rotated so the origin's island is position 0.
  static TargetSet island_range(std::uint32_t origin_island, std::uint32_t lo, std::uint32_t count,
                                std::uint32_t islands) {
    TargetSet s = range(origin_island, lo, count);
    s.islands_ = islands;
    return s;
  }
  static TargetSet list(std::vector<NodeId> ids) {
    TargetSet s;
    s.ids_ = std::move(ids);
    return s;
  }
  // Islands given by their members, island after island (`sizes` of them, each ascending): what a
  // delegation over islands becomes when the receiver's island view differs, or once it is pending.
  static TargetSet island_list(std::vector<NodeId> ids, const std::vector<std::uint32_t>& sizes) {
    TargetSet s;
    s.ids_ = std::move(ids);
    s.offsets_.assign(1, 0);
    for (std::uint32_t n : sizes) s.offsets_.push_back(s.offsets_.back() + n);
    return s;
  }

  std::size_t size() const { return is_range_ ? count_ : explicit_islands() ? offsets_.size() - 1 : ids_.size(); }
  bool empty() const { return size() == 0; }
  NodeId at(const View& view, std::size_t i) const {
    return is_range_ ? view.at_position(origin_rank_, std::uint64_t{lo_} + i) : ids_[i];
  }
  bool over_islands() const { return islands_ > 0 || explicit_islands(); }
  bool explicit_islands() const { return !offsets_.empty(); }
  IdRange listed_island(std::size_t i) const {  // explicit islands only
    return {ids_.data() + offsets_[i], ids_.data() + offsets_[i + 1]};
  }
  std::uint32_t island_at(std::size_t i) const {
    return static_cast<std::uint32_t>((std::uint64_t{origin_rank_} + lo_ + i) % islands_);
  }
  TargetSet slice(std::size_t begin, std::size_t end) const;
  // The set without its delegate `head`: a node set drops its first node; listed islands drop
  // `head` from the first island (and that island if nobody else is left).
  TargetSet without(NodeId head) const;
  std::vector<NodeId> ids(const View& view) const;

  // Wire form with this set's first node as the receiver: a range when allowed, else an id list.
  // Node sets only; island sets are encoded by the node, which knows the islands.
  wire::Targets to_wire(const View& view, bool range_allowed) const;
  wire::Targets islands_to_wire() const;  // listed islands only: an island_list
  std::uint32_t lo() const { return lo_; }
  std::uint32_t count() const { return count_; }

 private:
  bool is_range_ = false;
  std::uint32_t origin_rank_ = 0, lo_ = 0, count_ = 0;
  std::uint32_t islands_ = 0;  // > 0: positions index islands, not view members
  std::vector<NodeId> ids_;
  std::vector<std::uint32_t> offsets_;  // explicit islands: island i is ids_[offsets_[i], offsets_[i+1])
};

// The logarithmic split: a holder with `rest` targets left (itself excluded) hands this many of them,
// the tail of its list, to its next delegate. Holder and delegate then hold ceil(m/2) and floor(m/2)
// of the m = rest + 1 nodes, so n nodes are reached in exactly ceil(log2 n) rounds.
constexpr std::size_t delegate_share(std::size_t rest) { return (rest + 1) / 2; }

}  // namespace mixcast
