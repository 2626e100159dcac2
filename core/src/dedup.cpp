#include "mixcast/core/dedup.hpp"

#include <algorithm>

namespace mixcast {

SeenResult SeqWindow::insert(std::uint64_t seq, std::size_t window) {
  if (seq <= floor_) return seq <= refused_below_ ? SeenResult::too_old : SeenResult::duplicate;
  if (seq == floor_ + 1) {
    ++floor_;
    // Absorb the sorted run that is now contiguous.
    std::size_t i = 0;
    while (i < above_.size() && above_[i] == floor_ + 1) {
      ++floor_;
      ++i;
    }
    above_.erase(above_.begin(), above_.begin() + static_cast<std::ptrdiff_t>(i));
    return SeenResult::fresh;
  }
  auto it = std::lower_bound(above_.begin(), above_.end(), seq);
  if (it != above_.end() && *it == seq) return SeenResult::duplicate;
  above_.insert(it, seq);
  // Bounded memory: when too many holes stay open, give up on the oldest holes.
  while (above_.size() > window) {
    refused_below_ = above_.front() - 1;
    floor_ = above_.front();
    above_.erase(above_.begin());
    std::size_t i = 0;
    while (i < above_.size() && above_[i] == floor_ + 1) {
      ++floor_;
      ++i;
    }
    above_.erase(above_.begin(), above_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return SeenResult::fresh;
}

SeenResult DedupTable::insert(const MessageId& id) {
  auto& kept = per_origin_[id.origin];
  for (auto& inc : kept)
    if (inc.number == id.incarnation) return inc.seen.insert(id.seq, window_);
  if (kept.size() == kIncarnationsKept && id.incarnation < kept.front().number) return SeenResult::too_old;
  auto at = std::find_if(kept.begin(), kept.end(), [&](const Incarnation& i) { return i.number > id.incarnation; });
  at = kept.insert(at, Incarnation{id.incarnation, {}});
  const SeenResult r = at->seen.insert(id.seq, window_);
  if (kept.size() > kIncarnationsKept) kept.erase(kept.begin());
  return r;
}

}  // namespace mixcast
