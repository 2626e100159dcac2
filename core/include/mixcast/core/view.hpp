// The membership view: the ordered set of members a node believes in, and its hash.
// Nodes that share a view address targets as O(1) rank ranges; membership is static for now,
// so a view is immutable and shared between nodes of one process.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "mixcast/core/types.hpp"

namespace mixcast {

class View {
 public:
  View() = default;
  // Sorted and deduplicated here. `behind_nat` lists members that accept no connections from
  // outside their subnet (deployment knowledge, like the member list itself); `nat_domains`, if
  // given, names the NAT each of them is behind (same order). Members of one NAT connect to each
  // other directly; without domains every NATed member counts as behind a NAT of its own.
  explicit View(std::vector<NodeId> members, std::vector<NodeId> behind_nat = {},
                std::vector<std::uint32_t> nat_domains = {});

  std::size_t size() const { return members_.size(); }
  std::uint64_t hash() const { return hash_; }
  const std::vector<NodeId>& members() const { return members_; }
  NodeId at(std::size_t rank) const { return members_[rank]; }
  std::optional<std::uint32_t> rank_of(NodeId id) const;
  bool contains(NodeId id) const { return rank_of(id).has_value(); }
  bool behind_nat(NodeId id) const;
  bool same_nat(NodeId a, NodeId b) const;  // both behind the same NAT
  // The members a NATed node keeps outbound links to, so the rest of the cluster can reach it:
  // the first `k` members after it (in rank order, wrapping) that are not behind a NAT.
  std::vector<NodeId> gateways(NodeId natted, std::size_t k) const;

  // Positions are ranks rotated so that `origin_rank` is position 0: every origin's tree
  // starts at itself without sending its own id.
  NodeId at_position(std::uint32_t origin_rank, std::uint64_t position) const {
    return members_[static_cast<std::size_t>((origin_rank + position) % members_.size())];
  }

 private:
  std::vector<NodeId> members_;
  std::vector<std::uint64_t> nat_;  // by rank: 0 = not behind a NAT, else 1 + NAT domain
  std::uint64_t hash_ = 0;
};

}  // namespace mixcast
