#include "mixcast/core/targets.hpp"

#include <algorithm>

namespace mixcast {

TargetSet TargetSet::slice(std::size_t begin, std::size_t end) const {
  if (is_range_) {
    TargetSet s = range(origin_rank_, lo_ + static_cast<std::uint32_t>(begin), static_cast<std::uint32_t>(end - begin));
    s.islands_ = islands_;
    return s;
  }
  if (explicit_islands()) {
    std::vector<std::uint32_t> sizes;
    for (std::size_t i = begin; i < end; ++i) sizes.push_back(offsets_[i + 1] - offsets_[i]);
    return island_list(std::vector<NodeId>(ids_.begin() + offsets_[begin], ids_.begin() + offsets_[end]), sizes);
  }
  return list(std::vector<NodeId>(ids_.begin() + static_cast<std::ptrdiff_t>(begin),
                                  ids_.begin() + static_cast<std::ptrdiff_t>(end)));
}

TargetSet TargetSet::without(NodeId head) const {
  if (!explicit_islands() || size() == 0) return slice(std::min<std::size_t>(1, size()), size());
  std::vector<NodeId> ids;
  std::vector<std::uint32_t> sizes;
  ids.reserve(ids_.size());
  for (std::size_t i = 0; i < size(); ++i) {
    std::uint32_t kept = 0;
    for (NodeId m : listed_island(i))
      if (i > 0 || m != head) ids.push_back(m), ++kept;
    if (kept > 0) sizes.push_back(kept);
  }
  return island_list(std::move(ids), sizes);
}

std::vector<NodeId> TargetSet::ids(const View& view) const {
  if (!is_range_) return ids_;
  std::vector<NodeId> out;
  out.reserve(count_);
  for (std::size_t i = 0; i < count_; ++i) out.push_back(at(view, i));
  return out;
}

wire::Targets TargetSet::to_wire(const View& view, bool range_allowed) const {
  wire::Targets t;
  if (size() <= 1) return t;  // a leaf: nothing to hand on
  if (is_range_ && range_allowed) {
    t.kind = wire::Targets::Kind::view_range;
    t.view_hash = view.hash();
    t.lo = lo_;
    t.count = count_;
  } else {
    t.kind = wire::Targets::Kind::id_list;
    t.ids = ids(view);
  }
  return t;
}

wire::Targets TargetSet::islands_to_wire() const {
  wire::Targets t;
  t.kind = wire::Targets::Kind::island_list;
  t.ids = ids_;
  for (std::size_t i = 0; i + 1 < offsets_.size(); ++i) t.island_sizes.push_back(offsets_[i + 1] - offsets_[i]);
  return t;
}

}  // namespace mixcast
