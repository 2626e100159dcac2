// Exactly-once bookkeeping per origin with bounded memory: everything at or below `floor` counts as
// seen; seen sequence numbers above it are kept sorted until they become contiguous with the floor.
// At most `window` of them are kept: beyond that the floor advances and stragglers older than the
// window are refused as too old (counted by the caller, never delivered twice).
#pragma once
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "mixcast/core/types.hpp"

namespace mixcast {

enum class SeenResult : std::uint8_t { fresh, duplicate, too_old };

class SeqWindow {
 public:
  SeenResult insert(std::uint64_t seq, std::size_t window);
  std::uint64_t floor() const { return floor_; }
  std::size_t pending() const { return above_.size(); }
 private:
  std::uint64_t floor_ = 0;           // all seq <= floor_ are seen (seqs start at 1)
  std::vector<std::uint64_t> above_;  // sorted, all > floor_ + 1
  std::uint64_t refused_below_ = 0;   // seqs <= this were skipped, not seen: too old
};

// One window per (origin, incarnation). An origin's newest few incarnations are kept, because
// broadcasts of an incarnation that just ended may still be in flight; anything from an older
// incarnation than those is refused as too old.
class DedupTable {
 public:
  static constexpr std::size_t kIncarnationsKept = 3;
  explicit DedupTable(std::size_t window = 4096) : window_(window) {}
  SeenResult insert(const MessageId& id);
  std::size_t origins() const { return per_origin_.size(); }
 private:
  struct Incarnation {
    std::uint64_t number = 0;
    SeqWindow seen;
  };
  std::size_t window_;
  std::unordered_map<NodeId, std::vector<Incarnation>> per_origin_;  // newest last
};

}  // namespace mixcast
